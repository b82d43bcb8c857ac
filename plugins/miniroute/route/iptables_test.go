package route

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

func v4Spec() rules.Spec {
	return rules.Spec{Family: rules.IPv4, Forward: true, Masquerade: true,
		Cluster: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}, PodNets: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/24")}}
}

// The rules of v4Spec as iptables -S prints them: what the README documents.
var (
	v4Filter = []string{
		`-N MINICNI-FORWARD`,
		`-A FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`,
		`-A MINICNI-FORWARD -s 172.18.0.0/16 -m comment --comment "minicni: accept from the cluster CIDR" -j ACCEPT`,
		`-A MINICNI-FORWARD -d 172.18.0.0/16 -m comment --comment "minicni: accept to the cluster CIDR" -j ACCEPT`,
	}
	v4Nat = []string{
		`-N MINICNI-POSTROUTING`,
		`-A POSTROUTING -m comment --comment "minicni: masquerade pod traffic leaving the cluster" -j MINICNI-POSTROUTING`,
		`-A MINICNI-POSTROUTING -d 172.18.0.0/16 -m comment --comment "minicni: no masquerade within the cluster CIDR" -j RETURN`,
		`-A MINICNI-POSTROUTING -d 224.0.0.0/4 -m comment --comment "minicni: no masquerade for multicast" -j RETURN`,
		`-A MINICNI-POSTROUTING -s 172.18.0.0/24 -m comment --comment "minicni: masquerade the pod subnet" -j MASQUERADE`,
	}
)

func ensure(t *testing.T, b Backend, s rules.Spec) bool {
	t.Helper()
	changed, err := Ensure(context.Background(), b, s)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return changed
}

func diffRules(t *testing.T, f *fakeTables, filter, nat []string) {
	t.Helper()
	if d := cmp.Diff(filter, f.lines("filter")); d != "" {
		t.Errorf("filter (-want +got):\n%s", d)
	}
	if d := cmp.Diff(nat, f.lines("nat")); d != "" {
		t.Errorf("nat (-want +got):\n%s", d)
	}
}

func TestEnsureFromScratchAndFastPath(t *testing.T) {
	f := newFake()
	if !ensure(t, f, v4Spec()) {
		t.Error("first Ensure reported no change")
	}
	diffRules(t, f, v4Filter, v4Nat)
	// save, save under the lock, restore, save to verify
	if f.saves != 3 || f.restores != 1 {
		t.Errorf("slow path: %d saves, %d restores; want 3, 1", f.saves, f.restores)
	}
	f.saves, f.restores = 0, 0
	for range 1000 {
		if ensure(t, f, v4Spec()) {
			t.Fatal("Ensure changed rules that were in place")
		}
	}
	if f.saves != 1000 || f.restores != 0 {
		t.Errorf("1000 fast paths: %d saves, %d restores; want 1000, 0", f.saves, f.restores)
	}
	diffRules(t, f, v4Filter, v4Nat)
}

func TestEnsureParts(t *testing.T) {
	tests := []struct {
		name        string
		mod         func(*rules.Spec)
		filter, nat []string
	}{
		{"forward only", func(s *rules.Spec) { s.Masquerade = false }, v4Filter, nil},
		{"masquerade only", func(s *rules.Spec) { s.Forward = false }, nil, v4Nat},
		{"nothing", func(s *rules.Spec) { s.Forward, s.Masquerade = false, false }, nil, nil},
		{"IPv6", func(s *rules.Spec) {
			s.Family, s.Cluster, s.PodNets = rules.IPv6, []netip.Prefix{netip.MustParsePrefix("fd00:172:18::/56")}, []netip.Prefix{netip.MustParsePrefix("fd00:172:18::/64")}
		}, []string{
			`-N MINICNI-FORWARD`,
			`-A FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`,
			`-A MINICNI-FORWARD -s fd00:172:18::/56 -m comment --comment "minicni: accept from the cluster CIDR" -j ACCEPT`,
			`-A MINICNI-FORWARD -d fd00:172:18::/56 -m comment --comment "minicni: accept to the cluster CIDR" -j ACCEPT`,
		}, []string{
			`-N MINICNI-POSTROUTING`,
			`-A POSTROUTING -m comment --comment "minicni: masquerade pod traffic leaving the cluster" -j MINICNI-POSTROUTING`,
			`-A MINICNI-POSTROUTING -d fd00:172:18::/56 -m comment --comment "minicni: no masquerade within the cluster CIDR" -j RETURN`,
			`-A MINICNI-POSTROUTING -d ff00::/8 -m comment --comment "minicni: no masquerade for multicast" -j RETURN`,
			`-A MINICNI-POSTROUTING -s fd00:172:18::/64 -m comment --comment "minicni: masquerade the pod subnet" -j MASQUERADE`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := v4Spec()
			tt.mod(&s)
			f := newFake()
			ensure(t, f, s)
			diffRules(t, f, tt.filter, tt.nat)
			if s.Empty() != (tt.filter == nil && tt.nat == nil) {
				t.Errorf("Empty() = %v", s.Empty())
			}
			if err := CheckRules(context.Background(), f, s); err != nil {
				t.Errorf("CheckRules after Ensure: %v", err)
			}
		})
	}
}

