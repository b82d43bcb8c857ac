// Package containerd runs a private containerd for the integration tests,
// Debian's 1.6 or a 2.x built by hack/containerd2.sh: its own root, state,
// sockets, config and CNI dirs, started as a child process (no systemd here)
// and stopped with everything it left (pods, shims, runc containers, mounts),
// so nothing else on the machine is touched. The CRI tests drive it directly;
// the end-to-end test runs a kubelet against it.
package containerd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRINamespace is the containerd namespace the CRI plugin works in.
const CRINamespace = "k8s.io"

// Daemon is a containerd started by a test, with everything it writes
// under Dir: root, state, sockets, the CRI plugin's netns mounts, runc's
// state and the log.
type Daemon struct {
	Dir, Root, State, Sock, Log string
	Snapshotter                 string
	// ShimSockets is the directory of the shims' sockets: under Dir for
	// containerd 2.x (socket_dir), /run/containerd/s for 1.6, which has no
	// setting for it.
	ShimSockets string
	opts        Options
	cfg         string // config file
	cmd         *exec.Cmd
	exited      chan error
	stopped     bool
	conn        *grpc.ClientConn
	RT          runtimeapi.RuntimeServiceClient
	Img         runtimeapi.ImageServiceClient
}

// Options configure Start.
type Options struct {
	Dir     string // everything containerd writes goes under it
	BinDir  string // CNI bin dir
	ConfDir string // CNI conf dir
	Pause   string // sandbox image reference (imported before the first pod)
	// Nsenter, when set, are nsenter options (--net=PATH, --mount=PATH)
	// naming the namespaces containerd runs in, so its pods' chain runs
	// there too (a simulated node).
	Nsenter []string
	// Containerd2, when set, is the directory holding containerd 2.x's
	// containerd, containerd-shim-runc-v2 and ctr (hack/containerd2.sh
	// builds them into bin/containerd2): the daemon runs from there with a
	// config of version 3, its CRI plugin runs that directory's shim, and
	// ImportImage uses its ctr. Empty: Debian's containerd 1.6 from PATH.
	Containerd2 string
}

// config is containerd 1.6's config file. Every path containerd 1.6 would
// otherwise take from the machine (/var/lib/containerd, /run/containerd,
// /opt/containerd, /run/containerd/runc, /var/run/netns, /etc/cni/net.d,
// /opt/cni/bin) points into the test's directory instead, except two it has
// no setting for: the shims' sockets (/run/containerd/s) and libcni's cache
// (/var/lib/cni/results); the caller sees to those.
// restrict_oom_score_adj: this machine's root lacks CAP_SYS_RESOURCE, so runc
// cannot lower a sandbox's oom_score_adj and fails every sandbox otherwise.
const config = `version = 2
root = "{{.Root}}"
state = "{{.State}}"
disabled_plugins = ["io.containerd.Snapshotter.v1.aufs", "io.containerd.Snapshotter.v1.btrfs", "io.containerd.Snapshotter.v1.devmapper", "io.containerd.Snapshotter.v1.zfs"]

[grpc]
  address = "{{.Sock}}"
[ttrpc]
  address = "{{.Sock}}.ttrpc"
[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/opt"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{{.State}}/runc-v1"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{{.Snapshotter}}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{{.State}}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.BinDir}}"
    conf_dir = "{{.ConfDir}}"
    max_conf_num = 1
`

// config2 is containerd 2.x's config file (version 3, which every 2.x reads;
// 2.4 migrates it to its version 4 on load). The CRI plugin is split into
// cri.v1.images (snapshotter, the pause image as the pinned sandbox image)
// and cri.v1.runtime (runtimes, CNI); the shims' sockets have a setting
// (socket_dir) and go under the test's directory, as do the runc root and
// the netns mounts; the CRI runtime runs the shim at runtime_path, not
// Debian's 1.6 shim from PATH. NRI (a fixed socket under /var/run/nri) and
// the snapshotters and differs this machine cannot use are disabled; imports
// is empty so /etc/containerd/conf.d is not read; cdi_spec_dirs is empty so
// /etc/cdi is not. libcni's cache stays at /var/lib/cni/results (no
// setting): the caller sees to it. CNI: loopback runs from bin_dirs
// (use_internal_loopback = false, the default), so it must be there.
const config2 = `version = 3
root = "{{.Root}}"
state = "{{.State}}"
imports = []
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs", "io.containerd.mount-handler.v1.erofs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{{.Sock}}"
[ttrpc]
  address = "{{.Sock}}.ttrpc"
[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/opt"
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "{{.Dir}}/image-verifier"
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{{.ShimSockets}}"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "{{.Snapshotter}}"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{{.Pause}}"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "{{.Containerd2}}/containerd-shim-runc-v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        Root = "{{.State}}/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{{.BinDir}}"]
    conf_dir = "{{.ConfDir}}"
    max_conf_num = 1
`

