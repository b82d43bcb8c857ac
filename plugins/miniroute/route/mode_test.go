package route

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// These tests run the real iptables tools of both modes (Debian's iptables
// package installs iptables-legacy and iptables-nft side by side), each in a
// network namespace of its own: both modes' rulesets are per namespace.

// sh runs a command inside n and returns its output.
func sh(t testing.TB, n ns.NetNS, name string, args ...string) string {
	t.Helper()
	var out []byte
	do(t, n, func() error {
		var err error
		if out, err = exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	})
	return string(out)
}

// holders are the modes whose save tool shows miniroute's chains in n, for f.
func holders(t testing.TB, n ns.NetNS, f rules.Family) []backend.Mode {
	t.Helper()
	var in []backend.Mode
	for _, m := range []backend.Mode{backend.Legacy, backend.NFT} {
		tool := f.Command() + "-legacy-save"
		if m == backend.NFT {
			tool = f.Command() + "-nft-save"
		}
		if strings.Contains(sh(t, n, tool), rules.ForwardChain) {
			in = append(in, m)
		}
	}
	return in
}

// plainMode is the mode of the iptables-save on PATH: what miniroute used
// before it detected modes, and still uses when nothing asks for one.
func plainMode(t testing.TB) backend.Mode {
	t.Helper()
	p, err := exec.LookPath("iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(filepath.Base(real), "legacy") {
		return backend.Legacy
	}
	return backend.NFT
}

const dualConf = `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/56"]`

var dualPrev = prev("172.18.0.5/24", "fd00:172:18::5/64")

// modeNode is the binary's Node with its mode cache and stamps in temporary
// directories.
func modeNode(t testing.TB, bootID string) Node {
	return Node{
		Modes:  &backend.ModeCache{Dir: t.TempDir(), BootID: bootID},
		Stamps: &stamps.Stamps{Dir: t.TempDir()},
	}
}

