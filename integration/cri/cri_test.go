package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minicni/minicni/installer/conflist"
	"github.com/minicni/minicni/integration/internal/containerd"
	"github.com/minicni/minicni/integration/internal/ociimage"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// networkName is the conflist's network name: the reservations live under
// dataDir/networkName and libcni's cache files are named after it.
const networkName = "minicni"

// containerPort is where each test container's httpd listens.
const containerPort = 8080

// step runs f with its own deadline and stops the test when it fails; the
// cleanups registered so far still run.
func step(t *testing.T, name string, limit time.Duration, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
}

// pod is one pod sandbox with its busybox container.
type pod struct {
	name      string
	config    *runtimeapi.PodSandboxConfig
	id        string // sandbox ID, the CNI container ID
	ip        net.IP
	netns     string
	container string
}

// TestCRI drives the chain as the kubelet does: CRI calls to containerd,
// whose CRI plugin runs conflist/10-minicni.conflist (rendered by the
// installer's renderer for the test's subnet and bridge) through libcni in
// the root network namespace. Two pods with a busybox container each: their
// addresses come from miniipam and show in the sandbox status, they ping
// each other and the node, a hostPort answers on the node through portmap,
// and stopping and removing them (two DELs, the second without a netns)
// leaves no reservation, veth or per-pod rule.
func TestCRI(t *testing.T) {
	minitest.RequireRoot(t)
	if msg := containerd.MissingTools(); msg != "" {
		minitest.Skip(t, "%s", msg)
	}
	busybox := "/bin/busybox"

	dir := t.TempDir()
	binDir, confDir := filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-conf")
	dataDir, pluginLog := filepath.Join(dir, "ipam"), filepath.Join(dir, "cni.log")
	for _, d := range []string{binDir, confDir, dataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	pods := &podList{}
	h := newHost(t, pods.ids)
	t.Logf("pod subnet %s on bridge %s, gateway %s", h.subnet, bridgeName, h.gateway)

	pauseTar, busyboxTar := filepath.Join(dir, "pause.oci.tar"), filepath.Join(dir, "busybox.oci.tar")
	step(t, "build plugins and images", 90*time.Second, func(ctx context.Context) error {
		errs := make(chan error, 3)
		go func() {
			errs <- minitest.BuildPlugins(binDir, "minibridge", "miniipam", "miniroute", "loopback", "portmap")
		}()
		go func() { errs <- ociimage.BuildPause(dir, pauseTar) }()
		go func() { errs <- ociimage.BuildBusybox(busybox, busyboxTar) }()
		for range 3 {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	})
	if err := os.WriteFile(filepath.Join(confDir, "10-minicni.conflist"), renderConflist(t, h, dataDir, pluginLog), 0o600); err != nil {
		t.Fatal(err)
	}

	d, err := containerd.Start(containerd.Options{Dir: dir, BinDir: binDir, ConfDir: confDir, Pause: ociimage.PauseRef})
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("containerd log (end):\n%s", d.LogTail(60))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(pluginLog)
			t.Logf("plugins' log:\n%s", b)
		}
	})
	step(t, "containerd ready (runtime and network)", 30*time.Second, d.WaitReady)
	step(t, "import images", 30*time.Second, func(ctx context.Context) error {
		for _, a := range []string{pauseTar, busyboxTar} {
			if err := d.ImportImage(ctx, a); err != nil {
				return err
			}
		}
		for _, ref := range []string{ociimage.PauseRef, ociimage.BusyboxRef} {
			st, err := d.Img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			if err != nil {
				return err
			}
			if st.GetImage() == nil {
				return fmt.Errorf("CRI does not see image %s after the import", ref)
			}
		}
		return nil
	})

	hostPort := freePort(t)
	a, b := runPods(t, d, h, pods, dir, dataDir, pluginLog, hostPort, "1.0.0")
	step(t, "ping pod to pod and pod to node", 30*time.Second, func(ctx context.Context) error {
		return pingAll(ctx, d, h, a, b)
	})
	// The node reaches the hostPort at its bridge address (portmap's DNAT in
	// OUTPUT for local destinations) and at 127.0.0.1 (portmap sets
	// route_localnet on the bridge and masquerades localhost sources).
	step(t, "hostPort answers on the node through portmap", 30*time.Second, func(ctx context.Context) error {
		for _, host := range []string{h.gateway.String(), "127.0.0.1"} {
			if err := fetch(ctx, net.JoinHostPort(host, strconv.Itoa(hostPort)), "pod-b"); err != nil {
				return err
			}
		}
		return nil
	})

	for _, p := range pods.all() {
		step(t, "stop and remove pod "+p.name, 30*time.Second, func(ctx context.Context) error {
			return stopAndRemove(ctx, d, h, p, dataDir, pluginLog)
		})
	}
	step(t, "nothing left", 10*time.Second, func(ctx context.Context) error {
		return checkNothingLeft(h, pods.all(), dataDir)
	})
}

