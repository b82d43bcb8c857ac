package nodestatus

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNetnsGoneOnlyWhenProvable: a namespace path counts as gone only when
// its directory is visible and it is not a namespace there.
func TestNetnsGoneOnlyWhenProvable(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		gone bool
	}{
		{"", false},                                     // not recorded
		{"relative/netns", false},                       // not a path libcni writes
		{"/proc/4000000/ns/net", false},                 // another PID namespace's pid
		{filepath.Join(dir, "missing", "cni-1"), false}, // directory not visible here
		{filepath.Join(dir, "cni-1"), true},             // directory there, file gone
		{plain, true},                                   // a file, not a namespace
		{"/proc/self/ns/net", false},                    // a live namespace
	} {
		if got := netnsGone(tc.path); got != tc.gone {
			t.Errorf("netnsGone(%q) = %t, want %t", tc.path, got, tc.gone)
		}
	}
}
