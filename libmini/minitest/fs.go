package minitest

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// ReadOnly bind-mounts dir onto itself read-only until the test ends, so
// every write under it fails with EROFS, even root's. dir must be the test's
// own (t.TempDir()): the mount is in the machine's mount namespace. It skips
// the test when not root.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	RequireRoot(t)
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting %s read-only: %v", dir, err)
	}
}

// Immutable sets the immutable attribute (chattr +i) on dir until the test
// ends: creating a file in it then fails with EPERM, even for root, which
// permission bits cannot do. It skips the test when not root or when the
// filesystem has no such attribute.
func Immutable(t testing.TB, dir string) {
	t.Helper()
	RequireRoot(t)
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		Skip(t, "chattr +i %s: %v: %s (the filesystem may not support it)", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	})
}

// DenyWrites makes dir refuse new files until the test ends and returns the
// error text a write then meets: the immutable attribute as root, whom
// permission bits do not stop ("operation not permitted"), mode 0500
// otherwise ("permission denied").
func DenyWrites(t testing.TB, dir string) (cause string) {
	t.Helper()
	if os.Geteuid() == 0 {
		Immutable(t, dir)
		return "operation not permitted"
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, fi.Mode().Perm()) })
	return "permission denied"
}
