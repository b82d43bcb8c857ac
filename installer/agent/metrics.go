package agent

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/minicni/minicni/installer/routes"
)

// Metrics are the agent's counters and gauges, served in the Prometheus text
// format (written by hand: a dozen values do not need a client library).
type Metrics struct {
	// StaleAfter is the age past which the view of the nodes is stale
	// (/readyz fails, /healthz says so); zero means DefaultStaleAfter.
	StaleAfter time.Duration

	mu              sync.Mutex
	start           time.Time
	lastPass        time.Time
	lastSuccess     time.Time
	lastContact     time.Time // the node source last answered (start until then)
	contactErr      string    // why it did not answer since, if it did not
	routes          int
	unreachable     int
	invalid         int
	peers           map[routes.Path]int
	reconcileErrors uint64
	routeChanges    uint64
	overlayChanges  uint64
	files           uint64
	orphans         map[string]int // by kind; nil: not known
}

// DefaultStaleAfter is the agent's --stale-after default: four default
// resync periods without word from the node source.
const DefaultStaleAfter = 2 * time.Minute

// NewMetrics starts the clock Healthy and View measure from.
func NewMetrics() *Metrics { return &Metrics{start: time.Now()} }

// contact records whether the node source answered in this pass (err nil)
// or not.
func (m *Metrics) contact(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.lastContact, m.contactErr = time.Now(), ""
		return
	}
	m.contactErr = err.Error()
}

// View reports how old the agent's view of the nodes is: the time since
// the node source (the apiserver, through the informer and a probe; or
// the nodes file) last answered, counted from start until it first does,
// and whether that is past StaleAfter. why is the source's last error.
func (m *Metrics) View() (age time.Duration, stale bool, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := m.lastContact
	if last.IsZero() {
		last = m.start
	}
	age = time.Since(last)
	return age, age > m.staleAfter(), m.contactErr
}

func (m *Metrics) staleAfter() time.Duration {
	if m.StaleAfter <= 0 {
		return DefaultStaleAfter
	}
	return m.StaleAfter
}

// viewLine is the line /healthz and /readyz add about the view.
func (m *Metrics) viewLine() (string, bool) {
	age, stale, why := m.View()
	if !stale {
		return fmt.Sprintf("view of the nodes: confirmed %s ago (stale after %s)\n", age.Round(time.Second), m.staleAfter()), false
	}
	if why == "" {
		why = "no answer yet"
	}
	return fmt.Sprintf("view of the nodes: STALE: last confirmed %s ago (stale after %s): %s; the routes programmed from it are kept\n",
		age.Round(time.Second), m.staleAfter(), why), true
}

func (m *Metrics) pass(success bool, st *routes.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastPass = time.Now()
	if success {
		m.lastSuccess = m.lastPass
	}
	if st != nil {
		m.routes, m.unreachable, m.invalid, m.peers = st.Programmed, st.Unreachable, st.Invalid, st.Peers
		m.routeChanges += uint64(st.Changes)
		m.overlayChanges += uint64(st.OverlayChanges)
	}
}

// setOrphans records the node's orphans by kind (nil: unknown, not served).
func (m *Metrics) setOrphans(counts map[string]int) {
	m.mu.Lock()
	m.orphans = counts
	m.mu.Unlock()
}

func (m *Metrics) reconcileError() {
	m.mu.Lock()
	m.reconcileErrors++
	m.mu.Unlock()
}

func (m *Metrics) filesWritten(n int) {
	m.mu.Lock()
	m.files += uint64(n)
	m.mu.Unlock()
}

// Healthy reports whether a pass (successful or not) finished within window,
// counting from start until the first one: a loop stuck in the kernel or on
// a lock fails it, an apiserver that is merely down does not.
func (m *Metrics) Healthy(window time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := m.lastPass
	if last.IsZero() {
		last = m.start
	}
	if since := time.Since(last); since > window {
		return fmt.Errorf("%w: last pass %s ago (window %s)", ErrUnhealthy, since.Round(time.Second), window)
	}
	return nil
}

