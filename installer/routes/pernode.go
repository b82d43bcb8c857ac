package routes

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"golang.org/x/sys/unix"
)

// UpdateNodes is Update for a source that says which nodes changed:
// changed holds their new values, removed the names of those gone. It
// decides and applies each of them alone, from what the last pass left,
// without the other nodes: its time, like its netlink requests, follows
// the change, not the cluster. It applies nothing and returns ok false
// when that is not possible, and the caller must then pass the whole list
// to Update: nothing remembered (the first pass, a failed one), this node
// among the changes, a local subnet changed, or a node whose change
// reaches another (a subnet overlapping another node's, a VTEP MAC
// another has, a node already refused for such a conflict, or the VXLAN
// device coming or going). Nodes before the one that stops it stay
// applied; their changes are in the returned Stats.
func (r *Reconciler) UpdateNodes(self string, changed []nodes.Node, removed []string) (_ Stats, ok bool, _ error) {
	if r.mem == nil || r.mem.model == nil || r.mem.model.self != self {
		return Stats{}, false, nil
	}
	for _, n := range changed {
		if n.Name == self {
			return Stats{}, false, nil
		}
	}
	if slices.Contains(removed, self) {
		return Stats{}, false, nil
	}
	local, err := r.LocalNets()
	if err != nil || !slices.Equal(local, r.mem.model.d.local) {
		return Stats{}, false, nil
	}
	type change struct {
		name string
		node *nodes.Node // nil: removed
	}
	var todo []change
	for i := range changed {
		todo = append(todo, change{changed[i].Name, &changed[i]})
	}
	for _, name := range removed {
		todo = append(todo, change{name, nil})
	}
	var st Stats
	var errs []error
	ok = true
	for _, c := range todo {
		old, nw, had, present, applied := r.mem.model.apply(c.name, c.node)
		if !applied {
			ok = false
			break
		}
		r.reportNode(c.name, nw, present)
		if err := r.applyNode(c.name, old, nw, had, present, &st); err != nil {
			errs = append(errs, err)
		}
	}
	st.Unreachable, st.Invalid, st.Programmed = len(r.lastUnreachable), len(r.lastInvalid), len(r.mem.routes)
	st.Peers = map[Path]int{}
	for p, n := range r.mem.model.paths {
		if n > 0 {
			st.Peers[p] = n
		}
	}
	if len(errs) > 0 {
		r.mem = nil // the next pass is a Sync
		return st, true, errors.Join(errs...)
	}
	return st, ok, nil
}

// applyNode sends the kernel what changed for one node: its FDB and
// neighbour entries, then its routes.
func (r *Reconciler) applyNode(name string, old, nw entry, had, present bool, st *Stats) error {
	mem := r.mem
	var before, after []Route
	if had && old.valid() {
		before = old.routes
	}
	if present && nw.valid() {
		for _, rt := range nw.routes {
			if rt.Path == VXLAN {
				rt.LinkIndex = mem.devIndex
			}
			after = append(after, rt)
		}
	}
	var errs []error
	if mem.dev.Name != "" {
		have, want := nodeEntries(name, before, old.underlay), nodeEntries(name, after, nw.underlay)
		done, err := overlay.UpdatePeers(r.h, mem.devIndex, have, want)
		for _, c := range done {
			st.OverlayChanges++
			r.log.Info("VXLAN: " + c)
		}
		if err != nil {
			errs = append(errs, err)
		}
		for mac := range have.FDB {
			delete(mem.entries.FDB, mac)
		}
		for nh := range have.Neigh {
			delete(mem.entries.Neigh, nh)
		}
		maps.Copy(mem.entries.FDB, want.FDB)
		maps.Copy(mem.entries.Neigh, want.Neigh)
	}
	for _, rt := range before {
		if slices.ContainsFunc(after, func(a Route) bool { return a.Dst == rt.Dst }) {
			continue
		}
		if err := r.h.RouteDel(kernelRoute(mem.routes[rt.Dst])); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", rt.Dst, rt.Via, err))
			continue
		}
		delete(mem.routes, rt.Dst)
		st.Changes++
		r.log.Info("deleted route", "dst", rt.Dst.String(), "via", rt.Via.String(), "reason", "no node has this podCIDR")
	}
	for _, want := range after {
		have, ok := mem.routes[want.Dst]
		if ok && sameRoute(have, want) {
			continue
		}
		if err := r.replace(want); err != nil {
			errs = append(errs, err)
			continue
		}
		mem.routes[want.Dst] = want
		st.Changes++
		if ok {
			r.log.Info("replaced route", "dst", want.Dst.String(), "via", want.Via.String(), "was", have.Via.String(), "node", want.Node, "path", string(want.Path))
		} else {
			r.log.Info("added route", "dst", want.Dst.String(), "via", want.Via.String(), "node", want.Node, "path", string(want.Path))
		}
	}
	return errors.Join(errs...)
}

