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

// Alias marks minicni's VXLAN devices (IFLA_IFALIAS, `ip -d link` shows it):
// a restarted agent and uninstall find them by it, whatever their name, and
// never touch a device without it.
const Alias = "minicni overlay"

// Ensure creates the device or brings it to d: a device of that name
// that is not minicni's is an error (never deleted); a VXLAN device of
// that name without an alias is taken as minicni's (the kernel sets the
// alias only after creating the device: an agent stopped in between left
// it); one whose VNI, port,
// local address or learning differ is recreated (the kernel cannot change
// them); MAC, MTU, up state and addresses are set in place. It returns the
// device's index and one description per change made.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func Ensure(h Netlink, d Device) (index int, changes []string, err error) {
	link, err := h.LinkByName(d.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return 0, nil, fmt.Errorf("VXLAN device %s: %w", d.Name, err)
	}
	if link != nil {
		vx, ok := link.(*netlink.Vxlan)
		if alias := link.Attrs().Alias; !ok || (alias != Alias && alias != "") {
			return 0, nil, fmt.Errorf("link %s exists and is not minicni's VXLAN device (type %s, alias %q); choose another --vxlan-device", d.Name, link.Type(), link.Attrs().Alias)
		}
		if why := mismatch(vx, d); why != "" {
			if err := h.LinkDel(link); err != nil && !errors.As(err, &notFound) {
				return 0, nil, fmt.Errorf("delete VXLAN device %s to recreate it (%s): %w", d.Name, why, err)
			}
			changes = append(changes, "deleted device "+d.Name+": "+why)
			link = nil
		}
	}
	mac := MAC(d.Local)
	if link == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.HardwareAddr = d.Name, d.MTU, mac
		vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: d.VNI, SrcAddr: net.IP(d.Local.AsSlice()), Port: d.Port, Learning: false}
		if err := h.LinkAdd(vx); err != nil {
			return 0, changes, fmt.Errorf("create VXLAN device %s (VNI %d, port %d, local %s): %w", d.Name, d.VNI, d.Port, d.Local, err)
		}
		changes = append(changes, fmt.Sprintf("created device %s: VNI %d, port %d, local %s, MAC %s, MTU %d", d.Name, d.VNI, d.Port, d.Local, mac, d.MTU))
		if link, err = h.LinkByName(d.Name); err != nil {
			return 0, changes, fmt.Errorf("VXLAN device %s: %w", d.Name, err)
		}
	}
	a := link.Attrs()
	if a.Alias != Alias {
		if err := h.LinkSetAlias(link, Alias); err != nil {
			return a.Index, changes, fmt.Errorf("set alias of %s: %w", d.Name, err)
		}
	}
	if !bytes.Equal(a.HardwareAddr, mac) {
		if err := h.LinkSetHardwareAddr(link, mac); err != nil {
			return a.Index, changes, fmt.Errorf("set MAC of %s: %w", d.Name, err)
		}
		changes = append(changes, fmt.Sprintf("set MAC of %s to %s (was %s)", d.Name, mac, a.HardwareAddr))
	}
	if a.MTU != d.MTU {
		if err := h.LinkSetMTU(link, d.MTU); err != nil {
			return a.Index, changes, fmt.Errorf("set MTU of %s to %d: %w", d.Name, d.MTU, err)
		}
		changes = append(changes, fmt.Sprintf("set MTU of %s to %d (was %d)", d.Name, d.MTU, a.MTU))
	}
	if a.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return a.Index, changes, fmt.Errorf("set %s up: %w", d.Name, err)
		}
		changes = append(changes, "set "+d.Name+" up")
	}
	addrChanges, err := syncAddrs(h, link, d.Addrs)
	return a.Index, append(changes, addrChanges...), err
}

// mismatch says which setting fixed at creation differs from d ("" when
// none does).
func mismatch(vx *netlink.Vxlan, d Device) string {
	local, _ := netip.AddrFromSlice(vx.SrcAddr)
	switch {
	case vx.VxlanId != d.VNI:
		return fmt.Sprintf("VNI %d, want %d", vx.VxlanId, d.VNI)
	case vx.Port != d.Port:
		return fmt.Sprintf("port %d, want %d", vx.Port, d.Port)
	case local.Unmap() != d.Local:
		return fmt.Sprintf("local address %s, want %s", local.Unmap(), d.Local)
	case vx.Learning:
		return "learning on"
	}
	return ""
}

