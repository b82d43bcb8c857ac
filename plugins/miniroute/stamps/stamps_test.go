package stamps

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/rules"

	"github.com/minicni/minicni/libmini"
)

// readIn is readNFT in namespace n.
func readIn(t *testing.T, n ns.NetNS) nftState {
	t.Helper()
	var st nftState
	err := n.Do(func(ns.NetNS) (err error) { st, err = readNFT(); return err })
	if err != nil {
		t.Fatalf("readNFT: %v", err)
	}
	return st
}

// TestReadNFT: each namespace has its own cookie; a change in one bumps its
// generation and leaves the other's alone.
func TestReadNFT(t *testing.T) {
	a, b := minitest.NewNS(t), minitest.NewNS(t)
	sa, sb := readIn(t, a), readIn(t, b)
	if sa.cookie == sb.cookie || sa.cookie == 0 {
		t.Errorf("cookies %d and %d: want distinct, non-zero", sa.cookie, sb.cookie)
	}
	err := a.Do(func(ns.NetNS) error {
		out, err := exec.Command("iptables", "-t", "filter", "-N", "SOMEONE-ELSE").CombinedOutput()
		if err != nil {
			t.Errorf("iptables -N: %v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sa2 := readIn(t, a); sa2.gen == sa.gen || sa2.cookie != sa.cookie {
		t.Errorf("after a change: %+v, before %+v: want the same cookie, a new generation", sa2, sa)
	}
	if sb2 := readIn(t, b); sb2 != sb {
		t.Errorf("namespace b changed from %+v to %+v though nothing touched it", sb, sb2)
	}
}

// BenchmarkReadNFT is the cost of the one netlink request a stamped ADD
// makes per family instead of an iptables-save exec.
func BenchmarkReadNFT(b *testing.B) {
	n := minitest.NewNS(b)
	err := n.Do(func(ns.NetNS) error {
		for b.Loop() {
			if _, err := readNFT(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// TestKilledWriterTemps: a writer SIGKILLed between its temporary file and
// the rename (integration/chaos kills miniroute there) leaves the temporary
// file; it is named after the stamp, so the next Record of that stamp and
// Forget remove it, and another namespace's files stay.
func TestKilledWriterTemps(t *testing.T) {
	n := minitest.NewNS(t)
	st := &Stamps{Dir: t.TempDir()}
	other := filepath.Join(st.Dir, "0000000000000001-IPv4"+libmini.TempInfix+"7") // another namespace's
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	killed := func(s Stamp) {
		t.Helper()
		f, err := os.CreateTemp(st.Dir, filepath.Base(s.path)+libmini.TempInfix+"*") // as Record names it
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	err := n.Do(func(ns.NetNS) error {
		s := st.Lookup(rules.IPv4, "digest")
		killed(s)
		killed(s)
		s.Record()
		if got := minitest.DirNames(t, st.Dir); !slices.Equal(got, []string{filepath.Base(other), filepath.Base(s.path)}) {
			t.Errorf("after Record: %v, want the stamp and the other namespace's file", got)
		}
		killed(s)
		if err := st.Forget(); err != nil {
			return err
		}
		if got := minitest.DirNames(t, st.Dir); !slices.Equal(got, []string{filepath.Base(other)}) {
			t.Errorf("after Forget: %v, want only the other namespace's file", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
