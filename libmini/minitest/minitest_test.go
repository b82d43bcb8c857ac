package minitest

import (
	"os"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
)

func TestNewNSIsSeparateAndRemoved(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		n := NewNS(t)
		path = n.Path()
		hostIno := inode(t, "/proc/thread-self/ns/net")
		if err := n.Do(func(ns.NetNS) error {
			if got := inode(t, "/proc/thread-self/ns/net"); got == hostIno || got != inode(t, n.Path()) {
				t.Errorf("Do ran in netns inode %d; host %d, test netns %d", got, hostIno, inode(t, n.Path()))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	if path == "" {
		Skip(t, "not root")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists after the test: %v", path, err)
	}
}

func TestName(t *testing.T) {
	a, b := Name("verylongprefix"), Name("verylongprefix")
	if a == b || len(a) > 15 || len(b) > 15 {
		t.Errorf("Name gave %q and %q", a, b)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestVersionsMatchLibmini: the plugins announce exactly the spec's versions.
func TestVersionsMatchLibmini(t *testing.T) {
	if d := cmp.Diff(Versions, libmini.Versions.SupportedVersions()); d != "" {
		t.Errorf("libmini.Versions (-spec +libmini):\n%s", d)
	}
}
