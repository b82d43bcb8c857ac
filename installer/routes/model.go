package routes

import (
	"net/netip"
	"slices"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

// entry is one other node as the decider sees it alone (decider.entry).
type entry struct {
	err         string     // a value of its own is invalid: no route at all
	routes      []Route    // its routable subnets (LinkIndex 0 for VXLAN ones)
	underlay    netip.Addr // its VTEP address, when a route goes over VXLAN
	unreachable string     // why some subnets have no path ("" when all do)
	// conflict: refused by a check across nodes (an overlapping subnet, a
	// shared VTEP MAC).
	conflict bool
}

// candidate says whether the node's subnets and MAC take part in the
// checks across nodes.
func (e entry) candidate() bool { return e.err == "" }

// valid says whether its routes are wanted.
func (e entry) valid() bool { return e.err == "" && !e.conflict }

func (e entry) vxlan() bool {
	return slices.ContainsFunc(e.routes, func(r Route) bool { return r.Path == VXLAN })
}

// path is the node's Path in Report.Paths; ok is false for a node without
// one (no podCIDR yet).
func (e entry) path() (p Path, ok bool) {
	switch {
	case !e.valid():
		return Invalid, true
	case e.unreachable != "":
		return Unreachable, true
	case len(e.routes) == 0:
		return "", false
	case e.vxlan():
		return VXLAN, true
	}
	return Direct, true
}

// model is the outcome of desired kept per node, with the indexes an
// event pass needs to change one node without looking at the others: the
// subnets of every candidate node (for overlaps) and their VTEP MACs. An
// event that would involve another node (an overlap, a shared MAC, a
// node already refused for one) or the device is not applied: the caller
// recomputes everything instead.
type model struct {
	self  string
	d     decider
	nodes map[string]entry

	subnets map[netip.Prefix]int // candidates' routed subnets, counted
	lengths map[lengthKey]int    // their prefix lengths, by family, counted
	sorted  []netip.Prefix       // the same subnets in comparePrefix order
	macs    map[overlay.VTEP]int // candidates' VTEP MACs, counted
	own     overlay.VTEP         // this node's, when it has an underlay
	peers   int                  // valid nodes with a route over VXLAN
	paths   map[Path]int         // nodes by path
}

type lengthKey struct {
	v4   bool
	bits int
}

func newModel(self string, d decider, n int) *model {
	m := &model{self: self, d: d, nodes: make(map[string]entry, n), subnets: make(map[netip.Prefix]int, n),
		lengths: map[lengthKey]int{}, macs: map[overlay.VTEP]int{}, paths: map[Path]int{}}
	if d.underlay.IsValid() {
		m.own = overlay.VTEP(overlay.MAC(d.underlay))
	}
	return m
}

// index fills the indexes once rep has been decided.
func (m *model) index(rep Report) {
	m.sorted = make([]netip.Prefix, 0, len(m.nodes))
	for name, e := range m.nodes {
		if _, refused := rep.Invalid[name]; refused && e.err == "" {
			e.conflict = true
			m.nodes[name] = e
		}
		m.add(e, false)
	}
	slices.SortFunc(m.sorted, comparePrefix)
	for _, p := range rep.Paths {
		m.paths[p]++
	}
	m.peers = len(rep.Peers)
}

// add puts e's subnets and MAC into the indexes (keeping sorted in order
// when insert is true).
func (m *model) add(e entry, insert bool) {
	if !e.candidate() {
		return
	}
	for _, r := range e.routes {
		m.subnets[r.Dst]++
		m.lengths[lengthKey{r.Dst.Addr().Is4(), r.Dst.Bits()}]++
		if insert {
			i, _ := slices.BinarySearchFunc(m.sorted, r.Dst, comparePrefix)
			m.sorted = slices.Insert(m.sorted, i, r.Dst)
		} else {
			m.sorted = append(m.sorted, r.Dst)
		}
	}
	if e.underlay.IsValid() {
		m.macs[overlay.VTEP(overlay.MAC(e.underlay))]++
	}
}

// remove takes e's subnets and MAC out of the indexes.
func (m *model) remove(e entry) {
	if !e.candidate() {
		return
	}
	for _, r := range e.routes {
		if m.subnets[r.Dst]--; m.subnets[r.Dst] == 0 {
			delete(m.subnets, r.Dst)
		}
		k := lengthKey{r.Dst.Addr().Is4(), r.Dst.Bits()}
		if m.lengths[k]--; m.lengths[k] == 0 {
			delete(m.lengths, k)
		}
		if i, found := slices.BinarySearchFunc(m.sorted, r.Dst, comparePrefix); found {
			m.sorted = slices.Delete(m.sorted, i, i+1)
		}
	}
	if e.underlay.IsValid() {
		mac := overlay.VTEP(overlay.MAC(e.underlay))
		if m.macs[mac]--; m.macs[mac] == 0 {
			delete(m.macs, mac)
		}
	}
}

// overlaps says whether p overlaps a candidate's subnet: one holding it
// (looked up at each prefix length in use) or one inside it (the first
// subnet at or after p in order).
func (m *model) overlaps(p netip.Prefix) bool {
	for k := range m.lengths {
		if k.v4 == p.Addr().Is4() && k.bits <= p.Bits() {
			if m.subnets[netip.PrefixFrom(p.Addr(), k.bits).Masked()] > 0 {
				return true
			}
		}
	}
	i, _ := slices.BinarySearchFunc(m.sorted, p, comparePrefix)
	return i < len(m.sorted) && p.Contains(m.sorted[i].Addr())
}

// wantsDevice says whether the overlay device is wanted with peers VXLAN
// peers.
func (m *model) wantsDevice(peers int) bool {
	return m.d.underlay.IsValid() && (m.d.mode == overlay.VXLAN || peers > 0)
}

// apply changes node name to n (nil: removed) in the model. It returns the
// node's entries before and after (had, present: whether it existed), or
// ok false, leaving the model as it was, when the change reaches beyond
// the node: it was refused for a conflict with another, its new subnets
// overlap another's or its VTEP MAC is taken, or the device would come or
// go.
func (m *model) apply(name string, n *nodes.Node) (old, nw entry, had, present, ok bool) {
	old, had = m.nodes[name]
	if had && old.conflict {
		return old, nw, had, false, false
	}
	present = n != nil
	if present {
		nw = m.d.entry(*n)
	}
	if had {
		m.remove(old)
	}
	undo := func() (entry, entry, bool, bool, bool) {
		if had {
			m.add(old, true)
		}
		return old, nw, had, present, false
	}
	if present && nw.candidate() {
		for _, r := range nw.routes {
			if m.overlaps(r.Dst) {
				return undo()
			}
		}
		// Two subnets of one node never overlap (one per family).
		if nw.underlay.IsValid() {
			mac := overlay.VTEP(overlay.MAC(nw.underlay))
			if m.macs[mac] > 0 || (m.d.underlay.IsValid() && mac == m.own) {
				return undo()
			}
		}
	}
	peers := m.peers
	if had && old.valid() && old.vxlan() {
		peers--
	}
	if present && nw.valid() && nw.vxlan() {
		peers++
	}
	if m.wantsDevice(peers) != m.wantsDevice(m.peers) {
		return undo()
	}
	m.peers = peers
	if p, ok := old.path(); had && ok {
		m.paths[p]--
	}
	if present {
		if p, ok := nw.path(); ok {
			m.paths[p]++
		}
		m.add(nw, true)
		m.nodes[name] = nw
	} else {
		delete(m.nodes, name)
	}
	return old, nw, had, present, true
}