// syncAddrs makes the device's addresses (link-local ones aside, which the
// kernel manages) exactly want.
func syncAddrs(h Netlink, link netlink.Link, want []netip.Prefix) ([]string, error) {
	have, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	var changes []string
	var errs []error
	kept := map[netip.Prefix]bool{}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if slices.Contains(want, p) {
			kept[p] = true
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			errs = append(errs, fmt.Errorf("delete address %s of %s: %w", p, link.Attrs().Name, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted address %s of %s", p, link.Attrs().Name))
	}
	for _, p := range want {
		if kept[p] {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("add address %s to %s: %w", p, link.Attrs().Name, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("added address %s to %s", p, link.Attrs().Name))
	}
	return changes, errors.Join(errs...)
}

// SyncPeers makes the device's forwarding and neighbour entries exactly
// those of peers: per peer one FDB entry (its MAC -> its underlay address)
// and one permanent neighbour entry per next hop (-> its MAC). Everything on
// the device is minicni's, so an FDB entry or a permanent neighbour entry
// not wanted is deleted: a restarted agent removes what a previous run left
// for a peer now gone. Neighbour entries the kernel made itself (not
// permanent) are left to its garbage collection.
func SyncPeers(h Netlink, index int, peers []Peer) ([]string, error) {
	wantFDB := map[string]netip.Addr{} // MAC -> underlay
	wantNeigh := map[netip.Addr]net.HardwareAddr{}
	for _, p := range peers {
		wantFDB[p.MAC.String()] = p.Underlay
		for _, nh := range p.NextHops {
			wantNeigh[nh] = p.MAC
		}
	}
	changes, err := syncFDB(h, index, peers, wantFDB)
	more, nerr := syncNeighbours(h, index, peers, wantNeigh)
	return append(changes, more...), errors.Join(err, nerr)
}

// syncFDB is SyncPeers' pass over the forwarding entries.
func syncFDB(h Netlink, index int, peers []Peer, wantFDB map[string]netip.Addr) ([]string, error) {
	var changes []string
	var errs []error
	fdb, err := retry(func() ([]netlink.Neigh, error) { return h.NeighList(index, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("list FDB entries: %w", err)
	}
	have := map[string]bool{}
	for _, e := range fdb {
		mac, dst := e.HardwareAddr.String(), addr(e.IP)
		if u, ok := wantFDB[mac]; ok && u == dst && e.State&netlink.NUD_PERMANENT != 0 && !have[mac] {
			have[mac] = true
			continue
		}
		if err := h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete FDB entry %s dst %s: %w", mac, dst, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("deleted FDB entry %s dst %s", mac, dst))
	}
	for _, p := range peers {
		if have[p.MAC.String()] {
			continue
		}
		e := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(p.Underlay.AsSlice()), HardwareAddr: p.MAC}
		if err := h.NeighSet(e); err != nil {
			errs = append(errs, fmt.Errorf("FDB entry %s dst %s (node %q): %w", p.MAC, p.Underlay, p.Node, err))
			continue
		}
		changes = append(changes, fmt.Sprintf("added FDB entry %s dst %s node %s", p.MAC, p.Underlay, p.Node))
	}

	return changes, errors.Join(errs...)
}

// syncNeighbours is SyncPeers' pass over the permanent neighbour entries.
func syncNeighbours(h Netlink, index int, peers []Peer, wantNeigh map[netip.Addr]net.HardwareAddr) ([]string, error) {
	var changes []string
	var errs []error
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := retry(func() ([]netlink.Neigh, error) { return h.NeighList(index, family) })
		if err != nil {
			errs = append(errs, fmt.Errorf("list neighbour entries: %w", err))
			continue
		}
		for _, e := range list {
			ip := addr(e.IP)
			mac, wanted := wantNeigh[ip]
			if wanted && e.State == netlink.NUD_PERMANENT && bytes.Equal(e.HardwareAddr, mac) {
				delete(wantNeigh, ip) // present and right
				continue
			}
			if wanted || e.State&netlink.NUD_PERMANENT == 0 {
				continue // set below, or the kernel's own
			}
			if err := h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("delete neighbour %s: %w", ip, err))
				continue
			}
			changes = append(changes, fmt.Sprintf("deleted neighbour %s lladdr %s", ip, e.HardwareAddr))
		}
	}
	for _, p := range peers {
		for _, nh := range p.NextHops {
			if _, todo := wantNeigh[nh]; !todo {
				continue
			}
			e := &netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, IP: net.IP(nh.AsSlice()), HardwareAddr: p.MAC}
			if err := h.NeighSet(e); err != nil {
				errs = append(errs, fmt.Errorf("neighbour %s lladdr %s (node %q): %w", nh, p.MAC, p.Node, err))
				continue
			}
			changes = append(changes, fmt.Sprintf("set neighbour %s lladdr %s node %s", nh, p.MAC, p.Node))
		}
	}
	return changes, errors.Join(errs...)
}

// Remove deletes minicni's VXLAN devices (those carrying Alias) except the
// one named keep ("" keeps none), with the routes, FDB and neighbour
// entries on them. It returns the names deleted.
func Remove(h Netlink, keep string) ([]string, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var deleted []string
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "vxlan" || a.Alias != Alias || (keep != "" && a.Name == keep) {
			continue
		}
		var notFound netlink.LinkNotFoundError
		if err := h.LinkDel(l); err != nil && !errors.As(err, &notFound) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete VXLAN device %s: %w", a.Name, err))
			continue
		}
		deleted = append(deleted, a.Name)
	}
	return deleted, errors.Join(errs...)
}

// PodMTU is the MTU that lets pods' packets cross the overlay without
// fragmentation: the MTU of the link holding the node's underlay address
// (Underlay of internalIPs) minus the encapsulation over that family. When
// no InternalIP is a local address (or none is known), it is the MTU of the
// default-route link (IPv4 first, as minibridge picks it), else 1500, minus
// MaxOverhead, right for either underlay family.
func PodMTU(h Netlink, internalIPs []netip.Addr) (int, error) {
	addrs, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return 0, fmt.Errorf("list addresses: %w", err)
	}
	linkOf := map[netip.Addr]int{}
	for _, a := range addrs {
		linkOf[addr(a.IP)] = a.LinkIndex
	}
	if u := Underlay(internalIPs, func(a netip.Addr) bool { _, ok := linkOf[a]; return ok }); u.IsValid() {
		l, err := h.LinkByIndex(linkOf[u])
		if err != nil {
			return 0, fmt.Errorf("link of %s: %w", u, err)
		}
		return l.Attrs().MTU - Overhead(u), nil
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteList(nil, family)
		if err != nil {
			return 0, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			if r.LinkIndex == 0 {
				continue
			}
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
				return l.Attrs().MTU - MaxOverhead, nil
			}
		}
	}
	return 1500 - MaxOverhead, nil
}

// retry repeats a dump the kernel interrupted (a concurrent change).
func retry[T any](f func() ([]T, error)) ([]T, error) {
	var out []T
	var err error
	for range 5 {
		if out, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

func addr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
