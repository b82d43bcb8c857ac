package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/routes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeAPIServer speaks as much of the Kubernetes API as the agent's node
// informer and probe use, over real HTTP on loopback: GET /version, the
// Node list, and the Node watch (from the list's resourceVersion, or with
// sendInitialEvents and the initial-events-end bookmark; an older
// resourceVersion is 410 Gone, so the client lists again). Stop closes the
// listener and every connection, as a stopped apiserver does; Start serves
// again on the same address.
type fakeAPIServer struct {
	mu       sync.Mutex
	addr     string
	srv      *http.Server
	down     chan struct{} // closed by Stop: watches end
	rv       int
	nodes    map[string]corev1.Node
	watchers map[chan metav1.WatchEvent]bool
}

func newFakeAPIServer(t *testing.T, list ...corev1.Node) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{addr: "127.0.0.1:0", rv: 1, nodes: map[string]corev1.Node{}, watchers: map[chan metav1.WatchEvent]bool{}}
	for _, n := range list {
		f.nodes[n.Name] = f.stamp(n)
	}
	f.Start(t)
	t.Cleanup(f.Stop)
	return f
}

// stamp sets n's type and resourceVersion to the current one.
func (f *fakeAPIServer) stamp(n corev1.Node) corev1.Node {
	n.TypeMeta = metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}
	n.ResourceVersion = strconv.Itoa(f.rv)
	return n
}

func (f *fakeAPIServer) URL() string { return "http://" + f.addr }

// Start serves on f's address (the same one again after Stop).
func (f *fakeAPIServer) Start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", f.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("fake apiserver: %v", err)
	}
	f.mu.Lock()
	f.addr = ln.Addr().String()
	f.down = make(chan struct{})
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	srv := f.srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the listener and every connection: clients get connection
// refused until Start.
func (f *fakeAPIServer) Stop() {
	f.mu.Lock()
	srv, down := f.srv, f.down
	f.srv = nil
	f.mu.Unlock()
	if srv == nil {
		return
	}
	close(down)
	_ = srv.Close()
}

// SetNode adds or replaces a node, telling the watches.
func (f *fakeAPIServer) SetNode(n corev1.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	typ := watchTypeAdded
	if _, ok := f.nodes[n.Name]; ok {
		typ = watchTypeModified
	}
	f.rv++
	n = f.stamp(n)
	f.nodes[n.Name] = n
	ev := watchEvent(typ, n)
	for ch := range f.watchers {
		select {
		case ch <- ev:
		default: // a stuck watcher loses the event and relists later
		}
	}
}

const (
	watchTypeAdded    = "ADDED"
	watchTypeModified = "MODIFIED"
	watchTypeBookmark = "BOOKMARK"
)

func watchEvent(typ string, obj any) metav1.WatchEvent {
	raw, _ := json.Marshal(obj)
	ev := metav1.WatchEvent{Type: typ}
	ev.Object.Raw = raw
	return ev
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/version":
		writeJSON(w, 200, map[string]string{"major": "1", "minor": "34", "gitVersion": "v1.34.4-fake"})
	case r.URL.Path == "/api/v1/nodes" && r.Method == http.MethodGet:
		if q := r.URL.Query().Get("watch"); q == "true" || q == "1" {
			f.watch(w, r)
			return
		}
		f.mu.Lock()
		list := corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(f.rv)}}
		for _, n := range f.nodes {
			list.Items = append(list.Items, n)
		}
		f.mu.Unlock()
		slices.SortFunc(list.Items, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
		writeJSON(w, 200, list)
	default:
		writeJSON(w, 404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Code: 404, Reason: metav1.StatusReasonNotFound, Message: r.URL.Path + " not found"})
	}
}

func (f *fakeAPIServer) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ch := make(chan metav1.WatchEvent, 64)
	f.mu.Lock()
	var initial []metav1.WatchEvent
	if q.Get("sendInitialEvents") == "true" {
		for _, n := range f.nodes {
			initial = append(initial, watchEvent(watchTypeAdded, n))
		}
		bm := corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.Itoa(f.rv), Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
		initial = append(initial, watchEvent(watchTypeBookmark, bm))
	} else if rv := q.Get("resourceVersion"); rv != "" && rv != "0" && rv != strconv.Itoa(f.rv) {
		f.mu.Unlock()
		writeJSON(w, http.StatusGone, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Code: http.StatusGone,
			Reason: metav1.StatusReasonExpired, Message: fmt.Sprintf("too old resource version: %s (%d)", rv, f.rv)})
		return
	}
	f.watchers[ch] = true
	down := f.down
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	enc := json.NewEncoder(w)
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	for _, ev := range initial {
		_ = enc.Encode(ev)
	}
	flush()
	for {
		select {
		case ev := <-ch:
			if err := enc.Encode(ev); err != nil {
				return
			}
			flush()
		case <-r.Context().Done():
			return
		case <-down:
			return
		}
	}
}

