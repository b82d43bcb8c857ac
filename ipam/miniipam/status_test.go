package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// TestStatusBinary: the binary's STATUS succeeds on a writable store,
// leaving it as it was, and answers 50 naming the cause when the store
// cannot be written (a file in its place, a read-only filesystem, no
// permission) or a range set is full.
func TestStatusBinary(t *testing.T) {
	const small = `{"ranges":[[{"subnet":"10.40.0.0/30"}]]}` // one assignable address
	tests := []struct {
		name    string
		inUse   bool                                      // an ADD and a DEL ran: the store exists
		adds    int                                       // attachments added before STATUS
		breakIt func(t *testing.T, dataDir string) string // returns the cause msg names ("" healthy)
	}{
		{name: "healthy, no store yet"},
		{name: "healthy, store in use", inUse: true},
		{name: "pool full", adds: 1, breakIt: func(*testing.T, string) string { return "has no free address" }},
		{name: "store is a file", breakIt: func(t *testing.T, dataDir string) string {
			if err := os.WriteFile(filepath.Join(dataDir, "net"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return "not a directory"
		}},
		{name: "read-only", breakIt: func(t *testing.T, dataDir string) string {
			minitest.ReadOnly(t, dataDir)
			return "read-only file system"
		}},
		{name: "permission", breakIt: func(t *testing.T, dataDir string) string {
			return minitest.DenyWrites(t, dataDir)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			conf := netConf("1.1.0", "miniipam", dataDir, small)
			if tt.inUse {
				mustOK(t, call{cmd: "ADD", id: "c1", stdin: conf})
				mustOK(t, call{cmd: "DEL", id: "c1", stdin: conf})
			}
			for i := range tt.adds {
				mustOK(t, call{cmd: "ADD", id: "c" + string(rune('1'+i)), stdin: conf})
			}
			cause := ""
			if tt.breakIt != nil {
				cause = tt.breakIt(t, dataDir)
			}
			store := filepath.Join(dataDir, "net")
			var before map[string]string
			if fi, err := os.Stat(store); err == nil && fi.IsDir() {
				before = storeFiles(t, store)
			}
			o := runPlugin(t, call{cmd: "STATUS", stdin: conf})
			if cause == "" {
				if o.exit != 0 {
					t.Fatalf("STATUS: %s", o)
				}
			} else {
				wantError(t, "STATUS", o, libmini.CodeNotAvailable)
				if e := o.cniError(); !strings.Contains(e.Msg, cause) || !strings.Contains(e.Msg, "net") {
					t.Errorf("msg %q does not name the network and %q", e.Msg, cause)
				}
			}
			if before != nil {
				if d := cmp.Diff(before, storeFiles(t, store)); d != "" {
					t.Errorf("STATUS changed the store (-before +after):\n%s", d)
				}
			}
			if names := minitest.DirNames(t, dataDir); before == nil && cause == "" && len(names) != 0 {
				t.Errorf("STATUS left %v in dataDir", names)
			}
		})
	}
}
