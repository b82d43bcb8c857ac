package route

import (
	"context"
	"fmt"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests run the real iptables binaries, always inside a network
// namespace the test created (iptables rules are per namespace): the
// processes inherit the namespace of the thread ns.Do locked.

// do runs f inside n, failing the test on error.
func do(t testing.TB, n ns.NetNS, f func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// ipt runs an iptables command of family inside n and returns its output.
func ipt(t testing.TB, n ns.NetNS, f rules.Family, args ...string) string {
	t.Helper()
	var out []byte
	do(t, n, func() error {
		var err error
		out, err = exec.Command(f.Command(), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", f.Command(), strings.Join(args, " "), err, out)
		}
		return nil
	})
	return string(out)
}

// listRules is iptables -S of table in n without the policy lines.
func listRules(t testing.TB, n ns.NetNS, f rules.Family, table string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(ipt(t, n, f, "-t", table, "-S"), "\n") {
		if l != "" && !strings.HasPrefix(l, "-P ") {
			out = append(out, l)
		}
	}
	return out
}

// counting wraps a Backend and counts the iptables execs it makes.
type counting struct {
	Backend
	saves, restores atomic.Int32
}

func (c *counting) Save(ctx context.Context) ([]byte, error) {
	c.saves.Add(1)
	return c.Backend.Save(ctx)
}

// NFTables lets stamps see through the wrapper.
func (c *counting) NFTables() bool {
	n, ok := c.Backend.(interface{ NFTables() bool })
	return ok && n.NFTables()
}

func (c *counting) Restore(ctx context.Context, b []byte) error {
	if len(b) > 0 {
		c.restores.Add(1)
	}
	return c.Backend.Restore(ctx, b)
}

func v6Spec() rules.Spec {
	return rules.Spec{Family: rules.IPv6, Forward: true, Masquerade: true,
		Cluster: []netip.Prefix{netip.MustParsePrefix("fd00:172:18::/56")}, PodNets: []netip.Prefix{netip.MustParsePrefix("fd00:172:18::/64")}}
}

// TestRealEnsure: from scratch, the rules iptables -S shows are exactly the
// documented ones; the next Ensure is one iptables-save and no write.
func TestRealEnsure(t *testing.T) {
	for _, s := range []rules.Spec{v4Spec(), v6Spec()} {
		t.Run(s.Family.String(), func(t *testing.T) {
			n := minitest.NewNS(t)
			fake := newFake() // the same spec on the fake gives the expected lines
			ensure(t, fake, s)
			b := &counting{Backend: backend.New(s.Family)}
			do(t, n, func() error {
				changed, err := Ensure(context.Background(), b, s)
				if err == nil && !changed {
					err = fmt.Errorf("first Ensure changed nothing")
				}
				return err
			})
			if got, want := [2]int32{b.saves.Load(), b.restores.Load()}, [2]int32{3, 1}; got != want {
				t.Errorf("slow path (saves, restores) = %v, want %v", got, want)
			}
			if d := cmp.Diff(fake.lines("filter"), listRules(t, n, s.Family, "filter")); d != "" {
				t.Errorf("filter (-want +got):\n%s", d)
			}
			if d := cmp.Diff(fake.lines("nat"), listRules(t, n, s.Family, "nat")); d != "" {
				t.Errorf("nat (-want +got):\n%s", d)
			}
			b.saves.Store(0)
			b.restores.Store(0)
			do(t, n, func() error {
				for range 20 {
					if changed, err := Ensure(context.Background(), b, s); err != nil || changed {
						return fmt.Errorf("Ensure on a ruleset in place: changed %v, %v", changed, err)
					}
				}
				return CheckRules(context.Background(), b, s)
			})
			if b.saves.Load() != 21 || b.restores.Load() != 0 {
				t.Errorf("20 fast paths and a check: %d saves, %d restores; want 21, 0", b.saves.Load(), b.restores.Load())
			}
		})
	}
}

// TestRealRuleCountStable: ADD for 1,000 pods leaves as many rules as ADD for 1.
func TestRealRuleCountStable(t *testing.T) {
	n := minitest.NewNS(t)
	count := func() int {
		c := 0
		for _, table := range []string{"filter", "nat"} {
			c += len(listRules(t, n, rules.IPv4, table))
		}
		return c
	}
	add := func(i int) error {
		addr := fmt.Sprintf("172.18.%d.%d/22", i/250, i%250+2)
		conf, err := LoadConf(stdin(t, "1.0.0", `,"clusterCIDR":["172.18.0.0/16"]`, prev(addr)))
		if err != nil {
			return err
		}
		_, err = Add(context.Background(), conf, Node{})
		return err
	}
	do(t, n, func() error { return add(0) })
	one := count()
	start := time.Now()
	do(t, n, func() error {
		for i := 1; i < 1000; i++ {
			if err := add(i); err != nil {
				return fmt.Errorf("pod %d: %w", i, err)
			}
		}
		return nil
	})
	t.Logf("999 ADDs on the fast path: %v each", time.Since(start)/999)
	if one != 9 || count() != one {
		t.Errorf("rules after 1 pod: %d (want 9), after 1000: %d", one, count())
	}
}

// TestRealCheckAndRepair: CHECK names a rule and a route deleted behind
// miniroute's back; ADD puts them back.
func TestRealCheckAndRepair(t *testing.T) {
	n := minitest.NewNS(t)
	do(t, n, func() error {
		la := netlink.NewLinkAttrs()
		la.Name = "underlay0"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "underlay1"}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("underlay1")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(peer); err != nil {
			return err
		}
		l, err := netlink.LinkByName("underlay0")
		if err != nil {
			return err
		}
		for _, a := range []string{"10.99.0.11/24", "fd00:99::11/64"} {
			addr, _ := netlink.ParseAddr(a)
			addr.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(l, addr); err != nil {
				return err
			}
		}
		return netlink.LinkSetUp(l)
	})
	extra := `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/56"],"routes":[` +
		`{"dst":"172.18.1.0/24","via":"10.99.0.12"},{"dst":"fd00:172:18:1::/64","via":"fd00:99::12"}]`
	conf := func() *NetConf {
		return loadConf(t, stdin(t, "1.0.0", extra, prev("172.18.0.5/24", "fd00:172:18::5/64")))
	}
	var checkErr error
	do(t, n, func() error {
		if _, err := Add(context.Background(), conf(), Node{}); err != nil {
			return err
		}
		return Check(context.Background(), conf(), Node{})
	})
	ipt(t, n, rules.IPv4, "-t", "nat", "-D", "MINICNI-POSTROUTING", "-s", "172.18.0.0/24", "-m", "comment",
		"--comment", "minicni: masquerade the pod subnet", "-j", "MASQUERADE")
	ipt(t, n, rules.IPv6, "-D", "FORWARD", "1")
	do(t, n, func() error {
		if err := netlink.RouteDel(&netlink.Route{Dst: ipNet(netip.MustParsePrefix("fd00:172:18:1::/64")), Gw: net.ParseIP("fd00:99::12")}); err != nil {
			return err
		}
		checkErr = Check(context.Background(), conf(), Node{})
		return nil
	})
	for _, want := range []string{
		`rule missing: iptables -t nat -A MINICNI-POSTROUTING -s 172.18.0.0/24 -m comment --comment "minicni: masquerade the pod subnet" -j MASQUERADE`,
		`rule missing: ip6tables -t filter -I FORWARD 1 -m comment --comment "minicni: forward pod traffic" -j MINICNI-FORWARD`,
		`static route missing: fd00:172:18:1::/64 via fd00:99::12`,
	} {
		if cniCode(t, checkErr) != libmini.CodeCheckFailed || !strings.Contains(checkErr.Error(), want) {
			t.Errorf("CHECK = %v\nwant code %d mentioning %q", checkErr, libmini.CodeCheckFailed, want)
		}
	}
	if strings.Contains(checkErr.Error(), "172.18.1.0/24") {
		t.Errorf("CHECK reports the rules.IPv4 route, which is there: %v", checkErr)
	}
	do(t, n, func() error {
		if _, err := Add(context.Background(), conf(), Node{}); err != nil {
			return err
		}
		return Check(context.Background(), conf(), Node{})
	})
}

// TestRealCleanup: Cleanup leaves exactly the rules that were there before
// miniroute, in both families, and a second Cleanup changes nothing.
func TestRealCleanup(t *testing.T) {
	for _, s := range []rules.Spec{v4Spec(), v6Spec()} {
		t.Run(s.Family.String(), func(t *testing.T) {
			n := minitest.NewNS(t)
			for _, args := range [][]string{
				{"-N", "OTHER-FORWARD"},
				{"-A", "FORWARD", "-j", "OTHER-FORWARD"},
				{"-A", "OTHER-FORWARD", "-i", "eth9", "-m", "comment", "--comment", "minicni: not ours", "-j", "DROP"},
				{"-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"},
			} {
				ipt(t, n, s.Family, args...)
			}
			before := slices.Concat(listRules(t, n, s.Family, "filter"), listRules(t, n, s.Family, "nat"))
			do(t, n, func() error {
				if _, err := Ensure(context.Background(), backend.New(s.Family), s); err != nil {
					return err
				}
				return nil
			})
			ipt(t, n, s.Family, "-A", "OTHER-FORWARD", "-j", rules.ForwardChain) // a stray jump to our chain
			for range 2 {
				do(t, n, func() error { return Cleanup(context.Background(), backend.New(s.Family)) })
				after := slices.Concat(listRules(t, n, s.Family, "filter"), listRules(t, n, s.Family, "nat"))
				if d := cmp.Diff(before, after); d != "" {
					t.Errorf("rules after Cleanup (-before +after):\n%s", d)
				}
			}
		})
	}
}

// TestRealLockScope: the lock excludes a second holder in the same namespace
// and nobody in another one.
func TestRealLockScope(t *testing.T) {
	a, b := minitest.NewNS(t), minitest.NewNS(t)
	e := backend.New(rules.IPv4)
	var unlock func()
	do(t, a, func() error {
		var err error
		unlock, err = e.Lock(context.Background())
		return err
	})
	defer func() { unlock() }()
	do(t, a, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if u, err := e.Lock(ctx); err == nil {
			u()
			return fmt.Errorf("second lock in the same namespace granted")
		}
		return nil
	})
	do(t, b, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := e.Lock(ctx)
		if err != nil {
			return fmt.Errorf("lock in another namespace: %w", err)
		}
		u()
		return nil
	})
	unlock()
	unlock = func() {}
	do(t, a, func() error {
		u, err := e.Lock(context.Background())
		if err == nil {
			u()
		}
		return err
	})
}

