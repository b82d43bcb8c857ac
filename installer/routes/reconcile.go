package routes

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Protocol is minicni's route protocol number (rtm_protocol), 109: ASCII 'm'.
// The kernel's rtnetlink.h and iproute2's rt_protos assign 0-18, 42, 99 and
// 186-192, and 109 is in the unassigned range and used by no routing daemon
// we know of (Calico uses 80). `ip route show proto 109` lists minicni's
// routes; an /etc/iproute2/rt_protos.d entry "109 minicni" names them.
const Protocol netlink.RouteProtocol = 109

// Stats describe the state after a Sync.
type Stats struct {
	Programmed  int // minicni routes in the kernel that are desired
	Unreachable int // nodes not (fully) routed: no path to a pod subnet
	Invalid     int // nodes ignored for an invalid value
	Changes     int // routes added, replaced or deleted by this Sync
	// Peers counts the other nodes (with a podCIDR, or invalid) by path.
	Peers map[Path]int
	// OverlayChanges counts what this Sync changed on the overlay: the
	// device (created, deleted, set), its addresses, FDB and neighbour
	// entries.
	OverlayChanges int
}

// Reconciler applies Desired to the kernel's main routing table and the
// overlay device in one network namespace. It is not safe for concurrent
// use: one goroutine (the agent's loop) owns it, and with it the memory of
// what was last reported, so that each change is logged once and a resync
// that changes nothing logs nothing.
type Reconciler struct {
	// Overlay is the overlay's settings; the zero value is overlay.None
	// (direct routes only). Set it before the first Sync.
	Overlay overlay.Config

	h   overlay.Netlink
	log *slog.Logger

	lastUnreachable map[string]string
	lastInvalid     map[string]string
	lastPaths       map[string]Path

	// mem is what the last Sync or Update left in the kernel, when it
	// finished without an error; nil otherwise (then Update does a Sync).
	mem *memory
}

// memory is the kernel state the reconciler made, as far as it knows: the
// routes, the device's wanted settings and its entries.
type memory struct {
	routes   map[netip.Prefix]Route // with LinkIndex filled in
	dev      overlay.Device         // Name "" when there is no device
	devIndex int
	entries  overlay.Entries // the device's FDB and neighbour entries
	model    *model          // the desired set per node, for UpdateNodes (nil: none)
}

// New returns a reconciler acting through h, without overlay: a handle from
// netlinksafe.NewHandleAt works on that namespace from any goroutine;
// netlinksafe.NewHandle() on the namespace of the thread calling it (all of
// a process started by `ip netns exec`). log may be nil.
func New(h overlay.Netlink, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Reconciler{h: h, log: log}
}

// Sync makes the kernel's minicni routes and overlay device equal to the
// desired set for self and list: first the device (or its removal), then
// its FDB and neighbour entries, then the routes. It reads what the kernel
// holds (the routes with Protocol, the device, its addresses and entries),
// so it repairs any drift; its cost grows with the cluster (one dump of
// every minicni route and entry). It attempts every step even when one
// fails and returns the failures joined. Update is the cheaper pass for a
// node event.
func (r *Reconciler) Sync(self string, list []nodes.Node) (Stats, error) {
	r.mem = nil
	local, err := r.LocalNets()
	if err != nil {
		return Stats{}, err
	}
	rep, m := desired(self, list, local, r.Overlay.Mode)
	return r.sync(local, rep, m, r.redo(self, list))
}

func newStats(rep Report) Stats {
	st := Stats{Unreachable: len(rep.Unreachable), Invalid: len(rep.Invalid), Peers: map[Path]int{}}
	for _, p := range rep.Paths {
		st.Peers[p]++
	}
	return st
}

// sync is Sync once the local subnets and the desired set are known.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
// redo decides again from the same list with other local subnets.
func (r *Reconciler) redo(self string, list []nodes.Node) func([]LocalNet) (Report, *model) {
	return func(local []LocalNet) (Report, *model) { return desired(self, list, local, r.Overlay.Mode) }
}

