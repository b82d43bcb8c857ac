// Package agent is minicni-installer's long-running part: one goroutine that,
// on every node event and on a resync timer, keeps the node's CNI files
// current (re-rendering the conflist when the node's podCIDRs appear or
// change) and reconciles the routes to the other nodes' pod subnets. It
// also serves /healthz and /metrics, and holds the one-shot wait for the
// node's podCIDR that `install` uses.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/minicni/minicni/installer/conflist"
	"github.com/minicni/minicni/installer/install"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/routes"
)

// Files renders the conflist for the node's pod CIDRs and installs it with
// the binaries.
type Files struct {
	Template []byte
	Settings conflist.Settings
	// OverlayMTU, when not nil, gives the pods' MTU under the VXLAN
	// overlay from the node's InternalIPs (overlay.PodMTU): it replaces an
	// automatic mtu (Settings.AutoMTU).
	OverlayMTU func(internalIPs []string) (int, error)
	// Plan is everything but Conflist and Needs, which Apply fills in.
	Plan install.Plan
}

// Apply renders and installs. podCIDRs and internalIPs come from the Node
// object: when a podCIDR is invalid (or there is none), the error says which
// and nothing is written, neither binaries nor conflist. internalIPs only
// choose the overlay's MTU (nil when unknown).
func (f Files) Apply(podCIDRs, internalIPs []string) (install.Result, error) {
	s := f.Settings
	if f.OverlayMTU != nil {
		mtu, err := f.OverlayMTU(internalIPs)
		if err != nil {
			return install.Result{}, fmt.Errorf("overlay MTU: %w", err)
		}
		s.AutoMTU = mtu
	}
	data, err := conflist.Render(f.Template, podCIDRs, s)
	if err != nil {
		return install.Result{}, fmt.Errorf("render conflist: %w", err)
	}
	needs, err := conflist.Types(data)
	if err != nil {
		return install.Result{}, err
	}
	p := f.Plan
	p.Conflist, p.Needs = data, needs
	return install.Run(p)
}

// WaitForPodCIDRs returns the node called name once it has podCIDRs. While
// the node is missing or has none (the controller-manager assigns them after
// the node registers), it logs a line every logEvery. It does not validate
// the values: the renderer does.
func WaitForPodCIDRs(ctx context.Context, src nodes.Source, name string, log *slog.Logger, logEvery time.Duration) (nodes.Node, error) {
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	var lastLog time.Time
	start := time.Now()
	for {
		n, ok, err := src.Get(name)
		switch {
		case err != nil:
			return nodes.Node{}, err
		case ok && len(n.PodCIDRs) > 0:
			return n, nil
		}
		if time.Since(lastLog) >= logEvery {
			lastLog = time.Now()
			what := "has no podCIDR yet"
			if !ok {
				what = "does not exist (yet)"
			}
			log.Info("waiting for the node's podCIDR", "node", name, "state", what, "waited", time.Since(start).Round(time.Second).String())
		}
		select {
		case <-ctx.Done():
			return nodes.Node{}, fmt.Errorf("node %q has no podCIDR: %w", name, context.Cause(ctx))
		case <-src.Changed():
		case <-poll.C:
		}
	}
}

// Agent keeps one node's files and routes current.
type Agent struct {
	Self   string
	Source nodes.Source // already started
	Routes *routes.Reconciler
	// Files, when not nil, keeps the CNI files current.
	Files *Files
	// Resync is the period of a full pass without events (default 30 s).
	Resync  time.Duration
	Log     *slog.Logger
	Metrics *Metrics
	// Orphans, when not nil, counts the node's orphans by kind
	// (nodestatus.Orphans) after each pass, for /metrics.
	Orphans func() (map[string]int, error)

	lastErr  map[string]string // step -> last error logged
	selfNote string            // last logged remark about the node itself
	// applied is the node (podCIDRs, InternalIPs) of the last successful
	// Files.Apply, at appliedAt: events for other nodes do not re-read the
	// binaries.
	applied   *nodes.Node
	appliedAt time.Time
}

// Run passes once, then on every event and every Resync, until ctx ends. It
// is the only goroutine touching the reconciler and the files. The first
// pass and the resyncs are full (Pass: the routes and overlay entries are
// read back from the kernel, so drift is repaired); a pass after a node
// event is incremental (EventPass: only what changed is sent to the
// kernel), so its cost follows the change, not the size of the cluster.
func (a *Agent) Run(ctx context.Context) error {
	if a.Resync <= 0 {
		a.Resync = 30 * time.Second
	}
	if a.Log == nil {
		a.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.Metrics == nil {
		a.Metrics = NewMetrics()
	}
	a.lastErr = map[string]string{}
	t := time.NewTicker(a.Resync)
	defer t.Stop()
	a.Pass()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.Source.Changed():
			a.EventPass()
		case <-t.C:
			a.Pass()
		}
	}
}

// Pass is one full level-triggered round: list, files, routes
// (routes.Reconciler.Sync).
func (a *Agent) Pass() { a.pass(false) }

// EventPass is the round after a node event. With a source that names the
// nodes that changed (nodes.Kubernetes) it reads only those and applies
// them node by node (routes.Reconciler.UpdateNodes); otherwise, or when a
// change reaches beyond its node, it lists every node, keeps the files
// current and passes the list to routes.Reconciler.Update. Either sends the
// kernel only what changed since the last round (or falls back to a Sync).
func (a *Agent) EventPass() { a.pass(true) }