// runPods runs pod sandboxes a and b (b publishing containerPort on
// hostPort) with a busybox container each, checks their attachment (the
// cached result in version wantVersion) and returns them.
// podList is a test's pods: runPods adds them, runPod sets their sandbox
// IDs under mu, and the host's cleanup reads the IDs concurrently.
type podList struct {
	mu   sync.Mutex
	pods []*pod
}

func (l *podList) add(p *pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pods = append(l.pods, p)
}

// all returns the pods in the order they were added.
func (l *podList) all() []*pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.pods)
}

// ids returns the sandbox IDs of the pods that have one.
func (l *podList) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, p := range l.pods {
		if p.id != "" {
			ids = append(ids, p.id)
		}
	}
	return ids
}

func runPods(t *testing.T, d *containerd.Daemon, h *host, pods *podList, dir, dataDir, pluginLog string, hostPort int, wantVersion string) (a, b *pod) {
	t.Helper()
	for _, name := range []string{"a", "b"} {
		p := &pod{name: name, config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "minicni-cri",
				Uid: fmt.Sprintf("minicni-cri-%d-%s", os.Getpid(), name)},
			Hostname:     "pod-" + name,
			LogDirectory: filepath.Join(dir, "pods", name),
			Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: h.cgroupParent},
		}}
		if name == "b" {
			p.config.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP,
				ContainerPort: containerPort, HostPort: int32(hostPort)}}
		}
		pods.add(p)
		step(t, "run pod sandbox "+name, 30*time.Second, func(ctx context.Context) error { return runPod(ctx, d, p, &pods.mu) })
		step(t, "check pod "+name+"'s address", 10*time.Second, func(ctx context.Context) error {
			return checkAttached(ctx, h, p, dataDir, pluginLog, wantVersion)
		})
		step(t, "run busybox in pod "+name, 30*time.Second, func(ctx context.Context) error { return runContainer(ctx, d, p) })
	}
	all := pods.all()
	a, b = all[0], all[1]
	if a.ip.Equal(b.ip) {
		t.Fatalf("both pods got %s", a.ip)
	}
	return a, b
}

// pingAll pings a → b, b → a, a → node and b → node (the bridge gateway).
func pingAll(ctx context.Context, d *containerd.Daemon, h *host, a, b *pod) error {
	for _, c := range []struct {
		from *pod
		to   net.IP
	}{{a, b.ip}, {b, a.ip}, {a, h.gateway}, {b, h.gateway}} {
		if err := ping(ctx, d, c.from, c.to); err != nil {
			return err
		}
	}
	return nil
}