// containerd2Binaries are the commands a containerd 2.x directory must hold.
var containerd2Binaries = []string{"containerd", "containerd-shim-runc-v2", "ctr"}

// MissingTools names the first of containerd's binaries not installed
// (.ci/run and hack/deps.sh install them; a developer may not have), or is
// empty; a test skips when it is not.
func MissingTools() string {
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Sprintf("%s is not installed (apt-get install containerd runc): %v", b, err)
		}
	}
	return ""
}

// MissingContainerd2 names the first of containerd 2.x's binaries missing
// from dir (hack/containerd2.sh builds them), or runc when not installed, or
// is empty.
func MissingContainerd2(dir string) string {
	for _, b := range containerd2Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Sprintf("containerd 2.x's %s is missing (hack/containerd2.sh builds it): %v", b, err)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return fmt.Sprintf("runc is not installed (apt-get install runc): %v", err)
	}
	return ""
}

// overlaySupported reports whether the kernel has overlayfs; without it the
// test uses containerd's native snapshotter (plain copies).
func overlaySupported() bool {
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && bytes.Contains(b, []byte("\toverlay\n"))
}

// Start writes the config and starts containerd. The caller must call Stop
// (which removes everything it left), even when Start fails.
func Start(o Options) (*Daemon, error) {
	dir := o.Dir
	d := &Daemon{Dir: dir, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Sock: filepath.Join(dir, "containerd.Sock"), Log: filepath.Join(dir, "containerd.log"),
		ShimSockets: "/run/containerd/s", Snapshotter: "overlayfs", opts: o, cfg: filepath.Join(dir, "config.toml")}
	if !overlaySupported() {
		d.Snapshotter = "native"
	}
	if n := len(d.Sock + ".ttrpc"); n >= len(unix.RawSockaddrUnix{}.Path) {
		return d, fmt.Errorf("socket path %s.ttrpc is %d bytes, too long for a unix socket: set a shorter TMPDIR", d.Sock, n)
	}
	tmpl := config
	if o.Containerd2 != "" {
		tmpl = config2
		abs, err := filepath.Abs(o.Containerd2) // the config needs an absolute runtime_path
		if err != nil {
			return d, err
		}
		o.Containerd2, d.opts.Containerd2 = abs, abs
		// containerd 2.x refuses a socket_dir longer than 42 bytes (the
		// socket is the dir plus a 64-byte hash).
		if d.ShimSockets = filepath.Join(dir, "s"); len(d.ShimSockets) > 42 {
			return d, fmt.Errorf("shim socket dir %s is longer than containerd's 42-byte limit: use a shorter directory", d.ShimSockets)
		}
	}
	r := strings.NewReplacer("{{.Root}}", d.Root, "{{.State}}", d.State, "{{.Sock}}", d.Sock, "{{.Dir}}", dir,
		"{{.Pause}}", o.Pause, "{{.Snapshotter}}", d.Snapshotter, "{{.BinDir}}", o.BinDir, "{{.ConfDir}}", o.ConfDir,
		"{{.ShimSockets}}", d.ShimSockets, "{{.Containerd2}}", o.Containerd2)
	if err := os.WriteFile(d.cfg, []byte(r.Replace(tmpl)), 0o600); err != nil {
		return d, err
	}
	if err := d.start(); err != nil {
		return d, err
	}
	var err error
	d.conn, err = grpc.NewClient("unix://"+d.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return d, err
	}
	d.RT, d.Img = runtimeapi.NewRuntimeServiceClient(d.conn), runtimeapi.NewImageServiceClient(d.conn)
	return d, nil
}