// TestModeFollowsNode: ADD, CHECK and STATUS write and read in the mode the
// kubelet's hint chains name, else in the mode holding more rules, else in
// the plain iptables' mode; iptablesMode overrides all of it. The rules are
// looked for with both modes' save tools, in both families.
func TestModeFollowsNode(t *testing.T) {
	tests := []struct {
		name  string
		setup [][]string
		extra string
		want  backend.Mode // "" for the plain iptables' mode
	}{
		{name: "kubelet hint in legacy", setup: [][]string{{"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}}, want: backend.Legacy},
		{name: "kubelet canary in nf_tables", setup: [][]string{{"iptables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"}}, want: backend.NFT},
		{name: "IPv6 kubelet hint in legacy", setup: [][]string{{"ip6tables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}}, want: backend.Legacy},
		{name: "no hint, more rules in legacy", setup: [][]string{
			{"iptables-legacy", "-A", "INPUT", "-s", "10.9.9.9", "-j", "ACCEPT"},
			{"iptables-nft", "-A", "INPUT", "-s", "10.9.9.8", "-j", "ACCEPT"},
			{"ip6tables-legacy", "-A", "INPUT", "-s", "fd00:9::9", "-j", "ACCEPT"},
		}, want: backend.Legacy},
		{name: "no hint, no rules", want: ""},
		{name: "forced legacy over an nf_tables hint", setup: [][]string{{"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}},
			extra: `,"iptablesMode":"legacy"`, want: backend.Legacy},
		{name: "forced nf_tables over a legacy hint", setup: [][]string{{"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}},
			extra: `,"iptablesMode":"nf_tables"`, want: backend.NFT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := minitest.NewNS(t)
			for _, c := range tt.setup {
				sh(t, n, c[0], c[1:]...)
			}
			want := tt.want
			if want == "" {
				want = plainMode(t)
			}
			node := modeNode(t, "")
			conf := loadConf(t, stdin(t, "1.1.0", dualConf+tt.extra, dualPrev))
			ctx := context.Background()
			do(t, n, func() error {
				if _, err := Add(ctx, conf, node); err != nil {
					return err
				}
				if err := Check(ctx, conf, node); err != nil {
					return err
				}
				return Status(ctx, conf, node)
			})
			for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
				if got := holders(t, n, f); len(got) != 1 || got[0] != want {
					t.Errorf("%s: miniroute's chains are in %q, want only in %s", f, got, want)
				}
			}
			if tt.want == "" && !strings.Contains(sh(t, n, "iptables-save"), rules.ForwardChain) {
				t.Errorf("the plain iptables-save does not show miniroute's chains")
			}
			var files []string
			for _, e := range must(os.ReadDir(node.Modes.Dir)) {
				files = append(files, e.Name())
			}
			if forced := tt.extra != ""; forced != (len(files) == 0) || len(files) > 1 {
				t.Errorf("mode cache holds %q: want one file when detected, none when forced", files)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestModeCachedPerBoot: the decision is made once per boot and namespace.
// After the kubelet's hint moves from legacy to nf_tables the cached legacy
// still holds (no second detection), until the boot id changes; another
// namespace decides for itself.
func TestModeCachedPerBoot(t *testing.T) {
	n := minitest.NewNS(t)
	boot := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(boot, []byte("11111111-1111-1111-1111-111111111111\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	node := modeNode(t, boot)
	conf := loadConf(t, stdin(t, "1.1.0", dualConf, dualPrev))
	ctx := context.Background()
	decide := func(n ns.NetNS, wantMode backend.Mode, wantCached bool) {
		t.Helper()
		do(t, n, func() error {
			d, cached, err := node.Modes.Decide(ctx, nil)
			if err != nil || d.Mode != wantMode || cached != wantCached {
				t.Errorf("Decide = %+v, cached %v, %v; want %s, cached %v", d, cached, err, wantMode, wantCached)
			}
			_, err = Add(ctx, conf, node)
			return err
		})
	}

	sh(t, n, "iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
	decide(n, backend.Legacy, false)
	decide(n, backend.Legacy, true)
	// The kubelet now uses nf_tables: within this boot the answer stands.
	sh(t, n, "iptables-legacy", "-t", "mangle", "-X", "KUBE-IPTABLES-HINT")
	sh(t, n, "iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
	decide(n, backend.Legacy, true)
	if got := holders(t, n, rules.IPv4); len(got) != 1 || got[0] != backend.Legacy {
		t.Fatalf("chains in %q after the cached decision, want only legacy", got)
	}
	// Another namespace sharing the directory decides for itself.
	other := minitest.NewNS(t)
	decide(other, plainMode(t), false)

	// A new boot: detected again, and written in nf_tables from then on.
	if err := os.WriteFile(boot, []byte("22222222-2222-2222-2222-222222222222\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	decide(n, backend.NFT, false)
	decide(n, backend.NFT, true)
	if got := holders(t, n, rules.IPv6); len(got) != 2 {
		t.Errorf("IPv6 chains in %q, want in both modes (legacy from the first boot, nf_tables now)", got)
	}
	files := must(os.ReadDir(node.Modes.Dir))
	if len(files) != 2 {
		t.Errorf("cache dir holds %d files, want one per namespace (no temporary file left)", len(files))
	}
	do(t, n, func() error { return node.Modes.Forget() })
	if got := len(must(os.ReadDir(node.Modes.Dir))); got != 1 {
		t.Errorf("after Forget the cache dir holds %d files, want 1 (the other namespace's)", got)
	}
}

// BenchmarkDecide is the cost of one detection in a namespace with no
// kubelet hint and no rules, the most expensive case (every save tool runs),
// and of a decision read back from the cache.
func BenchmarkDecide(b *testing.B) {
	n := minitest.NewNS(b)
	ctx := context.Background()
	b.Run("detect", func(b *testing.B) {
		do(b, n, func() error {
			for b.Loop() {
				if _, err := backend.Decide(ctx, nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("cached", func(b *testing.B) {
		c := backend.ModeCache{Dir: b.TempDir()}
		do(b, n, func() error {
			for b.Loop() {
				if _, _, err := c.Decide(ctx, nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
