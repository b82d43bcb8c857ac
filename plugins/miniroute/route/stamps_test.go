package route

import (
	"context"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
	"os"
	"testing"

	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// TestStampsSkipReads: once an ADD has verified the rules, ADDs read no
// ruleset while nothing changes; any change (here an admin deleting our jump)
// makes the next ADD read and repair; a different config misses the stamp.
func TestStampsSkipReads(t *testing.T) {
	n := minitest.NewNS(t)
	backend := &counting{Backend: backend.New(rules.IPv4)}
	saves := &backend.saves
	node := Node{
		IPTables: func(rules.Family) Backend { return backend },
		Stamps:   &stamps.Stamps{Dir: t.TempDir()},
	}
	add := func(cluster string) {
		t.Helper()
		conf, err := LoadConf(stdin(t, "1.0.0", `,"clusterCIDR":["`+cluster+`"]`, prev("172.18.0.5/24")))
		if err != nil {
			t.Fatal(err)
		}
		do(t, n, func() error { _, err := Add(context.Background(), conf, node); return err })
	}
	steps := []struct {
		name    string
		before  func()
		cluster string
		saves   int32
	}{
		{"first ADD writes (read, read under lock, read back)", nil, "172.18.0.0/16", 3},
		{"second ADD verifies and records", nil, "172.18.0.0/16", 1},
		{"third ADD: stamp fresh", nil, "172.18.0.0/16", 0},
		{"fourth ADD: still fresh", nil, "172.18.0.0/16", 0},
		{"after a foreign change: reads, finds a missing jump, repairs", func() {
			ipt(t, n, rules.IPv4, append([]string{"-t", "filter", "-D", "FORWARD"}, []string{"-m", "comment", "--comment", "minicni: forward pod traffic", "-j", rules.ForwardChain}...)...)
		}, "172.18.0.0/16", 3},
		{"verifies and records again", nil, "172.18.0.0/16", 1},
		{"fresh again", nil, "172.18.0.0/16", 0},
		{"another cluster CIDR misses the stamp", nil, "172.16.0.0/12", 3},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		saves.Store(0)
		add(s.cluster)
		if got := saves.Load(); got != s.saves {
			t.Errorf("%s: %d iptables-save runs, want %d", s.name, got, s.saves)
		}
	}
	conf, err := LoadConf(stdin(t, "1.0.0", `,"clusterCIDR":["172.16.0.0/12"]`, prev("172.18.0.5/24")))
	if err != nil {
		t.Fatal(err)
	}
	saves.Store(0)
	do(t, n, func() error { return Check(context.Background(), conf, node) })
	if saves.Load() == 0 {
		t.Error("CHECK used the stamp instead of reading the ruleset")
	}

	add("172.16.0.0/12") // stamps again
	if got := minitest.DirNames(t, node.Stamps.Dir); len(got) != 1 {
		t.Fatalf("stamp files %v, want one", got)
	}
	do(t, n, func() error { return node.Stamps.Forget() })
	if got := minitest.DirNames(t, node.Stamps.Dir); got != nil {
		t.Errorf("after Forget: %v", got)
	}
	saves.Store(0)
	add("172.16.0.0/12")
	if saves.Load() != 1 {
		t.Errorf("ADD after Forget: %d iptables-save runs, want 1", saves.Load())
	}
}

// TestStampsNeedNFTables: a backend whose changes do not bump the nf_tables
// generation (legacy iptables, a fake) never gets a fresh stamp.
func TestStampsNeedNFTables(t *testing.T) {
	node := Node{Stamps: &stamps.Stamps{Dir: t.TempDir()}}
	if s := node.stamp(newFake(), rules.Spec{Family: rules.IPv4, Forward: true}); s != (stamps.Stamp{}) {
		t.Errorf("a fake backend got a usable stamp: %+v", s)
	}
	dir := t.TempDir()
	if err := os.Symlink("/usr/sbin/xtables-legacy-multi", dir+"/iptables-save"); err != nil {
		t.Fatal(err)
	}
	if (backend.Exec{Family: rules.IPv4, Dirs: []string{dir}}).NFTables() {
		t.Error("a legacy iptables-save counted as nf_tables")
	}
}
