package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a daemon the test started, its output in a log file.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan error
}

// startProc runs bin with args inside the namespaces named by enter
// (nsenter options; none: the test's own), logging to dir/name.log.
func startProc(dir, name string, enter []string, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), exited: make(chan error, 1)}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if len(enter) > 0 {
		p.cmd = exec.Command("nsenter", append(append(append([]string{}, enter...), bin), args...)...)
	} else {
		p.cmd = exec.Command(bin, args...)
	}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Pdeathsig: if the test binary dies, the daemon goes too. It fires when
	// the forking thread exits, so the fork runs on a locked thread.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	err = p.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	return p, nil
}

// alive fails when the daemon has exited, with the end of its log.
func (p *proc) alive() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("%s exited: %v\n%s", p.name, err, tail(p.log, 30))
	default:
		return nil
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		_ = err // stopped by us: its exit status says nothing
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		_ = err // killed by us, likewise
		return fmt.Errorf("%s ignored SIGTERM for %v, killed", p.name, grace)
	}
}

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a command and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// poll calls f every interval until it reports done, fails, or ctx ends;
// the last "not yet" reason is in the timeout error.
func poll(ctx context.Context, interval time.Duration, f func() (done bool, why string, err error)) error {
	var why string
	for {
		done, w, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		why = w
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out: %s", why)
		case <-time.After(interval):
		}
	}
}

// kubeletSysctls are the kernel settings the kubelet changes at start
// (its protectKernelDefaults=false path); the test puts them back.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

func readSysctls() map[string]string {
	m := map[string]string{}
	for _, k := range kubeletSysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			m[k] = strings.TrimSpace(string(b))
		}
	}
	return m
}

func restoreSysctls(saved map[string]string) error {
	var errs []error
	for k, v := range saved {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil && strings.TrimSpace(string(b)) == v {
			continue
		}
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupHierarchies are the mounted cgroup v1 hierarchies (and the v2 one
// when mounted), where a node's cgroup root is made and removed.
func cgroupHierarchies() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var hs []string
	for _, e := range ents {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
				hs = append(hs, p)
			}
		}
	}
	return hs
}

// makeCgroupRoot creates /<name> in every hierarchy (the kubelet refuses a
// cgroup root that does not exist), with cpuset's cpus and mems copied
// from the parent (cgroup v1 leaves them empty).
func makeCgroupRoot(name string) error {
	for _, h := range cgroupHierarchies() {
		p := filepath.Join(h, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(p, f), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeCgroupRoot removes /<name> and everything below it in every
// hierarchy, deepest first, moving any straggling process to the root
// first (none after a clean stop).
func removeCgroupRoot(name string) error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			var err error
			for range 50 { // a just-killed process leaves its cgroup a moment later
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// hostDirs creates the directories missing on the machine among paths
// (mount points the nodes bind their private copies onto), returning the
// ones it made, deepest first, for removeEmpty.
func hostDirs(paths ...string) ([]string, error) {
	var made []string
	for _, p := range paths {
		var missing []string
		for d := p; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			missing = append(missing, d)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return made, err
		}
		made = append(made, missing...)
	}
	slices.SortFunc(made, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(made), nil
}

// removeEmpty removes the directories hostDirs made, when still empty.
func removeEmpty(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
