package bridge

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addRoutes programs the result's routes on the pod interface l (the caller
// is in the pod's netns), each exactly as given: mtu, advmss, priority,
// table and scope included (the plugins library's ipam.ConfigureIface drops
// mtu and advmss). A route without gw goes via the first gateway of its
// family among the IPs, as ConfigureIface does, or straight out of l when
// that family has none or the route's scope is link or host.
func addRoutes(c *rtnl, l netlink.Link, res *current.Result) error {
	for _, r := range res.Routes {
		kr := kernelRoute(l.Attrs().Index, r, res.IPs)
		// RouteAddEcmp, as ConfigureIface: a second route to the same
		// destination becomes another IPv6 nexthop instead of an error.
		if err := c.routeAdd(kr); err != nil {
			return fmt.Errorf("adding route %s: %w", describeRoute(r, kr.Gw), err)
		}
	}
	return nil
}

// kernelRoute is the kernel route ADD programs for r.
func kernelRoute(linkIndex int, r *types.Route, ips []*current.IPConfig) *netlink.Route {
	dst := r.Dst
	kr := &netlink.Route{
		Dst:       &dst,
		LinkIndex: linkIndex,
		Gw:        routeGateway(r, ips),
		Priority:  r.Priority,
		MTU:       r.MTU,
		AdvMSS:    r.AdvMSS,
	}
	if r.Table != nil {
		kr.Table = *r.Table
	}
	if r.Scope != nil {
		kr.Scope = netlink.Scope(*r.Scope)
	}
	return kr
}

// routeGateway is r's gw, or the first gateway of r's family among ips;
// none for a route of link or host scope, which by definition has no
// gateway (the kernel refuses one with "Nexthop has invalid scope").
func routeGateway(r *types.Route, ips []*current.IPConfig) net.IP {
	if r.GW != nil {
		return r.GW
	}
	if r.Scope != nil && *r.Scope >= int(netlink.SCOPE_LINK) {
		return nil
	}
	v4 := r.Dst.IP.To4() != nil
	for _, ipc := range ips {
		if ipc.Gateway != nil && (ipc.Gateway.To4() != nil) == v4 {
			return ipc.Gateway
		}
	}
	return nil
}

// checkRoutes verifies, in the pod's netns, that every route of the
// prevResult is in its table on the pod interface l as ADD programmed it:
// same destination and gateway, and the priority, mtu, advmss and scope the
// route gives (an unset one is not compared: the kernel picks IPv6's
// default metric, for example). The error names the route.
func checkRoutes(l netlink.Link, routes []*types.Route, ips []*current.IPConfig) error {
	for _, r := range routes {
		want := kernelRoute(l.Attrs().Index, r, ips)
		table := want.Table
		if table == 0 {
			table = unix.RT_TABLE_MAIN
		}
		family := netlink.FAMILY_V6
		if r.Dst.IP.To4() != nil {
			family = netlink.FAMILY_V4
		}
		have, err := netlinksafe.RouteListFiltered(family, &netlink.Route{Table: table, LinkIndex: want.LinkIndex},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
		if err != nil {
			return fmt.Errorf("listing routes of table %d: %w", table, err)
		}
		var sameDst []netlink.Route
		for _, h := range have {
			if sameNet(h.Dst, &r.Dst) && h.Gw.Equal(want.Gw) {
				sameDst = append(sameDst, h)
			}
		}
		if len(sameDst) == 0 {
			return fmt.Errorf("route %s is missing", describeRoute(r, want.Gw))
		}
		var diffs []string
		for _, h := range sameDst {
			if diffs = routeDiffs(want, r, &h); len(diffs) == 0 {
				break
			}
		}
		if len(diffs) > 0 {
			return fmt.Errorf("route %s differs: %s", describeRoute(r, want.Gw), strings.Join(diffs, ", "))
		}
	}
	return nil
}

// routeDiffs lists how the kernel route h differs from want, for the
// attributes r sets.
func routeDiffs(want *netlink.Route, r *types.Route, h *netlink.Route) []string {
	var d []string
	if r.Priority != 0 && h.Priority != want.Priority {
		d = append(d, fmt.Sprintf("priority %d, want %d", h.Priority, want.Priority))
	}
	if r.MTU != 0 && h.MTU != want.MTU {
		d = append(d, fmt.Sprintf("mtu %d, want %d", h.MTU, want.MTU))
	}
	if r.AdvMSS != 0 && h.AdvMSS != want.AdvMSS {
		d = append(d, fmt.Sprintf("advmss %d, want %d", h.AdvMSS, want.AdvMSS))
	}
	if r.Scope != nil && h.Scope != want.Scope {
		d = append(d, fmt.Sprintf("scope %d, want %d", h.Scope, want.Scope))
	}
	return d
}

// sameNet compares a kernel route's destination (nil for a default route)
// with a result's.
func sameNet(kernel, want *net.IPNet) bool {
	wantOnes, _ := want.Mask.Size()
	if kernel == nil {
		return wantOnes == 0
	}
	ones, _ := kernel.Mask.Size()
	return ones == wantOnes && kernel.IP.Equal(want.IP.Mask(want.Mask))
}

// describeRoute renders r as ip-route(8) would, with the gateway ADD uses.
func describeRoute(r *types.Route, gw net.IP) string {
	s := r.Dst.String()
	if gw != nil {
		s += " via " + gw.String()
	}
	if r.Table != nil {
		s += fmt.Sprintf(" table %d", *r.Table)
	}
	if r.Priority != 0 {
		s += fmt.Sprintf(" metric %d", r.Priority)
	}
	if r.Scope != nil {
		s += fmt.Sprintf(" scope %d", *r.Scope)
	}
	if r.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", r.MTU)
	}
	if r.AdvMSS != 0 {
		s += fmt.Sprintf(" advmss %d", r.AdvMSS)
	}
	return s
}
