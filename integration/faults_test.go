package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/integration/lab"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"golang.org/x/sys/unix"
)

// The fault tests: each breaks one thing on a lab node, runs the default
// chain through libcni as a runtime does, and requires a CNI error with the
// right code and a message naming the cause, nothing half-done (the node's
// links, addresses, routes, rules and iptables, the IPAM store and the pod's
// namespace as they were, compared with minitest's snapshots), and the same
// ADD succeeding once the fault is gone. docs/reliability.md has the table.

// faultBridge is the bridge of the default conflist, in the node's namespace.
const faultBridge = "minicni0"

// faultLimit is the lock timeout the fault tests configure (ipam.lockTimeout
// and miniroute's lockTimeout), so that a held lock fails in a second.
const faultLimit = "1s"

// faultConflist is the default conflist with lockTimeout set to faultLimit
// in miniipam (through minibridge's ipam object) and in miniroute.
func faultConflist(t *testing.T) []byte {
	t.Helper()
	var list map[string]any
	if err := json.Unmarshal(readConflist(t, "10-minicni.conflist"), &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list["plugins"].([]any) {
		pm := p.(map[string]any)
		if ipam, ok := pm["ipam"].(map[string]any); ok {
			ipam["lockTimeout"] = faultLimit
		}
		if pm["type"] == "miniroute" {
			pm["lockTimeout"] = faultLimit
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// faultLab is a one-node lab running faultConflist.
func faultLab(t *testing.T) (*lab.Lab, *lab.Node) {
	t.Helper()
	l, _ := newLab(t, 1, "10-minicni.conflist", noRoutes, func(o *lab.Options) { o.Conflist = faultConflist(t) })
	return l, l.Nodes[0]
}

// storeDir is the node's IPAM data dir (ipam.dataDir); the network's store
// is the directory of the conflist's name inside it.
func storeDir(l *lab.Lab, n *lab.Node) string {
	return filepath.Join(l.Opts.StateDir, n.Name, "ipam")
}

// nodeState is what a fault must leave as it was on the node.
type nodeState struct {
	Net   minitest.NetState // links, addresses, routes, rules, iptables
	Store []string          // every file of the network's store
}

func openNS(t *testing.T, h *lab.Host) ns.NetNS {
	t.Helper()
	n, err := ns.GetNS(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func snapNode(t *testing.T, l *lab.Lab, n *lab.Node) nodeState {
	t.Helper()
	s := nodeState{Net: withoutLinkLocal(minitest.Snapshot(t, openNS(t, &n.Host), true))}
	dir := filepath.Join(storeDir(l, n), n.Conflist.Name)
	if _, err := os.Stat(dir); err == nil {
		s.Store = minitest.Files(t, dir)
	}
	return s
}

// withoutLinkLocal drops IPv6 link-local addresses and their routes and the
// IPv6 multicast route, which the kernel adds on its own a while after a
// link comes up (the links themselves are compared).
func withoutLinkLocal(s minitest.NetState) minitest.NetState {
	ll := func(line string) bool {
		return strings.Contains(line, " fe80:") || strings.Contains(line, "dst=fe80:") || strings.Contains(line, "dst=ff00::/8")
	}
	s.Addrs = slices.DeleteFunc(s.Addrs, ll)
	s.Routes = slices.DeleteFunc(s.Routes, ll)
	return s
}

// withoutStoreInfra keeps only the store's reservations (and any debris):
// its directory, lock and round-robin cursors are made by the first ADD
// that reaches the IPAM and stay, like the bridge.
func (s nodeState) withoutStoreInfra() nodeState {
	s.Store = slices.DeleteFunc(slices.Clone(s.Store), func(line string) bool {
		name := strings.Fields(line)[0]
		return name == "./" || name == "lock" || strings.HasPrefix(name, "last_reserved_ip.")
	})
	if len(s.Store) == 0 {
		s.Store = nil
	}
	return s
}

// withoutLink drops a link's lines (link, addresses, routes) from s: node
// infrastructure a first ADD makes (the bridge) that no DEL removes.
func (s nodeState) withoutLink(name string) nodeState {
	drop := func(l []string) []string {
		out := slices.DeleteFunc(slices.Clone(l), func(line string) bool { return strings.Fields(line)[0] == name })
		if len(out) == 0 {
			return nil
		}
		return out
	}
	s.Net.Links, s.Net.Addrs, s.Net.Routes = drop(s.Net.Links), drop(s.Net.Addrs), drop(s.Net.Routes)
	return s
}

func requireSame[T any](t *testing.T, what string, before, after T) {
	t.Helper()
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("%s changed (-before +after):\n%s", what, d)
	}
}

// requireCNIError requires err to carry a CNI error of code whose msg
// contains every mention, and logs it.
func requireCNIError(t *testing.T, err error, code uint, mention ...string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want CNI error %d", err, code)
	}
	if e.Code != code {
		t.Fatalf("got CNI error %d (%s; %s), want %d", e.Code, e.Msg, e.Details, code)
	}
	for _, m := range mention {
		if !strings.Contains(e.Msg, m) {
			t.Errorf("msg %q does not name %q (details %q)", e.Msg, m, e.Details)
		}
	}
	t.Logf("code %d: %s (details: %s)", e.Code, e.Msg, e.Details)
}

// mountOnce mounts with f and returns an idempotent undo, also run when the
// test ends.
func mountOnce(t *testing.T, dir string, f func() error) (undo func()) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatalf("mount on %s: %v", dir, err)
	}
	var once sync.Once
	undo = func() {
		once.Do(func() {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
	}
	t.Cleanup(undo)
	return undo
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) (remove func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	_ = f.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// failedAdd attaches a new pod while the fault holds and requires the
// error; the pod's namespace must be as it was (loopback only). It returns
// the pod for the retry.
func failedAdd(t *testing.T, l *lab.Lab, n *lab.Node, name string, code uint, mention ...string) (*lab.Pod, minitest.NetState) {
	t.Helper()
	ctx := t.Context()
	p, err := l.NewPod(n, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.Name).Run() })
	podNS := openNS(t, &p.Host)
	podBefore := minitest.Snapshot(t, podNS, false)
	start := time.Now()
	err = l.Attach(ctx, p)
	t.Logf("ADD %s failed after %s", p.Name, time.Since(start).Round(time.Millisecond))
	requireCNIError(t, err, code, mention...)
	return p, podBefore
}

// recovered attaches p again once the fault is gone, then CHECK, the
// gateway and the outside host from the pod.
func recovered(t *testing.T, l *lab.Lab, p *lab.Pod) {
	t.Helper()
	ctx := t.Context()
	if err := l.Attach(ctx, p); err != nil {
		t.Fatalf("ADD once the fault is gone: %v", err)
	}
	if err := l.CheckPod(ctx, p); err != nil {
		t.Errorf("CHECK after recovery: %v", err)
	}
	requireAllPass(t, l.Matrix(ctx), lab.KindOwnNode, lab.KindOutside)
}

// TestFaultIPAMStoreFull: the IPAM data dir is a 128 KiB tmpfs; with a pod
// attached and the filesystem then filled, ADD of a second pod fails with
// 102 naming "no space left on device", leaves the node, the store and the
// pod's namespace as they were, and the runtime's DEL after the failed ADD
// succeeds; with the filler gone the same ADD succeeds.
func TestFaultIPAMStoreFull(t *testing.T) {
	l, n := faultLab(t)
	dir := storeDir(l, n)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mountOnce(t, dir, func() error { return unix.Mount("minicni-fault", dir, "tmpfs", 0, "size=128k,mode=0700") })
	if _, err := l.AddPod(t.Context(), n, "a", nil); err != nil {
		t.Fatal(err)
	}
	unfill := fill(t, dir)
	before := snapNode(t, l, n)
	p, podBefore := failedAdd(t, l, n, "b", libmini.CodeStore, "no space left on device")
	requireSame(t, "node", before, snapNode(t, l, n))
	requireSame(t, "pod namespace", podBefore, minitest.Snapshot(t, openNS(t, &p.Host), false))
	if err := l.Detach(t.Context(), p, false); err != nil {
		t.Errorf("the runtime's DEL after the failed ADD: %v", err)
	}
	requireSame(t, "node after DEL", before, snapNode(t, l, n))
	unfill()
	recovered(t, l, p)
}

// TestFaultIPAMStoreReadOnly: the IPAM data dir turned read-only (a
// read-only bind mount) under a running pod: ADD of a second pod fails with
// 102 naming "read-only file system" and changes nothing; DEL of the
// running pod cannot release its reservation and says so (102: the runtime
// retries DEL, which is idempotent); read-write again, the same ADD and
// that DEL succeed, and the address is released.
func TestFaultIPAMStoreReadOnly(t *testing.T) {
	l, n := faultLab(t)
	a, err := l.AddPod(t.Context(), n, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := storeDir(l, n)
	undo := mountOnce(t, dir, func() error {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
	})
	before := snapNode(t, l, n)
	p, podBefore := failedAdd(t, l, n, "b", libmini.CodeStore, "read-only file system")
	requireSame(t, "node", before, snapNode(t, l, n))
	requireSame(t, "pod namespace", podBefore, minitest.Snapshot(t, openNS(t, &p.Host), false))
	err = l.Detach(t.Context(), a, false)
	requireCNIError(t, err, libmini.CodeStore, "read-only file system")
	undo()
	if err := l.DelPod(t.Context(), a, false); err != nil {
		t.Errorf("DEL of the first pod again, read-write: %v", err)
	}
	if st := stateOf(t, l, n); slices.Contains(st.Reservations, a.IP.String()) || len(st.Veths) != 0 {
		t.Errorf("after the DEL of %s (%s): reservations %v, veths %v", a.Name, a.IP, st.Reservations, st.Veths)
	}
	recovered(t, l, p)
}

// holdLock starts another process (flock(1)) holding an exclusive flock on
// path, as another miniipam, host-local or miniroute would, and returns a
// function that kills it; it is killed when the test ends in any case. It
// returns once the lock is held.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	// flock(1) runs sleep holding the lock: both go, as a process group.
	cmd := exec.Command("flock", path, "sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(release)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return release // held by the other process
		}
		if err == nil {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
		if time.Now().After(deadline) {
			t.Fatalf("flock(1) did not take %s", path)
		}
	}
}

// TestFaultIPAMLockHeld: another process holds the network's IPAM lock
// past ipam.lockTimeout (1 s here): ADD fails with 11 (try again later)
// naming the lock and the setting, after one such wait (not two: no
// rollback DEL waits again), and changes nothing; with the holder gone the
// same ADD succeeds.
func TestFaultIPAMLockHeld(t *testing.T) {
	l, n := faultLab(t)
	if _, err := l.AddPod(t.Context(), n, "a", nil); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(storeDir(l, n), n.Conflist.Name, "lock")
	release := holdLock(t, lock)
	before := snapNode(t, l, n)
	start := time.Now()
	p, podBefore := failedAdd(t, l, n, "b", libmini.CodeTryAgainLater, lock, "after "+faultLimit, "ipam.lockTimeout")
	// One wait for the lock, not two: minibridge does not DEL the
	// in-process IPAM after its failed ADD (which released what it had).
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("the failed ADD took %s, more than one lockTimeout (%s) and change", d, faultLimit)
	}
	requireSame(t, "node", before, snapNode(t, l, n))
	requireSame(t, "pod namespace", podBefore, minitest.Snapshot(t, openNS(t, &p.Host), false))
	release()
	recovered(t, l, p)
}

// TestFaultIPTablesLockHeld: another process holds the lock of the node's
// iptables writers (miniroute's flock on the network namespace) past
// miniroute's lockTimeout (1 s here), on a node whose rules are not in
// place yet: ADD fails with 11 naming the lock and the setting, and
// miniroute wrote no rule. minibridge's part of the chain had succeeded
// (libcni does not undo it); the runtime's DEL after the failed ADD removes
// it, leaving the node as it was but for the bridge. With the holder gone
// the same ADD succeeds and the pod reaches the outside through the rules.
// (The legacy iptables' own xtables lock is TestXtablesLockLegacy in
// plugins/miniroute/backend.)
func TestFaultIPTablesLockHeld(t *testing.T) {
	l, n := faultLab(t)
	release := holdLock(t, n.Path())
	before := snapNode(t, l, n)
	p, podBefore := failedAdd(t, l, n, "a", libmini.CodeTryAgainLater, "still held by another process after "+faultLimit, "lockTimeout")
	after := snapNode(t, l, n)
	requireSame(t, "iptables", before.Net.IPTables, after.Net.IPTables)
	if err := l.Detach(t.Context(), p, false); err != nil {
		t.Fatalf("the runtime's DEL after the failed ADD: %v", err)
	}
	requireSame(t, "node after DEL (but the bridge and the store's lock and cursors)", before, snapNode(t, l, n).withoutLink(faultBridge).withoutStoreInfra())
	requireSame(t, "pod namespace after DEL", podBefore, minitest.Snapshot(t, openNS(t, &p.Host), false))
	release()
	recovered(t, l, p)
}

// noIPTablesBin is a CNI_PATH whose plugins each run in a private mount
// namespace with empty tmpfs mounts over /usr/sbin (hence /sbin, a symlink
// to it) and /usr/local/sbin: a node without the iptables tools, for the
// plugins only (the test's own snapshots still see them).
func noIPTablesBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	const hide = `for d in /usr/sbin /usr/local/sbin; do mount -t tmpfs -o size=16k,mode=0755 minicni-nosbin "$d" || exit 1; done; exec "$0" "$@"`
	for _, name := range []string{"minibridge", "miniipam", "miniroute", "portmap"} {
		script := fmt.Sprintf("#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c '%s' %s \"$@\"\n", hide, filepath.Join(binDir, name))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil { //nolint:gosec // an executable the test runs
			t.Fatal(err)
		}
	}
	return dir
}

// TestFaultIPTablesMissing: the node without iptables-save and
// iptables-restore. ADD fails in miniroute with 106 naming iptables-save
// and where it was looked for; miniroute wrote nothing; the runtime's DEL
// after the failed ADD succeeds (miniroute's DEL needs no iptables) and
// removes minibridge's veth and reservation, so the node is as it was but
// for the bridge. With the tools back the same ADD succeeds.
func TestFaultIPTablesMissing(t *testing.T) {
	l, n := faultLab(t)
	real := n.CNI
	n.CNI = libcni.NewCNIConfigWithCacheDir([]string{noIPTablesBin(t)}, filepath.Join(l.Opts.StateDir, n.Name, "cache"), nil)
	before := snapNode(t, l, n)
	p, podBefore := failedAdd(t, l, n, "a", libmini.CodeFirewall, "iptables-save not found in", "/usr/sbin")
	requireSame(t, "iptables", before.Net.IPTables, snapNode(t, l, n).Net.IPTables)
	if err := l.Detach(t.Context(), p, false); err != nil {
		t.Fatalf("the runtime's DEL after the failed ADD, still without iptables: %v", err)
	}
	requireSame(t, "node after DEL (but the bridge and the store's lock and cursors)", before, snapNode(t, l, n).withoutLink(faultBridge).withoutStoreInfra())
	requireSame(t, "pod namespace after DEL", podBefore, minitest.Snapshot(t, openNS(t, &p.Host), false))
	n.CNI = real
	recovered(t, l, p)
}

// TestFaultBridgeDeleted: the bridge deleted under two running pods. CHECK
// of a pod fails with 107 naming the missing bridge; the next ADD recreates
// the bridge and its pod works; CHECK of the old pods still fails with 107,
// now saying their host veth is on no bridge. DEL of an old pod succeeds
// and releases its address and veth (what it removes does not depend on
// the bridge), so the runtime can recreate it.
func TestFaultBridgeDeleted(t *testing.T) {
	l, n := faultLab(t)
	ctx := t.Context()
	a, err := l.AddPod(ctx, n, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddPod(ctx, n, "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", n.Name, "link", "del", faultBridge).CombinedOutput(); err != nil {
		t.Fatalf("deleting the bridge: %v: %s", err, out)
	}
	requireCNIError(t, l.CheckPod(ctx, a), libmini.CodeCheckFailed, "bridge "+faultBridge)

	c, err := l.AddPod(ctx, n, "c", nil)
	if err != nil {
		t.Fatalf("ADD after the bridge was deleted: %v", err)
	}
	if err := l.CheckPod(ctx, c); err != nil {
		t.Errorf("CHECK of the new pod: %v", err)
	}
	if _, err := lab.Ping(ctx, &c.Host, n.Gateway); err != nil {
		t.Errorf("new pod to the gateway: %v", err)
	}
	if _, err := lab.Ping(ctx, &c.Host, l.Outside.IP); err != nil {
		t.Errorf("new pod to the outside host: %v", err)
	}
	for _, p := range []*lab.Pod{a, b} {
		requireCNIError(t, l.CheckPod(ctx, p), libmini.CodeCheckFailed, "not attached to bridge "+faultBridge, "on no bridge")
	}
	if err := l.DelPod(ctx, a, false); err != nil {
		t.Fatalf("DEL of an old pod: %v", err)
	}
	st := stateOf(t, l, n)
	if slices.Contains(st.Reservations, a.IP.String()) || len(st.Veths) != 2 {
		t.Errorf("after DEL of %s (%s): reservations %v, veths %v", a.Name, a.IP, st.Reservations, st.Veths)
	}
	// The runtime recreates the old pod: the same ADD now works.
	a2, err := l.AddPod(ctx, n, "a", nil)
	if err != nil {
		t.Fatalf("ADD of the recreated pod: %v", err)
	}
	if _, err := lab.Ping(ctx, &a2.Host, c.IP); err != nil {
		t.Errorf("recreated pod to the new pod: %v", err)
	}
}
