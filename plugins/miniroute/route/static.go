package route

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureStatic replaces each static route in the calling thread's network
// namespace (the node's): one netlink message per route, whether or not it
// is already there, which is cheaper than listing the routing table first.
func EnsureStatic(routes []Static) error {
	for _, r := range routes {
		if err := netlink.RouteReplace(&netlink.Route{Dst: ipNet(r.DstNet), Gw: r.ViaIP.AsSlice()}); err != nil {
			return libmini.Errorf(libmini.CodeLink, "static route %s: %v", r, err)
		}
	}
	return nil
}

// CheckStatic describes each static route missing from the main table.
func CheckStatic(routes []Static) ([]string, error) {
	var problems []string
	for _, r := range routes {
		family := netlink.FAMILY_V4
		if !r.DstNet.Addr().Is4() {
			family = netlink.FAMILY_V6
		}
		filter := &netlink.Route{Dst: ipNet(r.DstNet), Table: unix.RT_TABLE_MAIN}
		got, err := netlinksafe.RouteListFiltered(family, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, libmini.Errorf(libmini.CodeLink, "list routes to %s: %v", r.DstNet, err)
		}
		if !hasGateway(got, r.ViaIP.AsSlice()) {
			problems = append(problems, fmt.Sprintf("static route missing: %s", r))
		}
	}
	return problems, nil
}

func hasGateway(routes []netlink.Route, via net.IP) bool {
	for _, rt := range routes {
		if rt.Gw.Equal(via) {
			return true
		}
		for _, nh := range rt.MultiPath {
			if nh.Gw.Equal(via) {
				return true
			}
		}
	}
	return false
}

// ipNet is p in the form netlink takes, a 4-byte IP and mask for IPv4.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
