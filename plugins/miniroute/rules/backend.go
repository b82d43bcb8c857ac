package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Family is an IP family: IPv4 (iptables) or IPv6 (ip6tables).
type Family int

// The two families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// command is the family's iptables command, as an admin types it.
func (f Family) command() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// Backend reads and writes one family's iptables ruleset in the network
// namespace of the calling thread. Exec is the real one; unit tests use a
// fake.
//
// It is not go-iptables' *iptables.IPTables on purpose: that runs
// `iptables --version` whenever one is made and reads one chain per exec, so
// checking two chains and the two jumps to them costs five execs, while one
// iptables-save reads everything at once; and only iptables-restore replaces
// a chain's content atomically.
type Backend interface {
	// Save returns the ruleset in iptables-save format.
	Save(ctx context.Context) ([]byte, error)
	// Restore applies rules in iptables-restore format without flushing the
	// tables it names, in one transaction. Empty rules only check that the
	// restore command can be run.
	Restore(ctx context.Context, rules []byte) error
	// Lock serializes miniroute's writers of this ruleset (across processes)
	// until unlock is called.
	Lock(ctx context.Context) (unlock func(), err error)
}

// ExecTimeout bounds each iptables exec: well inside the two minutes the
// kubelet gives a whole sandbox, even with the xtables lock held elsewhere.
var ExecTimeout = 30 * time.Second

// Exec runs the family's iptables-save and iptables-restore binaries (from
// Debian's iptables package) in the calling thread's network namespace.
type Exec struct {
	Family Family
	// Dirs, when set, are the only directories searched for the binaries.
	// By default PATH is searched, then /usr/sbin, /sbin, /usr/local/sbin (a
	// runtime's PATH may lack the sbin directories).
	Dirs []string
}

// NewExec returns the real backend for f.
func NewExec(f Family) Backend { return Exec{Family: f} }

var defaultDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// lookPath finds the family's variant of tool ("save" or "restore").
func (e Exec) lookPath(tool string) (string, error) {
	name := e.Family.command() + "-" + tool
	if e.Dirs == nil {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	dirs := e.Dirs
	if dirs == nil {
		dirs = defaultDirs
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

// Restore runs iptables-restore --noflush --wait with rules on stdin.
func (e Exec) Restore(ctx context.Context, rules []byte) error {
	if len(rules) == 0 {
		_, err := e.lookPath("restore")
		return err
	}
	_, err := e.run(ctx, "restore", rules, "--noflush", "--wait")
	return err
}

func (e Exec) run(ctx context.Context, tool string, stdin []byte, args ...string) ([]byte, error) {
	path, err := e.lookPath(tool)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s did not finish within %s: %w", filepath.Base(path), ExecTimeout, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
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
// polls, so the context's deadline is honoured.
func (e Exec) Lock(ctx context.Context) (func(), error) {
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
			return nil, fmt.Errorf("lock network namespace: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}