func (r *Reconciler) sync(local []LocalNet, rep Report, m *model, redo func([]LocalNet) (Report, *model)) (Stats, error) {
	r.mem = nil
	r.report(rep)
	st := newStats(rep)

	var errs []error
	changes, dev, err := r.syncOverlay(local, rep)
	st.OverlayChanges = changes
	if err != nil {
		errs = append(errs, err)
	} else if dev.changed && m != nil {
		m = r.refresh(local, rep, m, redo)
	}

	current, err := r.Current()
	if err != nil {
		return st, errors.Join(append(errs, err)...)
	}
	done := map[netip.Prefix]bool{}
	for _, rt := range current {
		dst, via := prefixOf(rt.Dst), addrOf(rt.Gw)
		want, ok := rep.Desired[dst]
		switch {
		case !ok || done[dst]:
			// The node is gone, its subnet changed, or this is a duplicate
			// (another metric) of a route already kept.
			if err := r.h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s via %s: %w", dst, via, err))
				continue
			}
			st.Changes++
			r.log.Info("deleted route", "dst", dst.String(), "via", via.String(), "reason", "no node has this podCIDR")
		case want.LinkIndex == 0:
			done[dst] = true // a VXLAN route without a device: an error above says why
		case via != want.Via || rt.LinkIndex != want.LinkIndex || onlink(rt) != (want.Path == VXLAN):
			if err := r.replace(want); err != nil {
				errs = append(errs, err)
				continue
			}
			done[dst] = true
			st.Changes++
			st.Programmed++
			r.log.Info("replaced route", "dst", dst.String(), "via", want.Via.String(), "was", via.String(), "node", want.Node, "path", string(want.Path))
		default:
			done[dst] = true
			st.Programmed++
		}
	}
	for _, dst := range slices.SortedFunc(maps.Keys(rep.Desired), comparePrefix) {
		want := rep.Desired[dst]
		if done[dst] || want.LinkIndex == 0 {
			continue
		}
		if err := r.replace(want); err != nil {
			errs = append(errs, err)
			continue
		}
		st.Changes++
		st.Programmed++
		r.log.Info("added route", "dst", dst.String(), "via", want.Via.String(), "node", want.Node, "path", string(want.Path))
	}
	if len(errs) == 0 {
		r.remember(rep, dev, m)
	}
	return st, errors.Join(errs...)
}

// syncOverlay brings the overlay device to what rep needs and fills in the
// device's index in rep's VXLAN routes. The device exists while a peer goes
// through it, or always in vxlan mode, as long as this node has an underlay
// address; otherwise minicni's devices are removed, and with them whatever
// routes and entries they carried. A device of another name carrying
// overlay.Alias (an earlier --vxlan-device) is removed too.
// It returns the device made (Name "" when none) with its index.
func (r *Reconciler) syncOverlay(local []LocalNet, rep Report) (int, ensured, error) {
	dev, want := r.wantDevice(rep)
	changes := 0
	removed, err := overlay.Remove(r.h, dev.Name)
	for _, name := range removed {
		changes++
		r.log.Info("deleted VXLAN device", "device", name)
	}
	if err != nil || !want {
		return changes, ensured{changed: changes > 0}, err
	}
	for _, l := range local {
		if l.Addr == rep.Underlay {
			link, err := r.h.LinkByIndex(l.LinkIndex)
			if err != nil {
				return changes, ensured{}, fmt.Errorf("link of the underlay address %s: %w", rep.Underlay, err)
			}
			dev.MTU = link.Attrs().MTU - overlay.Overhead(rep.Underlay)
		}
	}
	index, done, err := overlay.Ensure(r.h, dev)
	for _, c := range done {
		changes++
		r.log.Info("VXLAN: " + c)
	}
	if err != nil {
		return changes, ensured{}, err
	}
	setIndex(rep, index)
	ens := ensured{dev: dev, index: index, changed: changes > 0}
	done, err = overlay.SyncPeers(r.h, index, rep.Peers)
	for _, c := range done {
		changes++
		r.log.Info("VXLAN: " + c)
	}
	return changes, ens, err
}

// wantDevice is the device rep needs, but for its MTU (which Sync reads
// from the underlay's link); want is false when none is needed.
func (r *Reconciler) wantDevice(rep Report) (dev overlay.Device, want bool) {
	if !rep.Underlay.IsValid() || (r.Overlay.Mode != overlay.VXLAN && len(rep.Peers) == 0) {
		return overlay.Device{}, false
	}
	return overlay.Device{Name: r.Overlay.Device, VNI: r.Overlay.VNI, Port: r.Overlay.Port, Local: rep.Underlay,
		Addrs: overlay.DeviceAddrs(rep.OwnPodCIDRs)}, true
}

// ensured is the device a pass made, and its index.
type ensured struct {
	dev   overlay.Device
	index int
	// changed: a device was created, deleted or set (its addresses too),
	// so the local subnets may have changed.
	changed bool
}

