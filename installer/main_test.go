package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/routes"
	"github.com/minicni/minicni/libmini/minitest"
)

// binary is minicni-installer, built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minicni-installer-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "minicni-installer")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func fakeFrom(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback", "minicni"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/false\n"+b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInstallPodCIDRFlag(t *testing.T) {
	from := fakeFrom(t)
	tests := []struct {
		name    string
		podCIDR string
		ok      bool
	}{
		{"valid", "10.244.1.0/24", true},
		{"dual stack", "10.244.1.0/24,fd00:10:244:1::/64", true},
		{"prefix too long", "1.2.3.4/33", false},
		{"shell", "10.244.1.0/24; rm -rf /", false},
		{"ipv6 typo", "fd00:10:244:1::g/64", false},
		{"outside cluster", "192.168.1.0/24", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, conf := t.TempDir(), t.TempDir()
			cmd := exec.Command(binary, "install", "--pod-cidr", tt.podCIDR, "--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56",
				"--from", from, "--bin-dir", bin, "--conf-dir", conf, "--mtu", "1400")
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.ok {
				t.Fatalf("exit %v, want ok=%v:\n%s", err, tt.ok, out)
			}
			if !tt.ok {
				if got := append(minitest.DirNames(t, bin), minitest.DirNames(t, conf)...); got != nil {
					t.Errorf("refused value, yet wrote %v", got)
				}
				if !strings.Contains(string(out), "level=ERROR") {
					t.Errorf("no error line:\n%s", out)
				}
				return
			}
			data, err := os.ReadFile(filepath.Join(conf, "10-minicni.conflist"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(strings.Split(tt.podCIDR, ","), `"mtu": 1400`) {
				if !strings.Contains(string(data), want) {
					t.Errorf("conflist lacks %s:\n%s", want, data)
				}
			}
			if diff := cmp.Diff([]string{"loopback", "minibridge", "minicni", "miniipam", "miniroute", "portmap"}, minitest.DirNames(t, bin)); diff != "" {
				t.Errorf("bin dir (-want +got):\n%s", diff)
			}
		})
	}
}

// lineWatcher collects a process's stderr and lets a test wait for a line.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func watch(r io.Reader) *lineWatcher {
	w := &lineWatcher{added: make(chan struct{}, 1)}
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, s.Text())
			w.mu.Unlock()
			select {
			case w.added <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *lineWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func (w *lineWatcher) wait(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(w.text()); m != nil {
			return m
		}
		select {
		case <-w.added:
		case <-deadline:
			t.Fatalf("no line matching %s in:\n%s", re, w.text())
		}
	}
}

func writeNodes(t *testing.T, path string, list []nodes.Node) {
	t.Helper()
	data, _ := json.Marshal(list)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestInstallWaitsForPodCIDR(t *testing.T) {
	from, bin, conf := fakeFrom(t), t.TempDir(), t.TempDir()
	nodesFile := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, nodesFile, []nodes.Node{{Name: "a", InternalIPs: []string{"10.99.0.11"}}})
	cmd := exec.Command(binary, "install", "--nodes-file", nodesFile, "--node-name", "a", "--from", from, "--bin-dir", bin, "--conf-dir", conf, "--wait", "1m")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := watch(stderr)
	w.wait(t, regexp.MustCompile(`msg="waiting for the node's podCIDR".* node=a state="has no podCIDR yet"`))
	if got := minitest.DirNames(t, conf); got != nil {
		t.Errorf("wrote %v before the podCIDR was there", got)
	}
	writeNodes(t, nodesFile, []nodes.Node{{Name: "a", InternalIPs: []string{"10.99.0.11"}, PodCIDRs: []string{"172.18.3.0/24"}}})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("install: %v\n%s", err, w.text())
	}
	data, err := os.ReadFile(filepath.Join(conf, "10-minicni.conflist"))
	if err != nil || !strings.Contains(string(data), `"subnet": "172.18.3.0/24"`) {
		t.Errorf("conflist: %v\n%s", err, data)
	}
}

