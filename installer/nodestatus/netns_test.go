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

// TestLoadList: a single .conf is read as a list of one, named as it says.
func TestLoadList(t *testing.T) {
	list, err := loadList("/x/10-one.conf", []byte(`{"cniVersion":"0.4.0","name":"one","type":"bridge","ipam":{"type":"host-local"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if list.Name != "one" || list.CNIVersion != "0.4.0" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "bridge" {
		t.Errorf("list %+v", list)
	}
	if got := listTypes(list); len(got) != 2 || got[0] != "bridge" || got[1] != "host-local" {
		t.Errorf("types %q", got)
	}
	if _, err := loadList("/x/10-bad.conf", []byte(`{`)); err == nil {
		t.Error("a .conf that is not JSON loaded")
	}
}
