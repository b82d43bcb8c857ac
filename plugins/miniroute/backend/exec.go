// Package backend runs iptables for miniroute: the iptables-save and
// iptables-restore processes of one family, the lock that serializes
// miniroute's writers, and the test of which iptables variant (nf_tables or
// legacy) is installed.
//
// It is not go-iptables' *iptables.IPTables on purpose: that runs
// `iptables --version` whenever one is made and reads one chain per exec, so
// checking two chains and the two jumps to them costs five execs, while one
// iptables-save reads everything at once; and only iptables-restore replaces
// a chain's content atomically.
package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minicni/minicni/plugins/miniroute/rules"
	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds each iptables exec unless Exec.Timeout says
// otherwise: well inside the two minutes the kubelet gives a whole sandbox,
// even with the xtables lock held elsewhere.
const DefaultTimeout = 30 * time.Second

// DefaultLockTimeout bounds the wait for a lock unless Exec.LockTimeout
// says otherwise: miniroute's namespace lock (Lock) and, with the legacy
// iptables, the xtables lock (iptables-restore --wait).
const DefaultLockTimeout = 30 * time.Second

// Exec runs the family's iptables-save and iptables-restore binaries (from
// Debian's iptables package) in the calling thread's network namespace.
type Exec struct {
	Family rules.Family
	// Dirs, when set, are the only directories searched for the binaries.
	// By default PATH is searched, then DefaultDirs (a runtime's PATH may
	// lack the sbin directories).
	Dirs []string
	// Timeout bounds each exec; zero means DefaultTimeout.
	Timeout time.Duration
	// Mode pins the iptables mode: Legacy runs iptables-legacy-save and
	// iptables-legacy-restore, NFT the iptables-nft pair (ip6tables-… for
	// IPv6). "" runs the plain iptables-save and iptables-restore, whichever
	// mode they are (the node's alternatives decide).
	Mode Mode
	// LockTimeout bounds the wait for the namespace lock (Lock) and for
	// the xtables lock (iptables-restore --wait, whole seconds, rounded
	// up; only the legacy iptables takes that lock); zero means
	// DefaultLockTimeout.
	LockTimeout time.Duration
}

// New returns the real backend for f, with the default search and timeout.
func New(f rules.Family) Exec { return Exec{Family: f, Timeout: DefaultTimeout} }

// DefaultDirs are the directories searched after PATH when Exec.Dirs is nil.
func DefaultDirs() []string { return []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} }

func (e Exec) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

func (e Exec) lockTimeout() time.Duration {
	if e.LockTimeout <= 0 {
		return DefaultLockTimeout
	}
	return e.LockTimeout
}

// waitSeconds is iptables-restore's --wait argument: LockTimeout in whole
// seconds, rounded up.
func (e Exec) waitSeconds() string {
	return strconv.FormatInt(int64((e.lockTimeout()+time.Second-1)/time.Second), 10)
}

// lookPath finds the family's variant of tool ("save" or "restore").
func (e Exec) lookPath(tool string) (string, error) {
	name := e.Family.Command() + e.Mode.infix() + "-" + tool
	if e.Dirs == nil {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	dirs := e.Dirs
	if dirs == nil {
		dirs = DefaultDirs()
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	searched := append([]string{"PATH"}, dirs...)
	if e.Dirs != nil {
		searched = dirs
	}
	return "", &MissingToolError{Tool: name, Searched: searched}
}

// MissingToolError is the error of a backend whose iptables binary is not
// installed: STATUS names the tool from it.
type MissingToolError struct {
	Tool     string   // e.g. ip6tables-restore
	Searched []string // where it was looked for ("PATH" and directories)
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("%s not found in %s (Debian package iptables)", e.Tool, strings.Join(e.Searched, ", "))
}

// Save runs iptables-save.
func (e Exec) Save(ctx context.Context) ([]byte, error) {
	return e.run(ctx, "save", nil)
}

// Restore runs iptables-restore --noflush --wait SECONDS with rules on
// stdin.
func (e Exec) Restore(ctx context.Context, rules []byte) error {
	if len(rules) == 0 {
		_, err := e.lookPath("restore")
		return err
	}
	_, err := e.run(ctx, "restore", rules, "--noflush", "--wait", e.waitSeconds())
	return err
}

func (e Exec) run(ctx context.Context, tool string, stdin []byte, args ...string) ([]byte, error) {
	path, err := e.lookPath(tool)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s did not finish within %s: %w", filepath.Base(path), e.timeout(), ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		for _, line := range strings.Split(msg, "\n") {
			if strings.Contains(line, "holding the xtables lock") {
				// The legacy iptables gave up waiting: a lock timeout, like Lock's.
				return nil, fmt.Errorf("%s: %s (lockTimeout %s): %w", filepath.Base(path), strings.TrimSpace(line), e.lockTimeout(), context.DeadlineExceeded)
			}
		}
		return nil, fmt.Errorf("%s: %s", filepath.Base(path), msg)
	}
	return stdout.Bytes(), nil
}

// Lock takes an exclusive flock on the calling thread's network namespace
// file (/proc/thread-self/ns/net). Every process in the same namespace opens
// the same nsfs inode, so the lock covers exactly the ruleset being written:
// no lock file to create or clean up, released by the kernel if the holder
// dies, and tests in separate namespaces do not wait for each other. It
// polls, so the context's deadline is honoured, and gives up after
// LockTimeout with an error wrapping context.DeadlineExceeded.
func (e Exec) Lock(ctx context.Context) (func(), error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, e.lockTimeout())
	defer cancel()
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("lock network namespace: %w", err)
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock network namespace: %w", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			if parent.Err() == nil {
				return nil, fmt.Errorf("the lock of this network namespace's iptables writers (flock on /proc/thread-self/ns/net) is still held by another process after %s (lockTimeout): %w",
					e.lockTimeout(), ctx.Err())
			}
			return nil, fmt.Errorf("lock network namespace: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// NFTables reports whether e's iptables-save is the nf_tables variant
// (e.Mode NFT, or with no Mode a binary resolving to xtables-nft-multi, as
// on Debian 12) rather than the legacy one: only then
// do its changes bump the namespace's nf_tables generation, which stamps
// rely on.
func (e Exec) NFTables() bool {
	if e.Mode != "" {
		return e.Mode == NFT
	}
	path, err := e.lookPath("save")
	if err != nil {
		return false
	}
	real, err := filepath.EvalSymlinks(path)
	return err == nil && strings.Contains(filepath.Base(real), "nft")
}
