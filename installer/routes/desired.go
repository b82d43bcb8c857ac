// Package routes keeps the node's routes to the other nodes' pod subnets:
// `<podCIDR> via <node InternalIP>` for every other node whose InternalIP is
// on a subnet of a local interface. It is level-triggered: each Sync computes
// the whole desired set from the node list and the local interfaces, reads
// the kernel's routes carrying minicni's route protocol number, and applies
// the difference. Because the kernel, not memory, says what minicni
// installed, an agent restarted after a node was deleted still removes that
// node's route, and no route without the protocol number is ever deleted.
package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/minicni/minicni/installer/nodes"
)

// Route is one wanted route to another node's pod subnet.
type Route struct {
	Dst       netip.Prefix
	Via       netip.Addr
	LinkIndex int    // the interface whose subnet holds Via
	Node      string // whose pod subnet Dst is
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// LocalNet is a subnet of a local interface address.
type LocalNet struct {
	Prefix    netip.Prefix
	Addr      netip.Addr // the local address itself
	LinkIndex int
}

// Report is the outcome of Desired: the routes wanted, and the nodes that get
// no route (or not all of theirs), with the reason.
type Report struct {
	Desired map[netip.Prefix]Route
	// Unreachable nodes have a valid pod CIDR but no InternalIP of its
	// family on a local subnet: they would need an overlay.
	Unreachable map[string]string
	// Invalid nodes have a value that failed validation, or claim a subnet
	// that overlaps this node's, a local interface's or another node's.
	Invalid map[string]string
}

// Desired computes the routes this node (self) wants from every node's
// values, which are untrusted: each is validated (nodes.Parse) and a node
// with any invalid value gets no route at all.
func Desired(self string, list []nodes.Node, local []LocalNet) Report {
	rep := Report{Desired: map[netip.Prefix]Route{}, Unreachable: map[string]string{}, Invalid: map[string]string{}}
	var own []netip.Prefix
	for _, n := range list {
		if n.Name == self {
			if p, err := nodes.Parse(n); err == nil {
				own = p.PodCIDRs
			}
		}
	}
	var wanted []Route
	for _, n := range list {
		if n.Name == self {
			continue
		}
		p, err := nodes.Parse(n)
		if err != nil {
			rep.Invalid[n.Name] = err.Error()
			continue
		}
		var reasons []string
		var mine []Route
		for _, pod := range p.PodCIDRs {
			r, unreachable, err := routeFor(p, pod, own, local)
			if err != nil {
				rep.Invalid[n.Name] = err.Error()
				mine = nil
				break
			}
			if unreachable != "" {
				reasons = append(reasons, unreachable)
				continue
			}
			mine = append(mine, r)
		}
		if _, bad := rep.Invalid[n.Name]; bad {
			continue
		}
		if len(reasons) > 0 {
			rep.Unreachable[n.Name] = strings.Join(reasons, "; ")
		}
		wanted = append(wanted, mine...)
	}
	// Two nodes claiming overlapping subnets: route neither, since either
	// choice sends some pod's traffic to the wrong node.
	conflict := map[int]bool{}
	for i := range wanted {
		for j := i + 1; j < len(wanted); j++ {
			if wanted[i].Dst.Overlaps(wanted[j].Dst) {
				conflict[i], conflict[j] = true, true
				for _, pair := range [][2]int{{i, j}, {j, i}} {
					a, b := wanted[pair[0]], wanted[pair[1]]
					rep.Invalid[a.Node] = fmt.Sprintf("podCIDR %s overlaps node %q's %s", a.Dst, b.Node, b.Dst)
				}
			}
		}
	}
	for i, r := range wanted {
		if !conflict[i] {
			if _, bad := rep.Invalid[r.Node]; !bad {
				rep.Desired[r.Dst] = r
			}
		}
	}
	return rep
}

// routeFor finds the route to pod, another node's subnet. A non-empty
// unreachable says why there is none that is not the node's fault; err is a
// value no node may claim.
func routeFor(p nodes.Parsed, pod netip.Prefix, own []netip.Prefix, local []LocalNet) (_ Route, unreachable string, err error) {
	v4 := pod.Addr().Is4()
	for _, o := range own {
		if o.Overlaps(pod) {
			return Route{}, "", fmt.Errorf("podCIDR %s overlaps this node's podCIDR %s", pod, o)
		}
	}
	for _, l := range local {
		if l.Prefix.Overlaps(pod) {
			return Route{}, "", fmt.Errorf("podCIDR %s overlaps local subnet %s", pod, l.Prefix)
		}
	}
	idx := slices.IndexFunc(p.InternalIPs, func(a netip.Addr) bool { return a.Is4() == v4 })
	if idx < 0 {
		return Route{}, fmt.Sprintf("no %s InternalIP for podCIDR %s", family(v4), pod), nil
	}
	via := p.InternalIPs[idx]
	best := -1
	for i, l := range local {
		if l.Addr == via {
			return Route{}, "", fmt.Errorf("InternalIP %s is an address of this node", via)
		}
		if l.Prefix.Contains(via) && (best < 0 || l.Prefix.Bits() > local[best].Prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return Route{}, fmt.Sprintf("InternalIP %s is not on a subnet of a local interface", via), nil
	}
	return Route{Dst: pod, Via: via, LinkIndex: local[best].LinkIndex, Node: p.Name}, "", nil
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}