func (a *Agent) pass(event bool) {
	if a.lastErr == nil {
		a.lastErr = map[string]string{}
	}
	var carried routes.Stats // what a node-by-node pass did before it stopped
	if cl, ok := a.Source.(changeLister); ok {
		// Taken before the list: a change after it is taken next time.
		names := cl.TakeChanged()
		if event {
			var done bool
			if carried, done = a.nodeByNode(names); done {
				return
			}
		}
	}
	list, err := a.Source.List()
	if err != nil {
		// Never reconcile on a failed list: an empty view would delete
		// every route.
		a.fail("list nodes", err)
		a.Metrics.contact(err)
		a.Metrics.pass(false, nil)
		return
	}
	a.ok("list nodes")
	// A source that serves a cache (the informer) is asked whether it is
	// still in touch; its cached list is reconciled either way, so the
	// routes stay as the last view had them.
	reached := true
	if p, ok := a.Source.(nodes.Prober); ok {
		err := p.Probe(context.Background())
		a.Metrics.contact(err)
		if reached = err == nil; !reached {
			a.fail("reach the node source", err)
		} else {
			a.ok("reach the node source")
		}
	} else {
		a.Metrics.contact(nil)
	}
	okFiles := true
	if a.Files != nil {
		okFiles = a.files(list)
	}
	sync := a.Routes.Sync
	if event {
		sync = a.Routes.Update
	}
	st, err := sync(a.Self, list)
	st.Changes += carried.Changes
	st.OverlayChanges += carried.OverlayChanges
	if err != nil {
		a.fail("routes", err)
	} else {
		a.ok("routes")
	}
	if a.Orphans != nil {
		counts, err := a.Orphans()
		if err != nil {
			a.note("count orphans", err) // a failed count is not a failed pass
		} else {
			a.ok("count orphans")
		}
		a.Metrics.setOrphans(counts)
	}
	a.Metrics.pass(err == nil && okFiles && reached, &st)
}

// changeLister is a node source that says which nodes changed
// (nodes.Kubernetes).
type changeLister interface {
	TakeChanged() []string
}

// nodeByNode is the event pass when the source names the nodes that
// changed: it reads just those from the source's cache and hands them to
// routes.Reconciler.UpdateNodes, so neither the list nor the desired set
// of every node is recomputed. It returns done false, with what it did,
// when the pass needs the whole list: this node changed (its files and
// every route depend on it), the files are not in place yet, a node could
// not be read, or UpdateNodes cannot apply the change alone.
func (a *Agent) nodeByNode(names []string) (_ routes.Stats, done bool) {
	if slices.Contains(names, a.Self) || (a.Files != nil && a.applied == nil) {
		return routes.Stats{}, false
	}
	var changed []nodes.Node
	var removed []string
	for _, name := range names {
		n, ok, err := a.Source.Get(name)
		switch {
		case err != nil:
			return routes.Stats{}, false
		case ok:
			changed = append(changed, n)
		default:
			removed = append(removed, name)
		}
	}
	st, ok, err := a.Routes.UpdateNodes(a.Self, changed, removed)
	if !ok {
		return st, false
	}
	if err != nil {
		a.fail("routes", err)
	} else {
		a.ok("routes")
	}
	a.Metrics.pass(err == nil, &st)
	return st, true
}

func (a *Agent) files(list []nodes.Node) bool {
	var self *nodes.Node
	for i := range list {
		if list[i].Name == a.Self {
			self = &list[i]
		}
	}
	note := ""
	switch {
	case self == nil:
		note = "this node is not in the node list; installed files left as they are"
	case len(self.PodCIDRs) == 0:
		note = "this node has no podCIDR; installed files left as they are"
	}
	if note != a.selfNote {
		if note != "" {
			a.Log.Warn(note, "node", a.Self)
		}
		a.selfNote = note
	}
	if note != "" {
		return true
	}
	if a.applied != nil && slices.Equal(a.applied.PodCIDRs, self.PodCIDRs) && slices.Equal(a.applied.InternalIPs, self.InternalIPs) &&
		time.Since(a.appliedAt) < a.Resync {
		return true // checked recently, and the node's subnets and addresses are the same
	}
	res, err := a.Files.Apply(self.PodCIDRs, self.InternalIPs)
	for _, path := range res.Written {
		a.Log.Info("installed file", "path", path, "podCIDRs", fmt.Sprint(self.PodCIDRs))
	}
	a.Metrics.filesWritten(len(res.Written))
	if err != nil {
		a.applied = nil
		a.fail("files", err)
		return false
	}
	a.applied = &nodes.Node{PodCIDRs: slices.Clone(self.PodCIDRs), InternalIPs: slices.Clone(self.InternalIPs)}
	a.appliedAt = time.Now()
	a.ok("files")
	return true
}

// fail counts an error and logs it unless the same error was logged last
// time for this step.
func (a *Agent) fail(step string, err error) {
	a.Metrics.reconcileError()
	if msg := err.Error(); a.lastErr[step] != msg {
		a.lastErr[step] = msg
		a.Log.Error(step+" failed", "err", msg)
	}
}

// note logs an error once, as fail does, without counting it.
func (a *Agent) note(step string, err error) {
	if msg := err.Error(); a.lastErr[step] != msg {
		a.lastErr[step] = msg
		a.Log.Warn(step+" failed", "err", msg)
	}
}

func (a *Agent) ok(step string) {
	if _, failed := a.lastErr[step]; failed {
		delete(a.lastErr, step)
		a.Log.Info(step + " recovered")
	}
}

// ErrUnhealthy is what Healthy returns when the loop has not finished a pass
// for too long.
var ErrUnhealthy = errors.New("no reconcile pass finished recently")