// nodeEntries is the FDB and neighbour entries of one peer with routes.
func nodeEntries(name string, routes []Route, underlay netip.Addr) overlay.Entries {
	e := overlay.Entries{FDB: map[overlay.VTEP]overlay.Target{}, Neigh: map[netip.Addr]overlay.VTEP{}}
	for _, rt := range routes {
		if rt.Path != VXLAN {
			continue
		}
		mac := overlay.VTEP(overlay.MAC(underlay))
		e.FDB[mac] = overlay.Target{Underlay: underlay, Node: name}
		e.Neigh[rt.Via] = mac
	}
	return e
}

// reportNode logs what changed for one node, as report does for a whole
// pass, but for the status line: an event pass logs the node's new path
// (`peer path`) instead of naming every node.
func (r *Reconciler) reportNode(name string, nw entry, present bool) {
	invalid, unreachable := "", ""
	if present {
		invalid = nw.err
		if invalid == "" {
			unreachable = nw.unreachable
		}
	}
	if invalid != "" && r.lastInvalid[name] != invalid {
		r.log.Warn("ignoring node: invalid value", "node", name, "reason", invalid)
	}
	if unreachable != "" && r.lastUnreachable[name] != unreachable {
		msg := "node unreachable, not routed"
		if !r.Overlay.Enabled() {
			msg = "node unreachable without an overlay, not routed"
		}
		r.log.Warn(msg, "node", name, "reason", unreachable)
	}
	if _, was := r.lastInvalid[name]; was && invalid == "" {
		r.log.Info("node no longer invalid (or gone)", "node", name)
	}
	if _, was := r.lastUnreachable[name]; was && unreachable == "" {
		r.log.Info("node no longer unreachable (or gone)", "node", name)
	}
	setOrDelete(r.lastInvalid, name, invalid)
	setOrDelete(r.lastUnreachable, name, unreachable)
	var path Path
	if present {
		path, _ = nw.path()
	}
	if was := r.lastPaths[name]; was != path {
		r.log.Info("peer path", "overlay", string(r.mode()), "node", name, "path", string(path), "was", string(was))
	}
	if r.lastPaths == nil {
		r.lastPaths = map[string]Path{}
	}
	setOrDelete(r.lastPaths, name, path)
}

func setOrDelete[V comparable](m map[string]V, k string, v V) {
	var zero V
	if v == zero {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// refresh returns the model for the local subnets after the overlay step
// of a Sync: the device's address is a local subnet the decision before it
// did not see. It decides again with them and keeps the new model when
// the decision is the same (it is but for odd values, a peer claiming
// that address), else none: UpdateNodes then declines until the next
// full pass. Without it, each event after the device appears would need
// the whole list once.
func (r *Reconciler) refresh(local []LocalNet, rep Report, m *model, redo func([]LocalNet) (Report, *model)) *model {
	now, err := r.LocalNets()
	if err != nil {
		return nil
	}
	if slices.Equal(now, local) {
		return m
	}
	again, m2 := redo(now)
	same := maps.EqualFunc(rep.Desired, again.Desired, func(a, b Route) bool {
		return a.Via == b.Via && a.Path == b.Path && a.Node == b.Node && (a.Path == VXLAN || a.LinkIndex == b.LinkIndex)
	})
	if !same || !maps.Equal(rep.Invalid, again.Invalid) || !maps.Equal(rep.Unreachable, again.Unreachable) || !maps.Equal(rep.Paths, again.Paths) {
		return nil
	}
	return m2
}
