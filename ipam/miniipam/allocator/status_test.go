package allocator

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// tree lists every path under dir, relative to it.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStatusStore: STATUS answers 50 naming the cause when the store cannot
// be written, whether or not the network's directory exists yet, and leaves
// nothing behind when it can.
func TestStatusStore(t *testing.T) {
	tests := []struct {
		name   string
		before bool // an ADD ran first: the network's directory exists
		// breakIt makes the store unwritable (nil: healthy) and may return
		// the cause instead of cause.
		breakIt func(t *testing.T, e *env) string
		cause   string // in msg
	}{
		{name: "healthy, no store yet"},
		{name: "healthy, store in use", before: true},
		{name: "store is a file", breakIt: func(t *testing.T, e *env) string { writeFile(t, e.dir()); return "" }, cause: "not a directory"},
		{name: "dataDir is a file", breakIt: func(t *testing.T, e *env) string {
			if err := os.Remove(e.dataDir); err != nil {
				t.Fatal(err)
			}
			writeFile(t, e.dataDir)
			return ""
		}, cause: "not a directory"},
		{name: "read-only, no store yet", breakIt: func(t *testing.T, e *env) string { minitest.ReadOnly(t, e.dataDir); return "" }, cause: "read-only file system"},
		{name: "read-only, store in use", before: true, breakIt: func(t *testing.T, e *env) string { minitest.ReadOnly(t, e.dataDir); return "" }, cause: "read-only file system"},
		{name: "permission, no store yet", breakIt: func(t *testing.T, e *env) string { return minitest.DenyWrites(t, e.dataDir) }},
		{name: "permission, store in use", before: true, breakIt: func(t *testing.T, e *env) string { return minitest.DenyWrites(t, e.dir()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.alloc(v4)
			if tt.before {
				mustAdd(t, a, "c1", "eth0")
			}
			cause := tt.cause
			if tt.breakIt != nil {
				if c := tt.breakIt(t, e); c != "" {
					cause = c
				}
			}
			var before []string
			if fi, err := os.Stat(e.dataDir); err == nil && fi.IsDir() {
				before = tree(t, e.dataDir)
			}
			err := a.Status(ctx)
			if cause == "" {
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
				if d := cmp.Diff(before, tree(t, e.dataDir)); d != "" {
					t.Errorf("Status changed dataDir (-before +after):\n%s", d)
				}
				return
			}
			wantCode(t, "Status", err, libmini.CodeNotAvailable)
			ce := err.(*types.Error)
			for _, want := range []string{e.dir(), "cannot be written", cause} {
				if !strings.Contains(ce.Msg, want) {
					t.Errorf("msg %q does not name %q", ce.Msg, want)
				}
			}
			if !strings.Contains(ce.Details, cause) {
				t.Errorf("details %q do not carry the underlying error", ce.Details)
			}
			if before != nil {
				if d := cmp.Diff(before, tree(t, e.dataDir)); d != "" {
					t.Errorf("Status changed dataDir (-before +after):\n%s", d)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}
