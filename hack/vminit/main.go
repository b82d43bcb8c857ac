// Command vminit is the init (PID 1) of the throw-away virtual machine
// hack/vm-test.sh boots to run tests that need kernel features this
// machine's kernel lacks (bridge VLAN filtering). It loads the kernel
// modules named on the kernel command line (minicni.modules=a,b, with their
// dependencies, from /lib/modules in the initramfs), mounts the host's root
// file system read-only over virtio-9p (tag hostroot) with a fresh tmpfs on
// /run, chroots into it, runs the script named by minicni.run with /bin/sh
// (HOME and TMPDIR in /run/vmtmp), prints "minicni-vm-exit N" and powers the
// machine off. /tmp stays the host's, read-only: the checkout, and so the
// script and the test binary, may live there (a CI clone often does).
package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vminit:", err)
		code = 1
	}
	fmt.Printf("minicni-vm-exit %d\n", code)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {} // PID 1 must not exit
}

// run prepares the machine and runs the script; it returns the script's
// exit status.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func run() (int, error) {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := mountAt(m.src, m.dst, m.typ, 0, ""); err != nil {
			return 0, err
		}
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return 0, err
	}
	params := map[string]string{}
	for _, f := range strings.Fields(string(cmdline)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			params[k] = v
		}
	}
	mods, err := moduleIndex("/lib/modules")
	if err != nil {
		return 0, err
	}
	loaded := map[string]bool{}
	for _, m := range strings.Split(params["minicni.modules"], ",") {
		if m != "" {
			if err := load(mods, loaded, m); err != nil {
				return 0, err
			}
		}
	}
	if err := mountAt("hostroot", "/newroot", "9p", unix.MS_RDONLY, "trans=virtio,version=9p2000.L,msize=262144"); err != nil {
		return 0, err
	}
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/newroot/proc", "proc"}, {"sysfs", "/newroot/sys", "sysfs"}, {"devtmpfs", "/newroot/dev", "devtmpfs"},
		{"tmpfs", "/newroot/run", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil {
			return 0, fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err)
		}
	}
	if err := os.Mkdir("/newroot/run/vmtmp", 0o700); err != nil {
		return 0, err
	}
	if err := unix.Chroot("/newroot"); err != nil {
		return 0, err
	}
	if err := os.Chdir("/"); err != nil {
		return 0, err
	}
	script := params["minicni.run"]
	if script == "" {
		return 0, errors.New("no minicni.run= on the kernel command line")
	}
	cmd := exec.Command("/bin/sh", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/run/vmtmp", "TMPDIR=/run/vmtmp"}
	err = cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func mountAt(src, dst, typ string, flags uintptr, data string) error {
	// Mount points inside the throw-away VM, which has only root.
	if err := os.MkdirAll(dst, 0o755); err != nil { //nolint:gosec // see above
		return err
	}
	if err := unix.Mount(src, dst, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", typ, dst, err)
	}
	return nil
}

// moduleIndex maps module names (dashes as underscores) to their .ko files.
func moduleIndex(dir string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".ko") {
			idx[strings.ReplaceAll(strings.TrimSuffix(d.Name(), ".ko"), "-", "_")] = path
		}
		return err
	})
	return idx, err
}

// load loads module name after its dependencies (the depends= field of
// its .modinfo section); a module built into the kernel is not in idx and
// is skipped.
func load(idx map[string]string, loaded map[string]bool, name string) error {
	name = strings.ReplaceAll(name, "-", "_")
	path, ok := idx[name]
	if loaded[name] || !ok {
		return nil
	}
	loaded[name] = true
	deps, err := depends(path)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if err := load(idx, loaded, d); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading %s: %w", path, err)
	}
	return nil
}

func depends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, "depends="); ok && v != "" {
			return strings.Split(v, ","), nil
		}
	}
	return nil, nil
}