func kubeNode(name, ip, podCIDR string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// TestAgentLosesAPIServer: an agent fed by the Node informer of a fake
// apiserver (fakeAPIServer above, real HTTP) programs the route to the
// other node; the apiserver stops. The agent keeps the route; past
// --stale-after (1 s here) /healthz still answers 200 (liveness must not
// restart an agent that cannot help it) and says the view is stale and how
// old, /readyz answers 503 saying the same, and the view-age metric grows.
// A node's podCIDR changes while the apiserver is down; once it is back on
// the same address, the agent converges to the new route and both
// endpoints say the view is confirmed again.
func TestAgentLosesAPIServer(t *testing.T) {
	a, _ := twonode.New(t)
	api := newFakeAPIServer(t, kubeNode("a", "10.99.0.11", "172.18.0.0/24"), kubeNode("b", "10.99.0.12", "172.18.1.0/24"))
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := &nodes.Kubernetes{Client: client}
	if err := src.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	m := NewMetrics()
	m.StaleAfter = time.Second
	ag := &Agent{Self: "a", Source: src, Routes: routes.New(a.H, log), Resync: 100 * time.Millisecond, Log: log, Metrics: m}
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	srv := httptest.NewServer(Handler(m, time.Minute))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	endpoints := func(wantReady int, wantLine string) func() (bool, string) {
		return func() (bool, string) {
			hc, hb := get("/healthz")
			rc, rb := get("/readyz")
			return hc == 200 && strings.HasPrefix(hb, "ok\n") && strings.Contains(hb, wantLine) && rc == wantReady && strings.Contains(rb, wantLine),
				fmt.Sprintf("/healthz %d %q, /readyz %d %q", hc, hb, rc, rb)
		}
	}
	routesAre := func(want ...string) func() (bool, string) {
		return func() (bool, string) {
			got := twonode.Routes(t, a.H, routes.Protocol)
			return cmp.Equal(got, want), strings.Join(got, "\n")
		}
	}

	eventually(t, "route to b", routesAre("172.18.1.0/24 via 10.99.0.12"))
	eventually(t, "fresh view", endpoints(200, "view of the nodes: confirmed"))

	api.Stop()
	stoppedAt := time.Now()
	eventually(t, "stale view reported", endpoints(503, "view of the nodes: STALE: last confirmed"))
	// The view was last confirmed by the pass before the stop, at most one
	// resync (100 ms) earlier.
	if d := time.Since(stoppedAt); d < time.Second-2*ag.Resync {
		t.Errorf("stale %s after the apiserver stopped, well before --stale-after (1s)", d)
	}
	_, rb := get("/readyz")
	if !strings.Contains(rb, "apiserver unreachable") || !strings.Contains(rb, "the routes programmed from it are kept") {
		t.Errorf("/readyz does not say why: %q", rb)
	}
	if ok, got := routesAre("172.18.1.0/24 via 10.99.0.12")(); !ok {
		t.Errorf("routes while the apiserver is down: %s", got)
	}
	var age float64
	for _, line := range strings.Split(metricsText(m), "\n") {
		if v, ok := strings.CutPrefix(line, "minicni_nodes_view_age_seconds "); ok {
			age, _ = strconv.ParseFloat(v, 64)
		}
	}
	if age < 1 {
		t.Errorf("minicni_nodes_view_age_seconds %v, want at least 1 (stale)", age)
	}

	// The cluster changes while the agent cannot see it.
	api.SetNode(kubeNode("b", "10.99.0.12", "172.18.5.0/24"))
	time.Sleep(300 * time.Millisecond) // a few passes without the apiserver
	if ok, got := routesAre("172.18.1.0/24 via 10.99.0.12")(); !ok {
		t.Errorf("routes changed while the apiserver was down: %s", got)
	}

	api.Start(t)
	eventually(t, "converged after the apiserver is back", routesAre("172.18.5.0/24 via 10.99.0.12"))
	eventually(t, "fresh view again", endpoints(200, "view of the nodes: confirmed"))
	if !strings.Contains(logs.String(), "reach the node source failed") || !strings.Contains(logs.String(), "reach the node source recovered") {
		t.Errorf("the outage and the recovery are not logged:\n%s", logs.String())
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("context ended early")
	}
}
