package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"golang.org/x/sys/unix"
)

// Update is the pass for a node event. Where Sync reads every minicni route
// and overlay entry back from the kernel, Update trusts that the kernel
// still holds what the last pass (a Sync or an Update that finished
// without an error) left there and sends only the difference between that
// and the desired set: one address dump for the local subnets, then one
// request per route, FDB or neighbour entry that changes. A node added,
// changed or removed thus costs the same few requests in a cluster of 100
// nodes or of 5,000. It falls back to a Sync when it has nothing to trust
// (the first pass, or the last one failed) and when the VXLAN device must
// be created, removed or recreated (its first or last peer, a new
// underlay address or pod subnet). What it cannot see is drift (a route
// someone deleted, an uplink whose MTU changed): the agent's periodic
// resync is a Sync, which repairs it.
func (r *Reconciler) Update(self string, list []nodes.Node) (Stats, error) {
	if r.mem == nil {
		return r.Sync(self, list)
	}
	local, err := r.LocalNets()
	if err != nil {
		r.mem = nil
		return Stats{}, err
	}
	rep, m := desired(self, list, local, r.Overlay.Mode)
	dev, want := r.wantDevice(rep)
	if want != (r.mem.dev.Name != "") || (want && !sameDevice(dev, r.mem.dev)) {
		return r.sync(local, rep, m, r.redo(self, list))
	}
	mem := r.mem
	r.mem = nil // until this pass has succeeded
	r.report(rep)
	st := newStats(rep)

	var errs []error
	entries := overlay.EntriesOf(rep.Peers)
	if want {
		setIndex(rep, mem.devIndex)
		done, err := overlay.UpdatePeers(r.h, mem.devIndex, mem.entries, entries)
		for _, c := range done {
			st.OverlayChanges++
			r.log.Info("VXLAN: " + c)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}

	var gone, changed []netip.Prefix
	for dst := range mem.routes {
		if _, ok := rep.Desired[dst]; !ok {
			gone = append(gone, dst)
		}
	}
	for dst, want := range rep.Desired {
		if have, ok := mem.routes[dst]; !ok || !sameRoute(have, want) {
			changed = append(changed, dst)
		}
	}
	for _, dst := range slices.SortedFunc(slices.Values(gone), comparePrefix) {
		have := mem.routes[dst]
		rt := kernelRoute(have)
		if err := r.h.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", dst, have.Via, err))
			continue
		}
		st.Changes++
		r.log.Info("deleted route", "dst", dst.String(), "via", have.Via.String(), "reason", "no node has this podCIDR")
	}
	st.Programmed = len(rep.Desired)
	for _, dst := range slices.SortedFunc(slices.Values(changed), comparePrefix) {
		want := rep.Desired[dst]
		if err := r.replace(want); err != nil {
			errs = append(errs, err)
			st.Programmed--
			continue
		}
		st.Changes++
		if have, ok := mem.routes[dst]; ok {
			r.log.Info("replaced route", "dst", dst.String(), "via", want.Via.String(), "was", have.Via.String(), "node", want.Node, "path", string(want.Path))
		} else {
			r.log.Info("added route", "dst", dst.String(), "via", want.Via.String(), "node", want.Node, "path", string(want.Path))
		}
	}
	if len(errs) > 0 {
		return st, errors.Join(errs...) // no memory: the next pass is a Sync
	}
	mem.routes, mem.entries, mem.model = rep.Desired, entries, m
	r.mem = mem
	return st, nil
}

// remember records what a Sync that finished without an error left in the
// kernel: rep's routes (each with its link index), the device and its
// entries.
func (r *Reconciler) remember(rep Report, dev ensured, m *model) {
	r.mem = &memory{routes: rep.Desired, dev: dev.dev, devIndex: dev.index, entries: overlay.EntriesOf(rep.Peers), model: m}
	if dev.dev.Name == "" {
		r.mem.entries = overlay.Entries{}
	}
}

// sameDevice compares what Update may not change without a Sync: every
// setting but the MTU, which only Sync reads from the uplink.
func sameDevice(a, b overlay.Device) bool {
	return a.Name == b.Name && a.VNI == b.VNI && a.Port == b.Port && a.Local == b.Local && slices.Equal(a.Addrs, b.Addrs)
}

// sameRoute compares what the kernel holds of a route.
func sameRoute(a, b Route) bool {
	return a.Via == b.Via && a.LinkIndex == b.LinkIndex && a.Path == b.Path
}
