// Package routes keeps the node's routes to the other nodes' pod subnets.
// For each other node and each of its pod subnets it chooses a path: direct,
// `<podCIDR> via <node InternalIP>` when that IP is on a subnet of a local
// interface, or through the VXLAN overlay (package overlay), `<podCIDR> via
// <next hop> dev <vxlan device> onlink`, as the overlay mode allows. It is
// level-triggered: each Sync computes the whole desired set from the node
// list and the local interfaces, reads the kernel's routes carrying
// minicni's route protocol number and the overlay device's entries, and
// applies the difference. Because the kernel, not memory, says what minicni
// installed, an agent restarted after a node was deleted still removes that
// node's route, and no route without the protocol number is ever deleted.
// Update, the pass after a node event, computes the same desired set but
// applies its difference from what the last pass left (which the
// reconciler remembers) without reading the kernel back, so its netlink
// requests follow the change, not the number of nodes.
package routes

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

// Path is how another node's pod subnets are reached.
type Path string

const (
	// Direct: via the node's InternalIP, on a subnet of a local interface.
	Direct Path = "direct"
	// VXLAN: through the overlay device.
	VXLAN Path = "vxlan"
	// Unreachable: neither is possible (for one pod subnet at least).
	Unreachable Path = "unreachable"
	// Invalid: the node has a value that failed validation or conflicts.
	Invalid Path = "invalid"
)

// Paths lists every Path, in the order metrics and logs show them.
var Paths = []Path{Direct, VXLAN, Unreachable, Invalid}

// Route is one wanted route to another node's pod subnet.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	// LinkIndex is, for a direct route, the interface whose subnet holds
	// Via; for a VXLAN route the device's, which Desired leaves 0 and Sync
	// fills in.
	LinkIndex int
	Node      string // whose pod subnet Dst is
	Path      Path   // Direct or VXLAN
}

func (r Route) String() string {
	if r.Path == VXLAN {
		return r.Dst.String() + " via " + r.Via.String() + " vxlan"
	}
	return r.Dst.String() + " via " + r.Via.String()
}

// LocalNet is a subnet of a local interface address.
type LocalNet struct {
	Prefix    netip.Prefix
	Addr      netip.Addr // the local address itself
	LinkIndex int
}

// Report is the outcome of Desired: the routes and overlay peers wanted, and
// the nodes that get no route (or not all of theirs), with the reason.
type Report struct {
	Desired map[netip.Prefix]Route
	// Underlay is this node's VXLAN underlay address (overlay.Underlay of
	// its InternalIPs); invalid when the overlay is off or none of its
	// InternalIPs is a local address.
	Underlay netip.Addr
	// Peers are the nodes reached through the overlay, by name.
	Peers []overlay.Peer
	// OwnPodCIDRs are this node's pod subnets, when valid.
	OwnPodCIDRs []netip.Prefix
	// Paths is each other node's path (nodes without a podCIDR yet have
	// none): Invalid, else Unreachable when one of its pod subnets cannot
	// be routed, else VXLAN when one goes through the overlay, else Direct.
	Paths map[string]Path
	// Unreachable nodes have a valid pod CIDR but no path to it.
	Unreachable map[string]string
	// Invalid nodes have a value that failed validation, an InternalIP of
	// this node's, or claim a subnet that overlaps this node's, a local
	// interface's or another node's (or a VTEP MAC another node has).
	Invalid map[string]string
}

// Desired computes the routes this node (self) wants from every node's
// values, which are untrusted: each is validated (nodes.Parse) and a node
// with any invalid value gets no route at all. mode says which paths may be
// used (the zero Mode is overlay.None).
func Desired(self string, list []nodes.Node, local []LocalNet, mode overlay.Mode) Report {
	rep, _ := desired(self, list, local, mode)
	return rep
}

// desired is Desired, with the model an event pass updates node by node
// (nil when the list names a node twice).
func desired(self string, list []nodes.Node, local []LocalNet, mode overlay.Mode) (Report, *model) {
	rep := Report{Desired: make(map[netip.Prefix]Route, len(list)), Paths: make(map[string]Path, len(list)),
		Unreachable: map[string]string{}, Invalid: map[string]string{}}
	d := decider{mode: mode, local: local}
	for _, n := range list {
		if n.Name == self {
			if p, err := nodes.Parse(n); err == nil {
				d.own = p
			}
		}
	}
	rep.OwnPodCIDRs = d.own.PodCIDRs
	if mode == overlay.Auto || mode == overlay.VXLAN {
		rep.Underlay = overlay.Underlay(d.own.InternalIPs, d.isLocal)
	}
	d.underlay = rep.Underlay

	m := newModel(self, d, len(list))
	wanted := make([]Route, 0, len(list))
	underlays := map[string]netip.Addr{} // node -> VTEP address, for VXLAN peers
	for _, n := range list {
		if n.Name == self {
			continue
		}
		e := d.entry(n)
		if m != nil {
			if _, twice := m.nodes[n.Name]; twice {
				m = nil
			} else {
				m.nodes[n.Name] = e
			}
		}
		if e.err != "" {
			rep.Invalid[n.Name] = e.err
			continue
		}
		if e.unreachable != "" {
			rep.Unreachable[n.Name] = e.unreachable
		}
		if e.underlay.IsValid() {
			underlays[n.Name] = e.underlay
		}
		wanted = append(wanted, e.routes...)
	}
	rep.refuseOverlaps(wanted)
	rep.refuseSharedMACs(underlays)
	rep.keep(wanted, underlays)
	rep.setPaths()
	if m != nil {
		m.index(rep)
	}
	return rep, m
}