// start runs the containerd process with the written config, its output
// appended to the log.
func (d *Daemon) start() error {
	logf, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	bin := "containerd"
	if d.opts.Containerd2 != "" {
		bin = filepath.Join(d.opts.Containerd2, "containerd")
	}
	if len(d.opts.Nsenter) > 0 {
		d.cmd = exec.Command("nsenter", append(append([]string{}, d.opts.Nsenter...), bin, "--config", d.cfg)...)
	} else {
		d.cmd = exec.Command(bin, "--config", d.cfg)
	}
	d.cmd.Dir = d.Dir
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Pdeathsig: if the test binary dies (go test's timeout), containerd
	// goes too. It fires when the forking thread exits, so pin the fork to
	// a thread that outlives it (the locked thread returns to the pool).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	d.exited = make(chan error, 1)
	runtime.LockOSThread()
	err = d.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		d.cmd = nil
		return fmt.Errorf("start containerd: %v", err)
	}
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(d.cmd, d.exited)
	return nil
}

// Kill SIGKILLs containerd and waits until it is gone, as a crash would:
// its shims, pods and their networking stay.
func (d *Daemon) Kill() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return errors.New("containerd is not running")
	}
	if err := d.cmd.Process.Kill(); err != nil {
		return err
	}
	_ = d.waitExit() // killed by us: its exit status says nothing
	d.exited <- errors.New("killed")
	return nil
}

// waitExit waits for containerd's process to end and returns how it ended.
func (d *Daemon) waitExit() error { return <-d.exited }

// Restart starts containerd again after Kill, with the same config, root
// and state, so it recovers the pods its shims kept running. The CRI
// clients reconnect by themselves.
func (d *Daemon) Restart() error {
	select {
	case err := <-d.exited:
		_ = err // Kill's "killed"
	default:
		return errors.New("containerd is still running: Kill it first")
	}
	return d.start()
}

// Pid is containerd's process ID, 0 when it was never started.
func (d *Daemon) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// WaitReady polls the CRI Status until the runtime and the network (our
// conflist, loaded from the conf dir) are ready.
func (d *Daemon) WaitReady(ctx context.Context) error {
	return d.waitStatus(ctx, "CRI not ready", func(st *runtimeapi.StatusResponse) (bool, string) {
		rt, net := Condition(st, runtimeapi.RuntimeReady), Condition(st, runtimeapi.NetworkReady)
		if rt.GetStatus() && net.GetStatus() {
			return true, ""
		}
		return false, fmt.Sprintf("%s: %v %s %s; %s: %v %s %s", runtimeapi.RuntimeReady, rt.GetStatus(), rt.GetReason(), rt.GetMessage(),
			runtimeapi.NetworkReady, net.GetStatus(), net.GetReason(), net.GetMessage())
	})
}

// WaitNetwork polls the CRI Status until done accepts its NetworkReady
// condition (nil when containerd reports none).
func (d *Daemon) WaitNetwork(ctx context.Context, done func(*runtimeapi.RuntimeCondition) bool) (*runtimeapi.RuntimeCondition, error) {
	var last *runtimeapi.RuntimeCondition
	err := d.waitStatus(ctx, "NetworkReady never as expected", func(st *runtimeapi.StatusResponse) (bool, string) {
		last = Condition(st, runtimeapi.NetworkReady)
		return done(last), fmt.Sprintf("last NetworkReady: %v %s %s", last.GetStatus(), last.GetReason(), last.GetMessage())
	})
	return last, err
}

