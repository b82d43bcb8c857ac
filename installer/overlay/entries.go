package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Entries are the FDB and permanent neighbour entries the device holds for
// its peers (SyncPeers' wanted set).
type Entries struct {
	FDB   map[VTEP]Target     // VTEP MAC -> the peer's underlay address
	Neigh map[netip.Addr]VTEP // next hop -> VTEP MAC
}

// VTEP is a VTEP MAC (MAC's value) as a map key.
type VTEP [6]byte

// HardwareAddr is the MAC in net's form.
func (v VTEP) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(v[:]) }

func (v VTEP) String() string { return v.HardwareAddr().String() }

// Target is where an FDB entry sends a MAC, and for which node.
type Target struct {
	Underlay netip.Addr
	Node     string
}

// EntriesOf is the entries peers need: per peer one FDB entry and one
// neighbour entry per next hop.
func EntriesOf(peers []Peer) Entries {
	e := Entries{FDB: make(map[VTEP]Target, len(peers)), Neigh: make(map[netip.Addr]VTEP, len(peers))}
	for _, p := range peers {
		v := VTEP(p.MAC)
		e.FDB[v] = Target{Underlay: p.Underlay, Node: p.Node}
		for _, nh := range p.NextHops {
			e.Neigh[nh] = v
		}
	}
	return e
}

// UpdatePeers changes the device's entries from have, what the device is
// known to hold (SyncPeers or an earlier UpdatePeers made it so), to want:
// it deletes the entries of have that want has not (or has differently)
// and sets the new or different ones, without listing the device's
// entries. Its requests are one per entry that changes, whatever the number
// of peers, and only the changes are sorted (for the log's order). It
// returns one description per change.
// It stays one function: its four passes share the two maps and the
// results; split, each would only pass them on.
func UpdatePeers(h Netlink, index int, have, want Entries) ([]string, error) {
	var changes []string
	var errs []error
	var goneFDB, newFDB []VTEP
	for mac, old := range have.FDB {
		if t, ok := want.FDB[mac]; !ok || t.Underlay != old.Underlay {
			goneFDB = append(goneFDB, mac)
		}
	}
	for mac, t := range want.FDB {
		if old, ok := have.FDB[mac]; !ok || old.Underlay != t.Underlay {
			newFDB = append(newFDB, mac)
		}
	}
	var goneNeigh, newNeigh []netip.Addr
	for nh := range have.Neigh {
		if _, ok := want.Neigh[nh]; !ok {
			goneNeigh = append(goneNeigh, nh) // one with another MAC is replaced below
		}
	}
	for nh, mac := range want.Neigh {
		if old, ok := have.Neigh[nh]; !ok || old != mac {
			newNeigh = append(newNeigh, nh)
		}
	}
	byMAC := func(a, b VTEP) int { return bytes.Compare(a[:], b[:]) }
	slices.SortFunc(goneFDB, byMAC)
	slices.SortFunc(newFDB, byMAC)
	slices.SortFunc(goneNeigh, netip.Addr.Compare)
	slices.SortFunc(newNeigh, netip.Addr.Compare)

	for _, mac := range goneFDB {
		old := have.FDB[mac]
		e := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(old.Underlay.AsSlice()), HardwareAddr: mac.HardwareAddr()}
		if err := h.NeighDel(e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete FDB entry %s dst %s: %w", mac, old.Underlay, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted FDB entry %s dst %s", mac, old.Underlay))
	}
	for _, nh := range goneNeigh {
		e := &netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, IP: net.IP(nh.AsSlice())}
		if err := h.NeighDel(e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s: %w", nh, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted neighbour %s lladdr %s", nh, have.Neigh[nh]))
	}
	for _, mac := range newFDB {
		t := want.FDB[mac]
		e := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(t.Underlay.AsSlice()), HardwareAddr: mac.HardwareAddr()}
		if err := h.NeighSet(e); err != nil {
			errs = append(errs, fmt.Errorf("FDB entry %s dst %s (node %q): %w", mac, t.Underlay, t.Node, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("added FDB entry %s dst %s node %s", mac, t.Underlay, t.Node))
	}
	for _, nh := range newNeigh {
		mac := want.Neigh[nh]
		node := want.FDB[mac].Node
		e := &netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, IP: net.IP(nh.AsSlice()), HardwareAddr: mac.HardwareAddr()}
		if err := h.NeighSet(e); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %s lladdr %s (node %q): %w", nh, mac, node, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("set neighbour %s lladdr %s node %s", nh, mac, node))
	}
	return changes, errors.Join(errs...)
}
