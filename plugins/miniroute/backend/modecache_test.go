package backend

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/minicni/minicni/libmini/minitest"

	"github.com/minicni/minicni/libmini"
)

// TestModeCacheKilledWriterTemps: a writer SIGKILLed between its temporary
// file and the rename leaves the temporary file; it is named after the cache
// file, so the next write and Forget remove it, and another namespace's
// files stay.
func TestModeCacheKilledWriterTemps(t *testing.T) {
	c := ModeCache{Dir: t.TempDir()}
	cookie, err := netnsCookie()
	if err != nil {
		t.Fatal(err)
	}
	path := c.path(cookie)
	other := c.path(cookie+1) + libmini.TempInfix + "7"
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	killed := func() {
		t.Helper()
		f, err := os.CreateTemp(c.Dir, filepath.Base(path)+libmini.TempInfix+"*") // as writeDecision names it
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	killed()
	killed()
	if err := writeDecision(path, "boot", Decision{Mode: NFT, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if got := minitest.DirNames(t, c.Dir); !slices.Equal(got, []string{filepath.Base(path), filepath.Base(other)}) {
		t.Errorf("after a write: %v, want the cache file and the other namespace's file", got)
	}
	killed()
	if err := c.Forget(); err != nil {
		t.Fatal(err)
	}
	if got := minitest.DirNames(t, c.Dir); !slices.Equal(got, []string{filepath.Base(other)}) {
		t.Errorf("after Forget: %v, want only the other namespace's file", got)
	}
}