// setIndex gives rep's VXLAN routes the device's index.
func setIndex(rep Report, index int) {
	for dst, rt := range rep.Desired {
		if rt.Path == VXLAN {
			rt.LinkIndex = index
			rep.Desired[dst] = rt
		}
	}
}

func onlink(rt netlink.Route) bool { return rt.Flags&int(netlink.FLAG_ONLINK) != 0 }

func (r *Reconciler) replace(want Route) error {
	if err := r.h.RouteReplace(kernelRoute(want)); err != nil {
		return fmt.Errorf("route %s (node %q): %w", want, want.Node, err)
	}
	return nil
}

// kernelRoute is the netlink form of a route.
func kernelRoute(want Route) *netlink.Route {
	rt := &netlink.Route{
		Dst:       ipNet(want.Dst),
		Gw:        net.IP(want.Via.AsSlice()),
		LinkIndex: want.LinkIndex,
		Protocol:  Protocol,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if want.Path == VXLAN {
		rt.Flags = int(netlink.FLAG_ONLINK)
	}
	return rt
}

// report logs each node whose path, reachability or validity changed since
// the last Sync: one line per change, none per resync, and then one status
// line naming the nodes on each path.
func (r *Reconciler) report(rep Report) {
	unreachable := "node unreachable, not routed"
	if !r.Overlay.Enabled() {
		unreachable = "node unreachable without an overlay, not routed"
	}
	for _, name := range slices.Sorted(maps.Keys(rep.Invalid)) {
		if reason := rep.Invalid[name]; r.lastInvalid[name] != reason {
			r.log.Warn("ignoring node: invalid value", "node", name, "reason", reason)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rep.Unreachable)) {
		if reason := rep.Unreachable[name]; r.lastUnreachable[name] != reason {
			r.log.Warn(unreachable, "node", name, "reason", reason)
		}
	}
	for name := range r.lastInvalid {
		if _, still := rep.Invalid[name]; !still {
			r.log.Info("node no longer invalid (or gone)", "node", name)
		}
	}
	for name := range r.lastUnreachable {
		if _, still := rep.Unreachable[name]; !still {
			r.log.Info("node no longer unreachable (or gone)", "node", name)
		}
	}
	if !maps.Equal(r.lastPaths, rep.Paths) {
		attrs := []any{"overlay", string(r.mode())}
		for _, p := range Paths {
			var names []string
			for name, q := range rep.Paths {
				if q == p {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			attrs = append(attrs, string(p), strings.Join(names, ","))
		}
		r.log.Info("peer paths", attrs...)
	}
	r.lastInvalid, r.lastUnreachable, r.lastPaths = rep.Invalid, rep.Unreachable, rep.Paths
}

func (r *Reconciler) mode() overlay.Mode {
	if r.Overlay.Mode == "" {
		return overlay.None
	}
	return r.Overlay.Mode
}

// Current lists the main table's routes carrying Protocol, both families.
func (r *Reconciler) Current() ([]netlink.Route, error) {
	return ListOwn(r.h)
}

// ListOwn lists the main table's routes carrying Protocol, IPv4 and IPv6.
func ListOwn(h overlay.Netlink) ([]netlink.Route, error) {
	filter := &netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes with protocol %d: %w", Protocol, err)
	}
	return routes, nil
}

// DeleteOwn deletes every main-table route carrying Protocol (uninstall).
// It returns the routes deleted.
func DeleteOwn(h overlay.Netlink) ([]string, error) {
	routes, err := ListOwn(h)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, rt := range routes {
		desc := fmt.Sprintf("%s via %s", prefixOf(rt.Dst), addrOf(rt.Gw))
		if err := h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", desc, err))
			continue
		}
		deleted = append(deleted, desc)
	}
	return deleted, errors.Join(errs...)
}

// LocalNets lists the subnets of the namespace's interface addresses, except
// loopback, link-local and host-scope ones.
func (r *Reconciler) LocalNets() ([]LocalNet, error) {
	var addrs []netlink.Addr
	var err error
	for range 5 { // a dump interrupted by a concurrent change is retried
		addrs, err = r.h.AddrList(nil, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []LocalNet
	for _, a := range addrs {
		if a.IPNet == nil || a.Scope == int(netlink.SCOPE_HOST) || a.Scope == int(netlink.SCOPE_LINK) {
			continue
		}
		ip := addrOf(a.IP)
		if !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, LocalNet{Prefix: netip.PrefixFrom(ip, ones).Masked(), Addr: ip, LinkIndex: a.LinkIndex})
	}
	return out, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a := addrOf(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
