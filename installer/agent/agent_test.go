package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/conflist"
	"github.com/minicni/minicni/installer/install"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/routes"
)

// syncBuffer is a log sink shared by a goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeBinaries makes a --from directory holding stand-ins for the binaries.
func fakeBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []string{"minibridge", "miniipam", "miniroute", "portmap"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/false "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testFiles(t *testing.T, from string) (*Files, string, string) {
	t.Helper()
	bin, confDir := t.TempDir(), t.TempDir()
	return &Files{
		Template: conflist.DefaultTemplate,
		Settings: conflist.Settings{ClusterCIDRs: []string{"172.18.0.0/16", "fd00:18::/48"}},
		Plan: install.Plan{
			From: from, Binaries: []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback"},
			Optional: []string{"portmap", "loopback"}, BinDir: bin, ConfPath: filepath.Join(confDir, "10-minicni.conflist"),
		},
	}, bin, confDir
}

func writeNodes(t *testing.T, path string, list []nodes.Node) {
	t.Helper()
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	// Atomic, as an admin's editor or the lab should do it.
	if _, err := install.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out; state:\n%s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dirEmpty(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) == 0
}

// TestFilesRefuseNodeValues: an invalid podCIDR from the Node means nothing
// at all is written, binaries included.
func TestFilesRefuseNodeValues(t *testing.T) {
	from := fakeBinaries(t)
	for _, pods := range [][]string{
		{"1.2.3.4/33"}, {"10.0.0.0/24; rm -rf /"}, {"fd00:18::g/64"}, {}, {"172.18.1.0/24", "$(id)"},
	} {
		f, bin, confDir := testFiles(t, from)
		res, err := f.Apply(pods, nil)
		if err == nil {
			t.Errorf("Apply(%q) accepted it", pods)
		}
		if len(res.Written) > 0 || !dirEmpty(t, bin) || !dirEmpty(t, confDir) {
			t.Errorf("Apply(%q) wrote %v", pods, res.Written)
		}
	}
}

