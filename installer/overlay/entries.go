package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Entries are the FDB and permanent neighbour entries the device holds for
// its peers (SyncPeers' wanted set).
type Entries struct {
	FDB   map[string]Target               // VTEP MAC (text) -> the peer's underlay address
	Neigh map[netip.Addr]net.HardwareAddr // next hop -> VTEP MAC
}

// Target is where an FDB entry sends a MAC, and for which node.
type Target struct {
	Underlay netip.Addr
	Node     string
}

// EntriesOf is the entries peers need: per peer one FDB entry and one
// neighbour entry per next hop.
func EntriesOf(peers []Peer) Entries {
	e := Entries{FDB: make(map[string]Target, len(peers)), Neigh: make(map[netip.Addr]net.HardwareAddr, len(peers))}
	for _, p := range peers {
		e.FDB[p.MAC.String()] = Target{Underlay: p.Underlay, Node: p.Node}
		for _, nh := range p.NextHops {
			e.Neigh[nh] = p.MAC
		}
	}
	return e
}

// UpdatePeers changes the device's entries from have, what the device is
// known to hold (SyncPeers or an earlier UpdatePeers made it so), to want:
// it deletes the entries of have that want has not (or has differently)
// and sets the new or different ones, without listing the device's
// entries. Its requests are one per entry that changes, whatever the number
// of peers. It returns one description per change.
func UpdatePeers(h Netlink, index int, have, want Entries) ([]string, error) {
	var changes []string
	var errs []error
	for _, mac := range slices.Sorted(maps.Keys(have.FDB)) {
		old := have.FDB[mac]
		if t, ok := want.FDB[mac]; ok && t.Underlay == old.Underlay {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		e := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(old.Underlay.AsSlice()), HardwareAddr: hw}
		if err := h.NeighDel(e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete FDB entry %s dst %s: %w", mac, old.Underlay, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted FDB entry %s dst %s", mac, old.Underlay))
	}
	for _, nh := range slices.SortedFunc(maps.Keys(have.Neigh), netip.Addr.Compare) {
		if _, ok := want.Neigh[nh]; ok {
			continue // replaced below when its MAC differs
		}
		e := &netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, IP: net.IP(nh.AsSlice())}
		if err := h.NeighDel(e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s: %w", nh, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted neighbour %s lladdr %s", nh, have.Neigh[nh]))
	}
	var newFDB []string
	for mac, t := range want.FDB {
		if old, ok := have.FDB[mac]; !ok || old.Underlay != t.Underlay {
			newFDB = append(newFDB, mac)
		}
	}
	slices.Sort(newFDB)
	for _, mac := range newFDB {
		t := want.FDB[mac]
		hw, _ := net.ParseMAC(mac)
		e := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(t.Underlay.AsSlice()), HardwareAddr: hw}
		if err := h.NeighSet(e); err != nil {
			errs = append(errs, fmt.Errorf("FDB entry %s dst %s (node %q): %w", mac, t.Underlay, t.Node, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("added FDB entry %s dst %s node %s", mac, t.Underlay, t.Node))
	}
	var newNeigh []netip.Addr
	for nh, mac := range want.Neigh {
		if old, ok := have.Neigh[nh]; !ok || !bytes.Equal(old, mac) {
			newNeigh = append(newNeigh, nh)
		}
	}
	slices.SortFunc(newNeigh, netip.Addr.Compare)
	for _, nh := range newNeigh {
		mac := want.Neigh[nh]
		e := &netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, IP: net.IP(nh.AsSlice()), HardwareAddr: mac}
		if err := h.NeighSet(e); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %s lladdr %s (node %q): %w", nh, mac, want.nodeOf(mac), err))
			continue
		}
		changes = append(changes, fmt.Sprintf("set neighbour %s lladdr %s node %s", nh, mac, want.nodeOf(mac)))
	}
	return changes, errors.Join(errs...)
}

func (e Entries) nodeOf(mac net.HardwareAddr) string {
	return e.FDB[strings.ToLower(mac.String())].Node
}