// TestEnsureRepairs breaks the ensured state the ways an admin, another tool
// or a crash could, and checks that CheckRules names the problem and one
// Ensure restores exactly the wanted rules, keeping what is not miniroute's.
func TestEnsureRepairs(t *testing.T) {
	foreignFwd := `-A FORWARD -i eth9 -j DROP`
	tests := []struct {
		name        string
		break_      []string // iptables commands run on the fake
		check       string   // what CHECK must mention
		filter, nat []string // wanted afterwards; nil means v4Filter, v4Nat
	}{
		{"jump deleted", []string{`-D FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`},
			`rule missing: iptables -t filter -I FORWARD 1 -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`, nil, nil},
		{"nat jump deleted", []string{`-t nat -D POSTROUTING -m comment --comment "minicni: masquerade pod traffic leaving the cluster" -j MINICNI-POSTROUTING`},
			`rule missing: iptables -t nat -A POSTROUTING`, nil, nil},
		{"masquerade rule deleted", []string{`-t nat -D MINICNI-POSTROUTING -s 172.18.0.0/24 -m comment --comment "minicni: masquerade the pod subnet" -j MASQUERADE`},
			`rule missing: iptables -t nat -A MINICNI-POSTROUTING -s 172.18.0.0/24`, nil, nil},
		{"chain flushed", []string{`-F MINICNI-FORWARD`},
			`rule missing: iptables -t filter -A MINICNI-FORWARD -s 172.18.0.0/16`, nil, nil},
		{"chain removed", []string{`-D FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`, `-F MINICNI-FORWARD`, `-X MINICNI-FORWARD`},
			`chain MINICNI-FORWARD is missing (iptables -t filter -N MINICNI-FORWARD)`, nil, nil},
		{"jump duplicated", []string{`-A FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`},
			`the jump from FORWARD to MINICNI-FORWARD appears 2 times`, nil, nil},
		{"rule duplicated", []string{`-A MINICNI-FORWARD -s 172.18.0.0/16 -m comment --comment "minicni: accept from the cluster CIDR" -j ACCEPT`},
			`duplicate rule in MINICNI-FORWARD`, nil, nil},
		{"out of order", []string{`-t nat -D MINICNI-POSTROUTING -d 224.0.0.0/4 -m comment --comment "minicni: no masquerade for multicast" -j RETURN`,
			`-t nat -A MINICNI-POSTROUTING -d 224.0.0.0/4 -m comment --comment "minicni: no masquerade for multicast" -j RETURN`},
			`rules of MINICNI-POSTROUTING out of order`, nil, nil},
		{"jump moved down, foreign rule kept", []string{`-D FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`, foreignFwd,
			`-A FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`},
			"", append(slices.Clone(v4Filter[:1]), foreignFwd, v4Filter[1], v4Filter[2], v4Filter[3]), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			ensure(t, f, v4Spec())
			for _, c := range tt.break_ {
				if err := f.exec(c); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckRules(context.Background(), f, v4Spec())
			if tt.check == "" {
				if err != nil {
					t.Fatalf("CheckRules: %v", err)
				}
			} else {
				if cniCode(t, err) != libmini.CodeCheckFailed || !strings.Contains(err.Error(), tt.check) {
					t.Fatalf("CheckRules = %v, want code %d mentioning %q", err, libmini.CodeCheckFailed, tt.check)
				}
				if !ensure(t, f, v4Spec()) {
					t.Error("Ensure did not repair")
				}
			}
			filter, nat := tt.filter, tt.nat
			if filter == nil {
				filter = v4Filter
			}
			if nat == nil {
				nat = v4Nat
			}
			diffRules(t, f, filter, nat)
			if err := CheckRules(context.Background(), f, v4Spec()); err != nil {
				t.Errorf("CheckRules after repair: %v", err)
			}
		})
	}
}