func TestWaitForPodCIDRs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, path, []nodes.Node{{Name: "a", InternalIPs: []string{"10.99.0.11"}}})
	src := &nodes.File{Path: path, Poll: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan nodes.Node, 1)
	go func() {
		n, err := WaitForPodCIDRs(ctx, src, "a", log, 50*time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	eventually(t, "two wait log lines", func() (bool, string) {
		return strings.Count(logs.String(), "waiting for the node's podCIDR") >= 2, logs.String()
	})
	select {
	case n := <-done:
		t.Fatalf("returned %+v before the node had a podCIDR", n)
	default:
	}
	writeNodes(t, path, []nodes.Node{{Name: "a", InternalIPs: []string{"10.99.0.11"}, PodCIDRs: []string{"172.18.0.0/24"}}})
	select {
	case n := <-done:
		if diff := cmp.Diff([]string{"172.18.0.0/24"}, n.PodCIDRs); diff != "" {
			t.Errorf("podCIDRs (-want +got):\n%s", diff)
		}
	case <-ctx.Done():
		t.Fatal("did not return after the podCIDR appeared")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := WaitForPodCIDRs(short, src, "missing", log, time.Second); err == nil {
		t.Error("no error when the wait timed out")
	}
}

var (
	nodeA = nodes.Node{Name: "a", InternalIPs: []string{"10.99.0.11", "fd00:99::11"}, PodCIDRs: []string{"172.18.0.0/24", "fd00:18::/64"}}
	nodeB = nodes.Node{Name: "b", InternalIPs: []string{"10.99.0.12", "fd00:99::12"}, PodCIDRs: []string{"172.18.1.0/24", "fd00:18:0:1::/64"}}
	nodeC = nodes.Node{Name: "c", InternalIPs: []string{"192.168.7.7"}, PodCIDRs: []string{"172.18.2.0/24"}}
)

type running struct {
	agent  *Agent
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

func (r running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("agent %s: %v", r.agent.Self, err)
	}
}

func start(t *testing.T, self string, n twonode.Node, nodesFile string, files *Files) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	src := &nodes.File{Path: nodesFile, Poll: 10 * time.Millisecond}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	a := &Agent{Self: self, Source: src, Routes: routes.New(n.H, log), Files: files, Resync: time.Hour, Log: log, Metrics: NewMetrics()}
	r := running{agent: a, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(cancel)
	return r
}

func metricsText(m *Metrics) string {
	var b strings.Builder
	_, _ = m.WriteTo(&b)
	return b.String()
}

// TestTwoAgents runs an agent on each of two simulated nodes with a static
// nodes file: each programs the route to the other's pod subnets and writes
// its conflist; a podCIDR change re-renders it; after a node is deleted while
// the agent is stopped, the restarted agent removes the stale route.
func TestTwoAgents(t *testing.T) {
	a, b := twonode.New(t)
	nodesFile := filepath.Join(t.TempDir(), "nodes.json")
	writeNodes(t, nodesFile, []nodes.Node{nodeA, nodeB, nodeC})
	from := fakeBinaries(t)
	filesA, binA, confA := testFiles(t, from)
	filesB, _, confB := testFiles(t, from)

	ra := start(t, "a", a, nodesFile, filesA)
	rb := start(t, "b", b, nodesFile, filesB)
	wantA := []string{"172.18.1.0/24 via 10.99.0.12", "fd00:18:0:1::/64 via fd00:99::12"}
	wantB := []string{"172.18.0.0/24 via 10.99.0.11", "fd00:18::/64 via fd00:99::11"}
	eventually(t, "routes on both nodes", func() (bool, string) {
		ga, gb := twonode.Routes(t, a.H, routes.Protocol), twonode.Routes(t, b.H, routes.Protocol)
		return cmp.Equal(ga, wantA) && cmp.Equal(gb, wantB), strings.Join(append(ga, gb...), "\n")
	})
	for _, c := range []struct{ dir, pod string }{{confA, "172.18.0.0/24"}, {confB, "172.18.1.0/24"}} {
		data, err := os.ReadFile(filepath.Join(c.dir, "10-minicni.conflist"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"subnet": "`+c.pod+`"`)) {
			t.Errorf("conflist in %s lacks %s:\n%s", c.dir, c.pod, data)
		}
	}
	if _, err := os.Stat(filepath.Join(binA, "minibridge")); err != nil {
		t.Errorf("binaries not installed: %v", err)
	}
	eventually(t, "metrics", func() (bool, string) {
		m := metricsText(ra.agent.Metrics)
		return strings.Contains(m, "\nminicni_routes_programmed 2\n") && strings.Contains(m, "\nminicni_nodes_unreachable 1\n"), m
	})
	if strings.Count(ra.logs.String(), `node=c`) != 1 {
		t.Errorf("node c's unreachability should be logged once:\n%s", ra.logs.String())
	}

	// Node a's podCIDR changes: a re-renders its conflist, b moves its route.
	movedA := nodeA
	movedA.PodCIDRs = []string{"172.18.7.0/24", "fd00:18::/64"}
	writeNodes(t, nodesFile, []nodes.Node{movedA, nodeB, nodeC})
	eventually(t, "re-rendered conflist and moved route", func() (bool, string) {
		data, _ := os.ReadFile(filepath.Join(confA, "10-minicni.conflist"))
		gb := twonode.Routes(t, b.H, routes.Protocol)
		ok := bytes.Contains(data, []byte(`"subnet": "172.18.7.0/24"`)) && cmp.Equal(gb, []string{"172.18.7.0/24 via 10.99.0.11", "fd00:18::/64 via fd00:99::11"})
		return ok, string(data) + strings.Join(gb, "\n")
	})

	// A broken nodes file must not make the agent drop its routes.
	if err := os.WriteFile(nodesFile, []byte(`[{"name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "list error counted", func() (bool, string) {
		m := metricsText(ra.agent.Metrics)
		return !strings.Contains(m, "\nminicni_reconcile_errors_total 0\n"), m
	})
	if got := twonode.Routes(t, a.H, routes.Protocol); !cmp.Equal(got, wantA) {
		t.Errorf("routes changed on a broken nodes file: %v", got)
	}

	// Stop a, delete b from the list, restart a: the stale route goes.
	ra.stop(t)
	rb.stop(t)
	writeNodes(t, nodesFile, []nodes.Node{movedA, nodeC})
	ra2 := start(t, "a", a, nodesFile, filesA)
	eventually(t, "stale route removed after restart", func() (bool, string) {
		got := twonode.Routes(t, a.H, routes.Protocol)
		return len(got) == 0, strings.Join(got, "\n")
	})
	if !strings.Contains(ra2.logs.String(), `msg="deleted route" dst=172.18.1.0/24`) {
		t.Errorf("deletion not logged:\n%s", ra2.logs.String())
	}
	ra2.stop(t)
}

func TestHandler(t *testing.T) {
	m := NewMetrics()
	srv := httptest.NewServer(Handler(m, time.Hour))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 || !strings.HasPrefix(body, "ok\nview of the nodes: confirmed 0s ago (stale after 2m0s)\n") {
		t.Errorf("/healthz = %d %q", code, body)
	}
	m.pass(true, &routes.Stats{Programmed: 3, Unreachable: 1, Invalid: 2, Changes: 4, OverlayChanges: 5,
		Peers: map[routes.Path]int{routes.Direct: 2, routes.VXLAN: 3, routes.Unreachable: 1, routes.Invalid: 2}})
	m.reconcileError()
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"# TYPE minicni_routes_programmed gauge\nminicni_routes_programmed 3\n",
		"minicni_nodes_unreachable 1\n", "minicni_nodes_invalid 2\n",
		"# TYPE minicni_reconcile_errors_total counter\nminicni_reconcile_errors_total 1\n",
		"minicni_route_changes_total 4\n", "minicni_overlay_changes_total 5\n",
		"# TYPE minicni_peers gauge\nminicni_peers{mode=\"direct\"} 2\nminicni_peers{mode=\"vxlan\"} 3\nminicni_peers{mode=\"unreachable\"} 1\nminicni_peers{mode=\"invalid\"} 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "minicni_last_successful_sync_timestamp_seconds 0\n") {
		t.Errorf("last successful sync not set:\n%s", body)
	}
	stale := NewMetrics()
	stale.start = time.Now().Add(-time.Hour)
	srv2 := httptest.NewServer(Handler(stale, time.Minute))
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz of a stuck loop = %d, want 503", resp.StatusCode)
	}
}

// TestPassCountsOrphans: after each pass the agent serves the orphan
// counts it is given; a failed count drops them rather than serve stale
// ones, and is not a failed pass.
func TestPassCountsOrphans(t *testing.T) {
	a, _ := twonode.New(t)
	counts := map[string]int{"veth": 2, "cache": 0}
	var countErr error
	ag := &Agent{Self: "a", Source: &nodes.Static{Nodes: []nodes.Node{nodeA}}, Routes: routes.New(a.H, nil),
		Metrics: NewMetrics(), Log: slog.New(slog.DiscardHandler),
		Orphans: func() (map[string]int, error) {
			if countErr != nil {
				return nil, countErr
			}
			return counts, nil
		}}
	ag.Pass()
	want := "# TYPE minicni_orphans gauge\nminicni_orphans{kind=\"cache\"} 0\nminicni_orphans{kind=\"veth\"} 2\n"
	if m := metricsText(ag.Metrics); !strings.Contains(m, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, m)
	}
	countErr = errors.New("cannot read the conf dir")
	ag.Pass()
	if m := metricsText(ag.Metrics); strings.Contains(m, "minicni_orphans") || !strings.Contains(m, "\nminicni_reconcile_errors_total 0\n") {
		t.Errorf("after a failed count:\n%s", m)
	}
}
