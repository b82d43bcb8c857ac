// Package minitest holds test helpers shared by minicni's packages: a network
// namespace owned by one test, the loop over every CNI version, and building
// plugin binaries (minicni's own and the reference plugins pinned in go.mod).
package minitest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"golang.org/x/sys/unix"
)

// Versions is every CNI spec version, oldest first, written out from the
// spec's own list rather than taken from libmini.Versions, so that tests
// comparing what a plugin announces with it check something.
var Versions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// ForEachVersion runs f as a subtest for every CNI version.
func ForEachVersion(t *testing.T, f func(t *testing.T, ver string)) {
	t.Helper()
	for _, v := range Versions {
		t.Run("cni-"+v, func(t *testing.T) { f(t, v) })
	}
}

// RequireRoot skips the test when not running as root (see Skip).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (network namespaces)")
	}
}

// NoSkipEnv names the variable that turns Skip into a failure. CI sets it
// (.ci/run), so that a green CI means every test ran: a missing component
// (root, containerd, iptables) fails there instead of passing quietly.
const NoSkipEnv = "MINICNI_NO_SKIP"

// Skip skips the test because something it needs is missing, or fails it
// when NoSkipEnv is 1.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(NoSkipEnv) == "1" {
		t.Fatalf("would skip, but %s=1: "+format, append([]any{NoSkipEnv}, args...)...)
	}
	t.Skipf(format, args...)
}

// RemoveNS closes n and deletes it. A child forked by a parallel test holds a
// copy of every fd until it execs, which makes a plain umount fail with EBUSY
// and leak the namespace: then the mount is detached instead, so the kernel
// frees the namespace as soon as that child execs.
func RemoveNS(n ns.NetNS) error {
	_ = n.Close()
	if err := testutils.UnmountNS(n); err != nil {
		if err := unix.Unmount(n.Path(), unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			return err
		}
		return os.Remove(n.Path())
	}
	return nil
}

// NewNS returns a fresh network namespace that is closed and removed when the
// test ends, whatever its outcome. It skips the test when not root.
func NewNS(t testing.TB) ns.NetNS {
	t.Helper()
	RequireRoot(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { _ = RemoveNS(n) })
	return n
}

var seq atomic.Uint32

// Name returns a name unique in this process and short enough for an
// interface (at most 15 bytes): prefix, pid and a counter.
func Name(prefix string) string {
	n := fmt.Sprintf("%s%x%x", prefix, os.Getpid()&0xffff, seq.Add(1))
	if len(n) > 15 {
		n = n[len(n)-15:]
	}
	return n
}

// Module is this repository's module path.
const Module = "github.com/minicni/minicni"

// Plugin packages by binary name: minicni's own and the reference plugins
// (pinned as tools in go.mod, so they are built at go.mod's version).
var Plugins = map[string]string{
	"miniipam":   Module + "/ipam/miniipam",
	"minibridge": Module + "/plugins/minibridge",
	"miniroute":  Module + "/plugins/miniroute",
	"host-local": "github.com/containernetworking/plugins/plugins/ipam/host-local",
	"static":     "github.com/containernetworking/plugins/plugins/ipam/static",
	"bridge":     "github.com/containernetworking/plugins/plugins/main/bridge",
	"loopback":   "github.com/containernetworking/plugins/plugins/main/loopback",
	"portmap":    "github.com/containernetworking/plugins/plugins/meta/portmap",
	"firewall":   "github.com/containernetworking/plugins/plugins/meta/firewall",
	// The installer's package directory is not its binary's name.
	"minicni-installer": Module + "/installer",
	"minicni":           Module + "/cmd/minicni",
}

// PrebuiltEnv names a directory holding the plugin binaries already built:
// when it is set, BuildPlugins copies them from there instead of running go
// build, for test binaries run where there is no Go toolchain or build
// cache (hack/vm-test.sh runs some in a virtual machine).
const PrebuiltEnv = "MINITEST_PREBUILT_PLUGINS"

// BuildPlugins builds the named plugins (keys of Plugins) into dir, with one
// go build for all whose package directory is their name, or copies them
// from $MINITEST_PREBUILT_PLUGINS. It is meant for TestMain, hence no
// testing.TB.
func BuildPlugins(dir string, names ...string) error {
	if pre := os.Getenv(PrebuiltEnv); pre != "" {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(pre, n))
			if err != nil {
				return fmt.Errorf("%s: %w", PrebuiltEnv, err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	builds := [][]string{}
	for _, n := range names {
		p, ok := Plugins[n]
		if !ok {
			return fmt.Errorf("unknown plugin %q", n)
		}
		if filepath.Base(p) == n {
			args = append(args, p)
		} else {
			builds = append(builds, []string{"build", "-trimpath", "-o", filepath.Join(dir, n), p})
		}
	}
	if len(args) > 4 {
		builds = append(builds, args)
	}
	for _, b := range builds {
		cmd := exec.Command("go", b...)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	return nil
}

// BuildPluginsT is BuildPlugins into a temporary directory owned by t; it
// returns the directory, to be used as CNI_PATH.
func BuildPluginsT(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := BuildPlugins(dir, names...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// DirNames lists the names in dir, sorted (nil when it is empty); any error
// fails the test.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Reservations lists the addresses reserved under dataDir/network, the
// on-disk layout host-local and miniipam share (one file per address); a
// missing directory is no reservation.
func Reservations(t testing.TB, dataDir, network string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, network))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// MainWithPlugins is a TestMain that needs built binaries: as root it
// builds names into a fresh temporary directory, sets *dir to it, runs the
// tests, removes the directory and exits with their status. Not root, it
// only runs them: every test needing the binaries needs root too
// (RequireRoot fails or skips them).
func MainWithPlugins(m *testing.M, dir *string, names ...string) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	d, err := os.MkdirTemp("", "minicni-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := BuildPlugins(d, names...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(d)
		os.Exit(1)
	}
	*dir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}