// TestAgentBinaryInNetns starts the binary as the lab will, inside a node's
// network namespace with a nodes file, checks its route, /healthz and
// /metrics (reachable only inside that namespace), stops it with SIGTERM and
// runs uninstall there.
func TestAgentBinaryInNetns(t *testing.T) {
	a, _ := twonode.New(t)
	nodesFile := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, nodesFile, []nodes.Node{
		{Name: "a", InternalIPs: []string{"10.99.0.11"}, PodCIDRs: []string{"172.18.0.0/24"}},
		{Name: "b", InternalIPs: []string{"10.99.0.12"}, PodCIDRs: []string{"172.18.1.0/24"}},
		{Name: "c", InternalIPs: []string{"192.168.7.7"}, PodCIDRs: []string{"172.18.2.0/24"}}, // not on the underlay: VXLAN
	})
	bin, conf := t.TempDir(), t.TempDir()
	cmd := exec.Command(binary, "agent", "--nodes-file", nodesFile, "--node-name", "a", "--listen", "127.0.0.1:0",
		"--from", fakeFrom(t), "--bin-dir", bin, "--conf-dir", conf, "--cluster-cidr", "172.18.0.0/16")
	stderr, _ := cmd.StderrPipe()
	if err := a.NS.Do(func(ns.NetNS) error { return cmd.Start() }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := watch(stderr)
	addr := w.wait(t, regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`))[1]
	w.wait(t, regexp.MustCompile(`msg="peer paths" .*overlay=auto direct=b vxlan=c unreachable="" invalid=""`))
	w.wait(t, regexp.MustCompile(`msg="added route" .*dst=172.18.1.0/24 via=10.99.0.12 node=b path=direct`))
	w.wait(t, regexp.MustCompile(`msg="added route" .*dst=172.18.2.0/24 via=172.18.2.0 node=c path=vxlan`))
	if got := twonode.Routes(t, a.H, routes.Protocol); !cmp.Equal(got, []string{"172.18.1.0/24 via 10.99.0.12", "172.18.2.0/24 via 172.18.2.0"}) {
		t.Errorf("kernel routes: %v", got)
	}
	if links := minitest.LinkNames(t, a.NS); !slices.Contains(links, "minicni.vxlan") {
		t.Errorf("no VXLAN device: %v", links)
	}

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
		var c net.Conn
		err := a.NS.Do(func(ns.NetNS) error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return c, err
	}}}
	get := func(path string) string {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if body := get(path); !strings.HasPrefix(body, "ok\nview of the nodes: confirmed ") {
			t.Errorf("%s = %q", path, body)
		}
	}
	// The log line above comes mid-pass; the metrics are set when the pass
	// ends.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		body := get("/metrics")
		if strings.Contains(body, "\nminicni_routes_programmed 2\n") && strings.Contains(body, "\nminicni_peers{mode=\"direct\"} 1\nminicni_peers{mode=\"vxlan\"} 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics:\n%s", body)
			break
		}
	}
	// The conflist's automatic MTU leaves room for VXLAN over IPv4.
	if data, err := os.ReadFile(filepath.Join(conf, "10-minicni.conflist")); err != nil || !strings.Contains(string(data), `"mtu": 1450,`) {
		t.Errorf("agent's conflist: %v\n%s", err, data)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("agent exit after SIGTERM: %v\n%s", err, w.text())
	}
	if got := twonode.Routes(t, a.H, routes.Protocol); len(got) != 2 {
		t.Errorf("stopping the agent must leave its routes (pods keep working): %v", got)
	}

	un := exec.Command(binary, "uninstall", "--bin-dir", bin, "--conf-dir", conf, "--remove-binaries")
	var out []byte
	err := a.NS.Do(func(ns.NetNS) error {
		var err error
		out, err = un.CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if got := twonode.Routes(t, a.H, routes.Protocol); got != nil {
		t.Errorf("routes after uninstall: %v", got)
	}
	if links := minitest.LinkNames(t, a.NS); slices.Contains(links, "minicni.vxlan") {
		t.Errorf("VXLAN device left after uninstall: %v", links)
	}
	if got := append(minitest.DirNames(t, conf), minitest.DirNames(t, bin)...); len(got) != 2 { // portmap, loopback differ from --from's (the default)
		t.Errorf("files left after uninstall: %v\n%s", got, out)
	}
}

// TestInstallOverlayMTU runs install in a node's namespace (uplink MTU 1500)
// with an automatic MTU: the conflist gets room for the encapsulation unless
// the overlay is off or the admin set an MTU.
func TestInstallOverlayMTU(t *testing.T) {
	a, _ := twonode.New(t)
	nodesFile := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, nodesFile, []nodes.Node{{Name: "a", InternalIPs: []string{"fd00:99::11", "10.99.0.11"}, PodCIDRs: []string{"172.18.0.0/24"}}})
	v6 := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, v6, []nodes.Node{{Name: "a", InternalIPs: []string{"fd00:99::11"}, PodCIDRs: []string{"172.18.0.0/24"}}})
	tests := []struct {
		name string
		args []string
		mtu  string
	}{
		{"auto, IPv4 underlay", []string{"--nodes-file", nodesFile, "--node-name", "a"}, "1450"},
		{"vxlan, IPv6 underlay", []string{"--overlay", "vxlan", "--nodes-file", v6, "--node-name", "a"}, "1430"},
		{"none", []string{"--overlay", "none", "--nodes-file", nodesFile, "--node-name", "a"}, "0"},
		{"no node: no default route here, 1500 minus 70", []string{"--pod-cidr", "172.18.0.0/24"}, "1430"},
		{"set by the admin", []string{"--mtu", "1400", "--nodes-file", nodesFile, "--node-name", "a"}, "1400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := t.TempDir()
			cmd := exec.Command(binary, append([]string{"install", "--from", fakeFrom(t), "--bin-dir", t.TempDir(), "--conf-dir", conf, "--cluster-cidr", "172.18.0.0/16"}, tt.args...)...)
			var out []byte
			err := a.NS.Do(func(ns.NetNS) error {
				var err error
				out, err = cmd.CombinedOutput()
				return err
			})
			if err != nil {
				t.Fatalf("install: %v\n%s", err, out)
			}
			data, err := os.ReadFile(filepath.Join(conf, "10-minicni.conflist"))
			if err != nil || !strings.Contains(string(data), `"mtu": `+tt.mtu+`,`) {
				t.Errorf("conflist, want mtu %s: %v\n%s", tt.mtu, err, data)
			}
		})
	}
}

// TestAgentRefusesOverlaySettings: an overlay setting (or the resync and
// staleness periods) out of range stops the agent at start with a message naming it, before it touches anything (run
// in a namespace of its own all the same).
func TestAgentRefusesOverlaySettings(t *testing.T) {
	n := minitest.NewNS(t)
	for _, tt := range []struct{ flag, value, want string }{
		{"--vxlan-vni", "0", "invalid VXLAN VNI 0: must be 1-16777215"},
		{"--vxlan-vni", "16777216", "invalid VXLAN VNI 16777216: must be 1-16777215"},
		{"--vxlan-port", "0", "invalid VXLAN UDP port 0: must be 1-65535"},
		{"--vxlan-port", "65536", "invalid VXLAN UDP port 65536: must be 1-65535"},
		{"--vxlan-device", "a-name-too-long-for-linux", "is 25 bytes long, the kernel allows at most 15"},
		{"--overlay", "geneve", `invalid overlay mode \"geneve\": want auto, vxlan or none`},
		{"--stale-after", "30s", "invalid --stale-after 30s: must be longer than --resync 30s"},
		{"--resync", "0s", "invalid --resync 0s: must be more than 0"},
		{"--apiserver-probe-timeout", "30s", "invalid --apiserver-probe-timeout 30s: must be more than 0 and shorter than --resync 30s"},
	} {
		cmd := exec.Command(binary, "agent", "--node-name", "a", "--nodes-file", filepath.Join(t.TempDir(), "absent.json"), "--listen", "", "--manage-files=false", tt.flag, tt.value)
		var out []byte
		err := n.Do(func(ns.NetNS) error {
			var err error
			out, err = cmd.CombinedOutput()
			return err
		})
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("agent %s %s: %v, want a refusal saying %q:\n%s", tt.flag, tt.value, err, tt.want, out)
		}
	}
}
