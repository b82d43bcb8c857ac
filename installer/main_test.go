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
	for _, b := range []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback"} {
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
			if diff := cmp.Diff([]string{"loopback", "minibridge", "miniipam", "miniroute", "portmap"}, minitest.DirNames(t, bin)); diff != "" {
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
	w.wait(t, regexp.MustCompile(`msg="added route" .*dst=172.18.1.0/24 via=10.99.0.12 node=b`))
	if got := twonode.Routes(t, a.H, routes.Protocol); !cmp.Equal(got, []string{"172.18.1.0/24 via 10.99.0.12"}) {
		t.Errorf("kernel routes: %v", got)
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
	if body := get("/healthz"); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
	// The log line above comes mid-pass; the metrics are set when the pass
	// ends.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		body := get("/metrics")
		if strings.Contains(body, "\nminicni_routes_programmed 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics:\n%s", body)
			break
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "10-minicni.conflist")); err != nil {
		t.Errorf("agent did not write the conflist: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("agent exit after SIGTERM: %v\n%s", err, w.text())
	}
	if got := twonode.Routes(t, a.H, routes.Protocol); len(got) != 1 {
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
	if got := append(minitest.DirNames(t, conf), minitest.DirNames(t, bin)...); len(got) != 2 { // portmap, loopback differ from --from's (the default)
		t.Errorf("files left after uninstall: %v\n%s", got, out)
	}
}