// renderConflist renders the repository's default conflist for the test's
// subnet and bridge with the installer's renderer, then points miniipam's
// dataDir and our plugins' logFile into the test's directory.
func renderConflist(t *testing.T, h *host, dataDir, logFile string) []byte {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "conflist", "10-minicni.conflist")) // go test runs in the package dir
	if err != nil {
		t.Fatal(err)
	}
	out, err := conflist.Render(tmpl, []string{h.subnet.String()}, conflist.Settings{
		Bridge: bridgeName, ClusterCIDRs: []string{h.subnet.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]any
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	if v := list["cniVersion"]; v != "1.0.0" {
		t.Fatalf("conflist says cniVersion %v; containerd 1.6's libcni needs 1.0.0", v)
	}
	if list["name"] != networkName {
		t.Fatalf("conflist network name %v, want %s", list["name"], networkName)
	}
	for _, p := range list["plugins"].([]any) {
		pm := p.(map[string]any)
		switch pm["type"] {
		case "minibridge", "miniroute":
			pm["logFile"] = logFile
		}
		if ipam, ok := pm["ipam"].(map[string]any); ok {
			ipam["dataDir"] = dataDir
			ipam["logFile"] = logFile
		}
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := conflist.Validate(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// freePort returns a TCP port nothing listens on now, for the hostPort.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runPod runs the sandbox (containerd's CNI ADD happens inside) and reads
// its status: the address and the netns path.
func runPod(ctx context.Context, d *containerd.Daemon, p *pod, mu *sync.Mutex) error {
	if err := os.MkdirAll(p.config.LogDirectory, 0o700); err != nil {
		return err
	}
	resp, err := d.RT.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.config})
	if err != nil {
		return err
	}
	mu.Lock()
	p.id = resp.PodSandboxId
	mu.Unlock()
	st, err := d.RT.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: true})
	if err != nil {
		return err
	}
	if s := st.GetStatus().GetState(); s != runtimeapi.PodSandboxState_SANDBOX_READY {
		return fmt.Errorf("sandbox %s is %s", p.id, s)
	}
	ipStr := st.GetStatus().GetNetwork().GetIp()
	if p.ip = net.ParseIP(ipStr); p.ip == nil {
		return fmt.Errorf("sandbox status shows no address (network.ip %q)", ipStr)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string } `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil {
		return fmt.Errorf("sandbox verbose info: %w", err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			p.netns = ns.Path
		}
	}
	if p.netns == "" {
		return fmt.Errorf("sandbox verbose info has no network namespace path")
	}
	return nil
}

// checkAttached checks that the sandbox's address is miniipam's: inside the
// subnet, reserved in miniipam's store for this sandbox's eth0; that the
// host veth is on the bridge; that the chain answered containerd in the
// conflist's version (libcni's cached result); and that minibridge logged
// the ADD with the sandbox's netns.
func checkAttached(_ context.Context, h *host, p *pod, dataDir, pluginLog, wantVersion string) error {
	if !h.subnet.Contains(p.ip) || p.ip.Equal(h.gateway) {
		return fmt.Errorf("pod %s got %s: not a pod address of %s", p.name, p.ip, h.subnet)
	}
	res, err := os.ReadFile(filepath.Join(dataDir, networkName, p.ip.String()))
	if err != nil {
		return fmt.Errorf("no miniipam reservation for %s: %w", p.ip, err)
	}
	if got, want := strings.Fields(string(res)), []string{p.id, "eth0"}; strings.Join(got, " ") != strings.Join(want, " ") {
		return fmt.Errorf("reservation of %s holds %q, want %q", p.ip, got, want)
	}
	veth := bridge.HostVethName(p.id, "eth0")
	l, err := netlink.LinkByName(veth)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", veth, err)
	}
	br, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return err
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("host veth %s is not on %s", veth, bridgeName)
	}
	if err := checkCachedResult(p, wantVersion); err != nil {
		return err
	}
	adds := logLines(pluginLog, "plugin=minibridge", "cmd=ADD", "containerID="+p.id, "msg=attached")
	if len(adds) != 1 || !strings.Contains(adds[0], "netns="+p.netns) {
		return fmt.Errorf("minibridge's log has %d ADD lines for %s with netns %s: %q", len(adds), p.id, p.netns, adds)
	}
	return nil
}

// checkCachedResult reads the result libcni cached for the sandbox's eth0:
// the chain's final answer, in the version libcni ran the conflist at
// (containerd 1.6: cniVersion, 1.0.0; 2.x: the highest of cniVersions,
// 1.1.0), holding the sandbox's address and interfaces. libcni parses every
// plugin's answer as a result of that version, so a plugin answering in
// another version fails the sandbox before this point.
func checkCachedResult(p *pod, want string) error {
	path := filepath.Join(cniCacheDir, networkName+"-"+p.id+"-eth0")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("libcni's cached result: %w", err)
	}
	var cached struct {
		Result struct {
			CNIVersion string `json:"cniVersion"`
			IPs        []struct {
				Address string `json:"address"`
			} `json:"ips"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &cached); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if cached.Result.CNIVersion != want {
		return fmt.Errorf("the chain answered in version %q, want %s (%s)", cached.Result.CNIVersion, want, b)
	}
	if len(cached.Result.IPs) != 1 || !strings.HasPrefix(cached.Result.IPs[0].Address, p.ip.String()+"/") {
		return fmt.Errorf("cached result's ips %v, want %s", cached.Result.IPs, p.ip)
	}
	return nil
}

// runContainer runs a busybox container in the pod, serving its hostname
// over HTTP on containerPort, and waits until it runs.
func runContainer(ctx context.Context, d *containerd.Daemon, p *pod) error {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Image:    &runtimeapi.ImageSpec{Image: ociimage.BusyboxRef},
		Command: []string{"/bin/sh", "-c",
			fmt.Sprintf("hostname > /tmp/index.html && exec httpd -f -p %d -h /tmp", containerPort)},
		LogPath: "web.log",
		Linux:   &runtimeapi.LinuxContainerConfig{},
	}
	c, err := d.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.config})
	if err != nil {
		return err
	}
	p.container = c.ContainerId
	if _, err := d.RT.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.container}); err != nil {
		return err
	}
	st, err := d.RT.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.container})
	if err != nil {
		return err
	}
	if s := st.GetStatus().GetState(); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s is %s: %s", p.container, s, st.GetStatus().GetMessage())
	}
	// The address is the pod's, inside the pod, on eth0.
	out, err := execIn(ctx, d, p, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		return err
	}
	if !strings.Contains(out, " "+p.ip.String()+"/") {
		return fmt.Errorf("pod %s's eth0 lacks %s: %s", p.name, p.ip, out)
	}
	return nil
}