// TestEnsureKeepsOthers: rules another network's miniroute (a second
// clusterCIDR, another pod subnet) or an admin put in minicni's chains stay,
// and RETURN rules stay ahead of MASQUERADE ones.
func TestEnsureKeepsOthers(t *testing.T) {
	f := newFake()
	ensure(t, f, v4Spec())
	if err := f.exec(`-t nat -A MINICNI-POSTROUTING -s 192.0.2.0/24 -j SNAT --to-source 198.51.100.1`); err != nil {
		t.Fatal(err)
	}
	other := rules.Spec{Family: rules.IPv4, Forward: true, Masquerade: true,
		Cluster: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, PodNets: []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24")}}
	ensure(t, f, other)
	for _, s := range []rules.Spec{v4Spec(), other} {
		if err := CheckRules(context.Background(), f, s); err != nil {
			t.Errorf("CheckRules(%v): %v", s.Cluster, err)
		}
		if ensure(t, f, s) {
			t.Errorf("Ensure(%v) changed a ruleset holding both networks", s.Cluster)
		}
	}
	want := slices.Concat(v4Nat[:4], []string{
		`-A MINICNI-POSTROUTING -d 10.244.0.0/16 -m comment --comment "minicni: no masquerade within the cluster CIDR" -j RETURN`,
		v4Nat[4],
		`-A MINICNI-POSTROUTING -s 192.0.2.0/24 -j SNAT --to-source 198.51.100.1`,
		`-A MINICNI-POSTROUTING -s 10.244.3.0/24 -m comment --comment "minicni: masquerade the pod subnet" -j MASQUERADE`,
	})
	if d := cmp.Diff(want, f.lines("nat")); d != "" {
		t.Errorf("nat (-want +got):\n%s", d)
	}
}

// TestEnsureConcurrent: many Ensures at once write once and never duplicate.
func TestEnsureConcurrent(t *testing.T) {
	f := newFake()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := Ensure(context.Background(), f, v4Spec())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if f.restores != 1 {
		t.Errorf("%d restores, want 1", f.restores)
	}
	diffRules(t, f, v4Filter, v4Nat)
}

func TestEnsureErrors(t *testing.T) {
	boom := errors.New("iptables-save: boom")
	tests := []struct {
		name  string
		setup func(*fakeTables) context.Context
		code  uint
		msg   string
	}{
		{"save fails", func(f *fakeTables) context.Context { f.saveErr = boom; return context.Background() },
			libmini.CodeFirewall, "cannot read the ruleset: iptables-save: boom"},
		{"restore fails", func(f *fakeTables) context.Context { f.restoreErr = boom; return context.Background() },
			libmini.CodeFirewall, "cannot apply rules"},
		{"lock fails", func(f *fakeTables) context.Context { f.lockErr = boom; return context.Background() },
			libmini.CodeFirewall, "cannot serialize"},
		{"restore has no effect", func(f *fakeTables) context.Context { f.ignoreRestore = true; return context.Background() },
			libmini.CodeFirewall, "rules not in place after iptables-restore: chain MINICNI-FORWARD is missing"},
		{"deadline", func(f *fakeTables) context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		}, libmini.CodeTryAgainLater, "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			ctx := tt.setup(f)
			_, err := Ensure(ctx, f, v4Spec())
			if cniCode(t, err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Ensure = %v, want code %d mentioning %q", err, tt.code, tt.msg)
			}
		})
	}
	t.Run("restore input in details", func(t *testing.T) {
		f := newFake()
		f.restoreErr = boom
		_, err := Ensure(context.Background(), f, v4Spec())
		e, _ := libmini.AsCNIError(err)
		if e == nil || !strings.Contains(e.Details, "-I FORWARD 1 -m comment") {
			t.Errorf("details = %q", e.Details)
		}
	})
}

func TestCleanup(t *testing.T) {
	f := newFake()
	foreign := []string{
		`-N KUBE-FORWARD`,
		`-A FORWARD -j KUBE-FORWARD`,
		`-A FORWARD -s 10.0.0.0/8 -j ACCEPT`,
		`-A KUBE-FORWARD -m comment --comment "minicni: looks like ours but is not" -j ACCEPT`,
	}
	for _, c := range []string{`-N KUBE-FORWARD`, `-A FORWARD -j KUBE-FORWARD`, `-A FORWARD -s 10.0.0.0/8 -j ACCEPT`,
		`-A KUBE-FORWARD -m comment --comment "minicni: looks like ours but is not" -j ACCEPT`,
		`-t nat -A POSTROUTING -o eth0 -j MASQUERADE`} {
		if err := f.exec(c); err != nil {
			t.Fatal(err)
		}
	}
	ensure(t, f, v4Spec())
	// Extra jumps to minicni's chains, from anywhere, go too.
	for _, c := range []string{`-A KUBE-FORWARD -j MINICNI-FORWARD`, `-A FORWARD -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`} {
		if err := f.exec(c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := Cleanup(context.Background(), f); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
		diffRules(t, f, foreign, []string{`-A POSTROUTING -o eth0 -j MASQUERADE`})
	}
	if f.restores != 2 { // the ensure, the first cleanup; the second had nothing to do
		t.Errorf("%d restores, want 2", f.restores)
	}
	f.saveErr = errors.New("boom")
	if err := Cleanup(context.Background(), f); err == nil {
		t.Error("Cleanup ignored a save failure")
	}
}