// refuseOverlaps marks invalid both nodes of every pair claiming
// overlapping subnets: either choice sends some pod's traffic to the wrong
// node. Two prefixes overlap only when one holds the other, so one sort by
// address (a prefix before the longer ones it holds) and a sweep with the
// chain of prefixes holding the current one find every overlapping node in
// O(n log n), not by comparing every pair: a cluster of 5,000 nodes is 12.5
// million pairs.
func (rep *Report) refuseOverlaps(wanted []Route) {
	order := make([]int, len(wanted))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return comparePrefix(wanted[i].Dst, wanted[j].Dst) })
	mark := func(a, b Route) {
		rep.Invalid[a.Node] = fmt.Sprintf("podCIDR %s overlaps node %q's %s", a.Dst, b.Node, b.Dst)
	}
	var open []Route // the chain of prefixes holding the current one, shortest first
	for _, i := range order {
		r := wanted[i]
		for len(open) > 0 && !open[len(open)-1].Dst.Contains(r.Dst.Addr()) {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			// r overlaps every prefix in open; each of those is marked
			// already (pushed onto another or, at the bottom, marked by
			// its first subnet, the next in order), so the innermost one
			// is enough and the sweep stays linear.
			o := open[len(open)-1]
			mark(r, o)
			mark(o, r)
		}
		open = append(open, r)
	}
}

// refuseSharedMACs marks invalid the VXLAN peers whose VTEP MAC is this
// node's or another peer's (one underlay address, or an IPv6 hash
// collision): the device could reach only one of them. Peers already
// refused for their subnets claim no MAC. Only the nodes of a shared MAC
// are sorted (by name: the first names the last, the others the first).
func (rep *Report) refuseSharedMACs(underlays map[string]netip.Addr) {
	var own overlay.VTEP
	if rep.Underlay.IsValid() {
		own = overlay.VTEP(overlay.MAC(rep.Underlay))
	}
	byMAC := make(map[overlay.VTEP][]string, len(underlays))
	var shared []overlay.VTEP
	for name, u := range underlays {
		if _, bad := rep.Invalid[name]; bad {
			continue
		}
		mac := overlay.VTEP(overlay.MAC(u))
		byMAC[mac] = append(byMAC[mac], name)
		mine := rep.Underlay.IsValid() && mac == own
		if n := len(byMAC[mac]); (mine && n == 1) || (!mine && n == 2) {
			shared = append(shared, mac)
		}
	}
	for _, mac := range shared {
		names := byMAC[mac]
		slices.Sort(names)
		if rep.Underlay.IsValid() && mac == own { // this node's own MAC
			for _, name := range names {
				rep.Invalid[name] = fmt.Sprintf("VTEP MAC %s of InternalIP %s is this node's", mac, underlays[name])
			}
			continue
		}
		first, last := names[0], names[len(names)-1]
		for _, name := range names[1:] {
			rep.Invalid[name] = fmt.Sprintf("VTEP MAC %s of InternalIP %s is also node %q's", mac, underlays[name], first)
		}
		rep.Invalid[first] = fmt.Sprintf("VTEP MAC %s of InternalIP %s is also node %q's", mac, underlays[first], last)
	}
}

// keep puts the wanted routes of valid nodes into rep.Desired and gathers
// the VXLAN peers' next hops, in node order.
func (rep *Report) keep(wanted []Route, underlays map[string]netip.Addr) {
	peers := map[string]*overlay.Peer{}
	for _, r := range wanted {
		if _, bad := rep.Invalid[r.Node]; bad {
			continue
		}
		rep.Desired[r.Dst] = r
		if r.Path != VXLAN {
			continue
		}
		p := peers[r.Node]
		if p == nil {
			u := underlays[r.Node]
			p = &overlay.Peer{Node: r.Node, Underlay: u, MAC: overlay.MAC(u)}
			peers[r.Node] = p
		}
		p.NextHops = append(p.NextHops, r.Via)
	}
	for _, name := range slices.Sorted(maps.Keys(peers)) {
		rep.Peers = append(rep.Peers, *peers[name])
	}
}