// execIn runs a command in the pod's container with ExecSync.
func execIn(ctx context.Context, d *containerd.Daemon, p *pod, cmd ...string) (string, error) {
	r, err := d.RT.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.container, Cmd: cmd, Timeout: 10})
	if err != nil {
		return "", fmt.Errorf("exec %q in pod %s: %w", cmd, p.name, err)
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("exec %q in pod %s: exit %d: %s%s", cmd, p.name, r.ExitCode, r.Stdout, r.Stderr)
	}
	return string(r.Stdout), nil
}

func ping(ctx context.Context, d *containerd.Daemon, from *pod, to net.IP) error {
	_, err := execIn(ctx, d, from, "ping", "-c", "1", "-W", "2", to.String())
	return err
}

// fetch GETs http://addr/index.html from the root namespace until it
// answers want (the container's httpd may take a moment to listen).
func fetch(ctx context.Context, addr, want string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/index.html", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == want {
				return nil
			}
			last = fmt.Errorf("status %d, body %q, read error %v", resp.StatusCode, body, rerr)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET http://%s/index.html: %v", addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logLines returns the lines of the plugins' log holding every one of subs.
func logLines(path string, subs ...string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// stopAndRemove stops the sandbox (containerd runs DEL with the netns, then
// removes the netns) and removes it (containerd runs DEL again, with an
// empty CNI_NETNS). Both DELs must succeed; after the stop, the
// reservation, the veth and the netns are gone.
func stopAndRemove(ctx context.Context, d *containerd.Daemon, h *host, p *pod, dataDir, pluginLog string) error {
	dels := func() []string {
		return logLines(pluginLog, "plugin=minibridge", "cmd=DEL", "containerID="+p.id)
	}
	if _, err := d.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if l := dels(); len(l) != 1 || !strings.Contains(l[0], "msg=detached") || !strings.Contains(l[0], "netns="+p.netns) {
		return fmt.Errorf("after StopPodSandbox, minibridge's DEL lines for %s: %q; want one, detached, with netns %s", p.id, l, p.netns)
	}
	if fileExists(filepath.Join(dataDir, networkName, p.ip.String())) {
		return fmt.Errorf("reservation of %s still there after the stop", p.ip)
	}
	if _, err := netlink.LinkByName(bridge.HostVethName(p.id, "eth0")); err == nil {
		return fmt.Errorf("host veth of %s still there after the stop", p.name)
	}
	if fileExists(p.netns) {
		return fmt.Errorf("netns %s still there after the stop", p.netns)
	}
	if _, err := d.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	l := dels()
	if len(l) != 2 || !strings.Contains(l[1], "msg=detached") || !strings.Contains(l[1], `netns=""`) {
		return fmt.Errorf("after RemovePodSandbox, minibridge's DEL lines for %s: %q; want a second one, detached, with netns=\"\"", p.id, l)
	}
	if bad := logLines(pluginLog, "containerID="+p.id, "level=WARN"); len(bad) > 0 {
		return fmt.Errorf("plugins warned for %s: %q", p.id, bad)
	}
	if bad := logLines(pluginLog, "containerID="+p.id, "level=ERROR"); len(bad) > 0 {
		return fmt.Errorf("plugins failed for %s: %q", p.id, bad)
	}
	return nil
}

// checkNothingLeft checks the node after both pods are gone: no reservation
// in miniipam's store, no veth on the bridge, no iptables rule naming a pod
// (portmap's per-pod chain and its jump), no libcni cache file.
func checkNothingLeft(h *host, pods []*pod, dataDir string) error {
	var problems []string
	ents, err := os.ReadDir(filepath.Join(dataDir, networkName))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			problems = append(problems, "reservation "+e.Name())
		}
	}
	veths, err := vethsOn(bridgeName)
	if err != nil {
		return err
	}
	for _, v := range veths {
		problems = append(problems, "veth "+v+" on "+bridgeName)
	}
	var needles []string
	for _, p := range pods {
		needles = append(needles, p.id, p.ip.String()+"/", p.ip.String()+":")
	}
	left, err := rulesMentioning(needles...)
	if err != nil {
		return err
	}
	problems = append(problems, left...)
	chains, err := h.newChains("nat")
	if err != nil {
		return err
	}
	for _, c := range chains {
		if strings.HasPrefix(c, "CNI-DN-") {
			problems = append(problems, "portmap chain "+c)
		}
	}
	for _, p := range pods {
		if matches, _ := filepath.Glob(filepath.Join(cniCacheDir, "*"+p.id+"*")); len(matches) > 0 {
			problems = append(problems, fmt.Sprintf("libcni cache files %v", matches))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("left after both pods were removed:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}
