package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"golang.org/x/sys/unix"
)

// hold takes an exclusive flock on path until the test ends (or release is
// called). A flock belongs to the open file, so this conflicts with any
// other open of the same inode, in this process or another.
func hold(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock %s: %v", path, err)
	}
	release = func() { _ = f.Close() }
	t.Cleanup(release)
	return release
}

// TestLockTimeout: with the namespace lock held by another open file of the
// namespace (as another miniroute process would hold it), Lock gives up
// after LockTimeout with an error that says so and wraps
// context.DeadlineExceeded (CNI code 11 in route.Ensure); once the lock is
// released, Lock succeeds.
func TestLockTimeout(t *testing.T) {
	n := minitest.NewNS(t)
	release := hold(t, n.Path())
	e := Exec{Family: rules.IPv4, LockTimeout: 200 * time.Millisecond}
	minitest.Do(t, n, func() error {
		start := time.Now()
		_, err := e.Lock(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still held by another process after 200ms (lockTimeout)") {
			t.Errorf("Lock with the lock held: %v", err)
		}
		t.Logf("with the namespace lock held: %v", err)
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Errorf("Lock gave up after %s, want about 200ms", d)
		}
		release()
		unlock, err := e.Lock(context.Background())
		if err != nil {
			t.Errorf("Lock once released: %v", err)
		} else {
			unlock()
		}
		return nil
	})
}

// TestXtablesLockLegacy: the legacy iptables-restore, which takes the
// xtables lock, gives up after --wait LockTimeout (rounded up to 1s) when
// another process holds that lock, and Restore's error wraps
// context.DeadlineExceeded; once the lock is free the same Restore
// succeeds. The lock is the test's own file (XTABLES_LOCKFILE, which the
// legacy binary honours), never the machine's /run/xtables.lock, and the
// rules go to a namespace of the test's own.
func TestXtablesLockLegacy(t *testing.T) {
	minitest.RequireRoot(t)
	multi := "/usr/sbin/xtables-legacy-multi"
	if _, err := os.Stat(multi); err != nil {
		minitest.Skip(t, "legacy iptables not installed: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"iptables-restore", "iptables-save"} {
		if err := os.Symlink(multi, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XTABLES_LOCKFILE", lock)
	n := minitest.NewNS(t)
	release := hold(t, lock)
	e := Exec{Family: rules.IPv4, Dirs: []string{dir}, LockTimeout: 300 * time.Millisecond}
	in := []byte("*filter\n:MINICNI-LOCKTEST - [0:0]\nCOMMIT\n")
	minitest.Do(t, n, func() error {
		err := e.Restore(context.Background(), in)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "iptables-restore: Another app is currently holding the xtables lock. Stopped waiting after 1s. (lockTimeout 300ms)") {
			t.Errorf("Restore with the xtables lock held: %v", err)
		}
		t.Logf("with the xtables lock held: %v", err)
		out, err := e.Save(context.Background())
		if err != nil || strings.Contains(string(out), "MINICNI-LOCKTEST") {
			t.Errorf("after the refused restore: %v, ruleset:\n%s", err, out)
		}
		release()
		if err := e.Restore(context.Background(), in); err != nil {
			t.Errorf("Restore once the lock is free: %v", err)
		}
		out, err = e.Save(context.Background())
		if err != nil || !strings.Contains(string(out), ":MINICNI-LOCKTEST") {
			t.Errorf("after the restore: %v, ruleset:\n%s", err, out)
		}
		return nil
	})
}