// Condition is the status's condition of type typ, or nil.
func Condition(st *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// WaitServing polls the CRI Status until containerd answers, ready or not
// (a kubelet's node has no network until its CNI installer ran).
func (d *Daemon) WaitServing(ctx context.Context) error {
	return d.waitStatus(ctx, "containerd not serving", func(*runtimeapi.StatusResponse) (bool, string) { return true, "" })
}

// waitStatus polls the CRI Status every 50 ms until done accepts an answer,
// containerd exits, or ctx ends; what is the error's message then.
func (d *Daemon) waitStatus(ctx context.Context, what string, done func(*runtimeapi.StatusResponse) (bool, string)) error {
	var last string
	for {
		select {
		case err := <-d.exited:
			d.exited <- err
			return fmt.Errorf("containerd exited: %v\n%s", err, d.LogTail(30))
		default:
		}
		st, err := d.RT.Status(ctx, &runtimeapi.StatusRequest{})
		if err == nil {
			var ok bool
			if ok, last = done(st); ok {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s\n%s", what, last, d.LogTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ImportImage imports an OCI archive into the CRI plugin's namespace with
// ctr, unpacked for the CRI's snapshotter.
func (d *Daemon) ImportImage(ctx context.Context, archive string) error {
	ctr := "ctr"
	if d.opts.Containerd2 != "" {
		ctr = filepath.Join(d.opts.Containerd2, "ctr")
	}
	cmd := exec.CommandContext(ctx, ctr, "-n", CRINamespace, "-a", d.Sock, "images", "import",
		"--snapshotter", d.Snapshotter, archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import %s: %v\n%s", archive, err, out)
	}
	return nil
}

// LogTail is the end of containerd's log, for error messages.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop removes every pod sandbox left (so libcni runs the chain's DEL for
// each), stops containerd, ends the shims and containers it left (found by
// our socket and runc root, so only the test's own), and unmounts whatever
// remains under the test's directory. Every step is bounded; failures are
// reported, and the steps after still run. A second call does nothing.
func (d *Daemon) Stop() error {
	if d.stopped {
		return nil
	}
	d.stopped = true
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sandboxes []string
	if d.RT != nil {
		if pods, err := d.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.GetItems() {
				sandboxes = append(sandboxes, p.Id)
				if _, err := d.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					errs = append(errs, fmt.Errorf("stop pod %s: %v", p.Id, err))
				}
				if _, err := d.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					errs = append(errs, fmt.Errorf("remove pod %s: %v", p.Id, err))
				}
			}
		}
	}
	if d.conn != nil {
		_ = d.conn.Close()
	}
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.exited:
			_ = err // stopped by us: its exit status says nothing
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("containerd ignored SIGTERM for 10s, killed it"))
			_ = d.cmd.Process.Kill()
			_ = d.waitExit()
		}
	}
	errs = append(errs, d.killLeftovers(ctx, sandboxes)...)
	if err := UnmountUnder(d.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killLeftovers deletes the containers runc still knows under the test's
// runc root, kills shims serving the test's containerd socket and removes
// the sockets of the pods' shims (one shim per pod, named after the
// sandbox) that died without removing theirs. None of these exists after a
// clean run: they are for a test that failed half-way.
func (d *Daemon) killLeftovers(ctx context.Context, sandboxes []string) (errs []error) {
	runcRoot := filepath.Join(d.State, "runc", CRINamespace)
	if _, err := os.Stat(runcRoot); err == nil {
		out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "list", "-q").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("runc list: %v", err))
		}
		for _, id := range strings.Fields(string(out)) {
			if out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "delete", "--force", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s (left behind): %v %s", id, err, out))
			}
		}
	}
	sockets := map[string]bool{}
	for _, id := range sandboxes {
		sockets[shimSocket(d.ShimSockets, d.Sock, id)] = true
	}
	for _, s := range shimsOf(d.ShimSockets, d.Sock) {
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		sockets[s.socket] = true
	}
	for s := range sockets {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errs
}

// shimSocket is the socket of the shim serving the container id of the CRI
// namespace: containerd (1.6 and 2.x) names it after its own address, the
// namespace and the ID, in dir (1.6: /run/containerd/s whatever its state
// dir; 2.x: its socket_dir).
func shimSocket(dir, sock, id string) string {
	key := sha256.Sum256([]byte(filepath.Join(sock, CRINamespace, id)))
	return filepath.Join(dir, hex.EncodeToString(key[:]))
}

// Leftovers lists what of this containerd still exists after Stop: the
// daemon's process, shims serving its socket, mounts under its directory.
// Empty after a clean stop.
func (d *Daemon) Leftovers() []string {
	var left []string
	if pid := d.Pid(); pid > 0 && syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
			left = append(left, fmt.Sprintf("containerd process %d", pid))
		}
	}
	for _, s := range shimsOf(d.ShimSockets, d.Sock) {
		left = append(left, fmt.Sprintf("shim process %d (%s)", s.pid, s.socket))
	}
	points, err := mountsUnder(d.Dir)
	if err != nil {
		left = append(left, err.Error())
	}
	for _, p := range points {
		left = append(left, "mount "+p)
	}
	return left
}

type shim struct {
	pid    int
	socket string
}

// shimsOf lists the containerd-shim-runc-v2 processes started for the
// containerd listening on sock (their command line has "-address sock"),
// with their socket in dir.
func shimsOf(dir, sock string) []shim {
	var shims []shim
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		flag := func(name string) string {
			if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if flag("-address") == sock && flag("-namespace") == CRINamespace {
			shims = append(shims, shim{pid: pid, socket: shimSocket(dir, sock, flag("-id"))})
		}
	}
	return shims
}

// UnmountUnder lazily unmounts every mount point under dir, deepest first
// (snapshots, sandbox shm, netns bind mounts), so the directory can be
// removed.
func UnmountUnder(dir string) error {
	points, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("umount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	return points, nil
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
