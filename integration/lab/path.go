package lab

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The paths Path tells apart: how a node forwards a packet from one of its
// pods.
const (
	PathLocal    = "local"    // delivered to the node itself
	PathBridge   = "bridge"   // back out through the pod bridge: a pod on the same node
	PathDirect   = "direct"   // out on the underlay via another node's address (a direct route)
	PathVXLAN    = "vxlan"    // out through a VXLAN device
	PathUnderlay = "underlay" // out on the underlay to an on-link address
	PathRouter   = "router"   // out on the underlay via a gateway that is not a node: the router
)

// Path returns how p's node forwards a packet from p to dst, read from the
// kernel: the node's route lookup for a packet with p's source address
// arriving on the link that holds p's route (the bridge), what
// `ip route get DST from POD iif BRIDGE` prints in the node's namespace,
// classified by the device it leaves through and its gateway.
func (l *Lab) Path(p *Pod, dst net.IP) (string, error) {
	return l.PathFrom(p, p.IP, dst)
}

// PathFrom is Path for a packet from src, one of p's addresses (its IPv6
// one for an IPv6 dst).
func (l *Lab) PathFrom(p *Pod, src, dst net.IP) (string, error) {
	var path string
	err := p.Node.Do(func() error {
		toPod, err := netlink.RouteGet(src)
		if err != nil || len(toPod) == 0 {
			return fmt.Errorf("route to the pod %s on %s: %v", src, p.Node.Name, err)
		}
		rs, err := netlink.RouteGetWithOptions(dst, &netlink.RouteGetOptions{IifIndex: toPod[0].LinkIndex, SrcAddr: src})
		if err != nil || len(rs) == 0 {
			return fmt.Errorf("%s: no route from %s to %s: %v", p.Node.Name, src, dst, err)
		}
		r := rs[0]
		if r.Type == unix.RTN_LOCAL {
			path = PathLocal
			return nil
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			return fmt.Errorf("%s: the link of the route to %s: %w", p.Node.Name, dst, err)
		}
		switch {
		case link.Type() == "vxlan":
			path = PathVXLAN
		case link.Type() == "bridge":
			path = PathBridge
		case r.Gw == nil:
			path = PathUnderlay
		case l.nodeAt(r.Gw) != nil:
			path = PathDirect
		default:
			path = PathRouter
		}
		return nil
	})
	return path, err
}

// nodeAt is the node whose underlay address is ip, or nil.
func (l *Lab) nodeAt(ip net.IP) *Node {
	for _, n := range l.Nodes {
		if n.IP.Equal(ip) || (n.IP6 != nil && n.IP6.Equal(ip)) {
			return n
		}
	}
	return nil
}

// wantPath is the path a packet from a pod on n to a pod on o must take:
// static routes and the agents without an overlay route directly; with
// --overlay vxlan every peer is over VXLAN; otherwise (auto) a peer on the
// same segment is direct and one on the other segment over VXLAN.
func (l *Lab) wantPath(n, o *Node) string {
	switch {
	case l.Opts.Agent == "" || l.Opts.Overlay == "none":
		return PathDirect
	case l.Opts.Overlay == "vxlan":
		return PathVXLAN
	case n.Segment == o.Segment:
		return PathDirect
	default:
		return PathVXLAN
	}
}

// underlayPath is the path to a host on segment seg from node n.
func underlayPath(n *Node, seg int) string {
	if n.Segment == seg {
		return PathUnderlay
	}
	return PathRouter
}