// BenchmarkEnsureFastPath measures an ADD's iptables work when everything is
// already in place: `go test -run '^$' -bench . ./plugins/miniroute/rules`.
func BenchmarkEnsureFastPath(b *testing.B) {
	for _, specs := range [][]rules.Spec{{v4Spec()}, {v4Spec(), v6Spec()}} {
		name := "IPv4"
		if len(specs) == 2 {
			name = "dual-stack"
		}
		b.Run(name, func(b *testing.B) {
			n := minitest.NewNS(b)
			backends := map[rules.Family]*counting{rules.IPv4: {Backend: backend.New(rules.IPv4)}, rules.IPv6: {Backend: backend.New(rules.IPv6)}}
			do(b, n, func() error {
				for _, s := range specs {
					if _, err := Ensure(context.Background(), backends[s.Family], s); err != nil {
						return err
					}
				}
				for _, c := range backends {
					c.saves.Store(0)
				}
				for b.Loop() {
					for _, s := range specs {
						if _, err := Ensure(context.Background(), backends[s.Family], s); err != nil {
							return err
						}
					}
				}
				return nil
			})
			execs := backends[rules.IPv4].saves.Load() + backends[rules.IPv6].saves.Load()
			b.ReportMetric(float64(execs)/float64(b.N), "execs/op")
		})
	}
}

// BenchmarkAddStamped: Add on the fast path when the stamp is fresh (the
// common case on a node where nothing else rewrites the ruleset between
// pods): no exec at all, one netlink request and one small file read.
func BenchmarkAddStamped(b *testing.B) {
	n := minitest.NewNS(b)
	backend := &counting{Backend: backend.New(rules.IPv4)}
	node := Node{IPTables: func(rules.Family) Backend { return backend }, Stamps: &stamps.Stamps{Dir: b.TempDir()}}
	conf := func() *NetConf {
		c, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"n","type":"miniroute","clusterCIDR":["172.18.0.0/16"],` +
			`"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"172.18.0.5/24"}]}}`))
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	do(b, n, func() error {
		for range 2 { // create, then verify and stamp
			if _, err := Add(context.Background(), conf(), node); err != nil {
				return err
			}
		}
		backend.saves.Store(0)
		for b.Loop() {
			if _, err := Add(context.Background(), conf(), node); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportMetric(float64(backend.saves.Load())/float64(b.N), "execs/op")
}