// setPaths gives each node its path: invalid, unreachable, else the path of
// its routes (VXLAN when any of its subnets goes over the overlay).
func (rep *Report) setPaths() {
	for name := range rep.Invalid {
		rep.Paths[name] = Invalid
		delete(rep.Unreachable, name)
	}
	for name := range rep.Unreachable {
		rep.Paths[name] = Unreachable
	}
	for _, r := range rep.Desired {
		if _, set := rep.Paths[r.Node]; !set || rep.Paths[r.Node] == Direct {
			rep.Paths[r.Node] = r.Path
		}
	}
}

// decider chooses the path to each pod subnet of another node.
type decider struct {
	mode     overlay.Mode
	own      nodes.Parsed // this node, when its values are valid
	local    []LocalNet
	underlay netip.Addr // this node's VXLAN underlay address, if any
}

func (d decider) isLocal(a netip.Addr) bool {
	return slices.ContainsFunc(d.local, func(l LocalNet) bool { return l.Addr == a })
}

// entry is what one other node asks of this one, on its own: its
// routable subnets or why it has none. The checks across nodes
// (overlapping subnets, shared VTEP MACs) come after.
func (d decider) entry(n nodes.Node) entry {
	p, err := nodes.Parse(n)
	if err != nil {
		return entry{err: err.Error()}
	}
	routes, underlay, unreachable, err := d.node(p)
	if err != nil {
		return entry{err: err.Error()}
	}
	return entry{routes: routes, underlay: underlay, unreachable: strings.Join(unreachable, "; ")}
}

// node plans the routes to p's pod subnets. unreachable says, per subnet
// without a path, why (not the node's fault); err is a value no node may
// have. underlay is p's VTEP address when a route goes through the overlay.
func (d decider) node(p nodes.Parsed) (routes []Route, underlay netip.Addr, unreachable []string, err error) {
	for _, ip := range p.InternalIPs {
		if d.isLocal(ip) || slices.Contains(d.own.InternalIPs, ip) {
			return nil, netip.Addr{}, nil, fmt.Errorf("InternalIP %s is an address of this node", ip)
		}
	}
	for _, pod := range p.PodCIDRs {
		for _, o := range d.own.PodCIDRs {
			if o.Overlaps(pod) {
				return nil, netip.Addr{}, nil, fmt.Errorf("podCIDR %s overlaps this node's podCIDR %s", pod, o)
			}
		}
		for _, l := range d.local {
			if l.Prefix.Overlaps(pod) {
				return nil, netip.Addr{}, nil, fmt.Errorf("podCIDR %s overlaps local subnet %s", pod, l.Prefix)
			}
		}
		r, why := d.route(p, pod)
		switch {
		case why != "":
			unreachable = append(unreachable, why)
		case r.Path == VXLAN:
			underlay = first(p.InternalIPs, d.underlay.Is4())
			fallthrough
		default:
			routes = append(routes, r)
		}
	}
	return routes, underlay, unreachable, nil
}

// route chooses the path to pod, one of p's subnets: direct when the mode
// allows it and p's first InternalIP of pod's family is on a local subnet
// (the longest prefix holding it gives the interface), else VXLAN when the
// mode allows it and both nodes have an underlay address of one family. A
// non-empty why says why there is neither.
func (d decider) route(p nodes.Parsed, pod netip.Prefix) (_ Route, why string) {
	v4 := pod.Addr().Is4()
	var direct string // why not direct
	if d.mode != overlay.VXLAN {
		via := first(p.InternalIPs, v4)
		best := -1
		for i, l := range d.local {
			if via.IsValid() && l.Prefix.Contains(via) && (best < 0 || l.Prefix.Bits() > d.local[best].Prefix.Bits()) {
				best = i
			}
		}
		switch {
		case best >= 0:
			return Route{Dst: pod, Via: via, LinkIndex: d.local[best].LinkIndex, Node: p.Name, Path: Direct}, ""
		case !via.IsValid():
			direct = fmt.Sprintf("no %s InternalIP for podCIDR %s", family(v4), pod)
		default:
			direct = fmt.Sprintf("InternalIP %s is not on a subnet of a local interface", via)
		}
	}
	if d.mode != overlay.Auto && d.mode != overlay.VXLAN {
		return Route{}, direct
	}
	var vxlan string // why not VXLAN
	switch {
	case !d.underlay.IsValid():
		vxlan = "no VXLAN: none of this node's InternalIPs is a local address to send it from"
	case !first(p.InternalIPs, d.underlay.Is4()).IsValid():
		vxlan = fmt.Sprintf("no VXLAN for podCIDR %s: no %s InternalIP for the %s underlay", pod, family(d.underlay.Is4()), family(d.underlay.Is4()))
	default:
		return Route{Dst: pod, Via: overlay.NextHop(pod), Node: p.Name, Path: VXLAN}, ""
	}
	if direct != "" {
		return Route{}, direct + "; " + vxlan
	}
	return Route{}, vxlan
}

// first returns the first of ips of the family (IPv4 when v4), or the zero
// Addr.
func first(ips []netip.Addr, v4 bool) netip.Addr {
	for _, a := range ips {
		if a.Is4() == v4 {
			return a
		}
	}
	return netip.Addr{}
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}
