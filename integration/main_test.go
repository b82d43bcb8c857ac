// Package integration drives minicni's conflists through libcni exactly as a
// container runtime does, against simulated nodes built by package lab.
package integration

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minicni/minicni/integration/lab"
	"github.com/minicni/minicni/libmini/minitest"
)

// binDir holds every plugin a conflist names, built once for the package.
var binDir string

func TestMain(m *testing.M) {
	minitest.MainWithPlugins(m, &binDir, "minibridge", "miniipam", "miniroute", "portmap", "host-local", "loopback", "minicni-installer")
}

func conflistPath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "conflist", name)
}

func readConflist(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(conflistPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// How a lab's nodes learn each other's pod subnets.
const (
	noRoutes     = ""
	staticRoutes = "static" // miniroute's routes key
	agentRoutes  = "agent"  // one minicni-installer agent per node
)

// newLab brings up a lab named uniquely for this test and tears it down at
// the end, whatever happens. mods change the options before it comes up.
func newLab(t *testing.T, nodes int, conflist string, routes string, mods ...func(*lab.Options)) (*lab.Lab, context.Context) {
	t.Helper()
	return newLabWith(t, binDir, nodes, conflist, routes, mods...)
}

// newLabWith is newLab with bin as the nodes' CNI_PATH.
func newLabWith(t *testing.T, bin string, nodes int, conflist string, routes string, mods ...func(*lab.Options)) (*lab.Lab, context.Context) {
	t.Helper()
	minitest.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	name := strings.ToLower(minitest.Name("t"))
	if len(name) > 8 {
		name = name[len(name)-8:]
	}
	opts := lab.Options{Name: name, Nodes: nodes, BinDir: bin, Conflist: readConflist(t, conflist),
		StateDir: t.TempDir(), StaticRoutes: routes == staticRoutes, Logf: t.Logf}
	if routes == agentRoutes {
		opts.Agent = filepath.Join(bin, "minicni-installer")
	}
	for _, m := range mods {
		m(&opts)
	}
	l, err := lab.Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l, ctx
}