// WriteTo writes the metrics in the Prometheus text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last float64
	if !m.lastSuccess.IsZero() {
		last = float64(m.lastSuccess.UnixNano()) / 1e9
	}
	metrics := []struct {
		name, typ, help string
		value           string
	}{
		{"minicni_routes_programmed", "gauge", "Routes to other nodes' pod subnets in the kernel, carrying minicni's route protocol.", fmt.Sprint(m.routes)},
		{"minicni_nodes_unreachable", "gauge", "Nodes with a podCIDR that has no path (no direct route and no VXLAN), hence not (fully) routed.", fmt.Sprint(m.unreachable)},
		{"minicni_nodes_invalid", "gauge", "Nodes ignored because a podCIDR or InternalIP failed validation or overlaps another subnet.", fmt.Sprint(m.invalid)},
		{"minicni_reconcile_errors_total", "counter", "Failed steps of reconcile passes (listing nodes, installing files, programming routes).", fmt.Sprint(m.reconcileErrors)},
		{"minicni_route_changes_total", "counter", "Routes added, replaced or deleted.", fmt.Sprint(m.routeChanges)},
		{"minicni_overlay_changes_total", "counter", "Changes to the VXLAN overlay: device created, deleted or set, its addresses, FDB and neighbour entries.", fmt.Sprint(m.overlayChanges)},
		{"minicni_files_written_total", "counter", "CNI files (binaries, conflist) written because they were missing or differed.", fmt.Sprint(m.files)},
		{"minicni_last_successful_sync_timestamp_seconds", "gauge", "Unix time of the last pass that ended without any error (0: none yet).", fmt.Sprintf("%.3f", last)},
		{"minicni_nodes_view_age_seconds", "gauge", "Seconds since the node source (the apiserver, or the nodes file) last answered: how stale the view of the nodes may be.", fmt.Sprintf("%.3f", m.viewAgeLocked().Seconds())},
	}
	var n int64
	for _, mt := range metrics {
		k, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", mt.name, mt.help, mt.name, mt.typ, mt.name, mt.value)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	k, err := fmt.Fprintf(w, "# HELP minicni_peers Other nodes by path to their pod subnets: direct, vxlan (one subnet at least over the overlay), unreachable (one at least without a path), invalid.\n# TYPE minicni_peers gauge\n")
	n += int64(k)
	if err != nil {
		return n, err
	}
	for _, p := range routes.Paths {
		k, err := fmt.Fprintf(w, "minicni_peers{mode=%q} %d\n", p, m.peers[p])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	if m.orphans == nil {
		return n, nil
	}
	k, err = fmt.Fprintf(w, "# HELP minicni_orphans Leftovers on this node by kind, as `minicni status` reports them (reservation, veth, cache, netns-gone, earlier-boot, no-veth).\n# TYPE minicni_orphans gauge\n")
	n += int64(k)
	if err != nil {
		return n, err
	}
	for _, kind := range slices.Sorted(maps.Keys(m.orphans)) {
		k, err := fmt.Fprintf(w, "minicni_orphans{kind=%q} %d\n", kind, m.orphans[kind])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (m *Metrics) viewAgeLocked() time.Duration {
	last := m.lastContact
	if last.IsZero() {
		last = m.start
	}
	return time.Since(last)
}

// Handler serves /healthz, /readyz and /metrics.
//
// /healthz is for a liveness probe: 503 only when the loop is stuck (no
// pass within window), else 200 "ok"; either way a second line says how old
// the view of the nodes is, and whether it is stale. A stale view does not
// fail it: restarting the agent cannot bring the apiserver back, and the
// routes it keeps are the best the node has.
//
// /readyz is 503 when the loop is stuck or the view is stale, else 200
// "ok", with the same second line: for a readiness probe, and for whoever
// wants to know that this node's routes may be out of date.
func Handler(m *Metrics, window time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		line, _ := m.viewLine()
		if err := m.Healthy(window); err != nil {
			http.Error(w, err.Error()+"\n"+line, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n"+line)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		line, stale := m.viewLine()
		if err := m.Healthy(window); err != nil {
			http.Error(w, err.Error()+"\n"+line, http.StatusServiceUnavailable)
			return
		}
		if stale {
			http.Error(w, "not ready\n"+line, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n"+line)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = m.WriteTo(w)
	})
	return mux
}
