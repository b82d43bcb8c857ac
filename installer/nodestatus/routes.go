package nodestatus

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/installer/routes"
	"github.com/vishvananda/netlink"
)

// Routes are the agent's routes in the kernel and, when the nodes are
// known, the peers it cannot route.
type Routes struct {
	// Kernel lists the main table's routes carrying minicni's protocol (109).
	Kernel []string `json:"kernel"`
	// Checked says whether the node list was read (Options.Nodes).
	Checked bool `json:"checked"`
	// Unreachable and Invalid are the peers, by name, not routed and why.
	Unreachable map[string]string `json:"unreachable,omitempty"`
	Invalid     map[string]string `json:"invalid,omitempty"`
	// Missing are desired routes not in the kernel.
	Missing []string `json:"missing,omitempty"`
}

const secRoutes = "routes"

func (r *Report) routes(ctx context.Context, opt Options) {
	rt := &Routes{Kernel: []string{}}
	r.Routes = rt
	h, err := netlinksafe.NewHandle()
	if err != nil {
		r.blind(secRoutes, "cannot open netlink: "+err.Error(), "run as root")
		return
	}
	defer h.Close()
	own, err := routes.ListOwn(h)
	if err != nil {
		r.blind(secRoutes, err.Error(), "run as root")
		return
	}
	have := map[netip.Prefix]netip.Addr{}
	for _, k := range own {
		dst, _ := netip.ParsePrefix(k.Dst.String())
		gw, _ := netip.AddrFromSlice(k.Gw)
		have[dst] = gw.Unmap()
		dev := ""
		if l, err := h.LinkByIndex(k.LinkIndex); err == nil {
			dev = " dev " + l.Attrs().Name
		}
		s := k.Dst.String()
		if k.Gw != nil {
			s += " via " + k.Gw.String()
		}
		if k.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		rt.Kernel = append(rt.Kernel, s+dev)
	}
	if opt.Nodes == nil {
		return
	}
	list, err := opt.Nodes.List()
	if err != nil {
		r.blind(secRoutes, "cannot list the nodes: "+err.Error(), "check --kubeconfig or --nodes-file")
		return
	}
	local, err := routes.New(h, nil).LocalNets()
	if err != nil {
		r.blind(secRoutes, err.Error(), "run as root")
		return
	}
	rt.Checked = true
	rep := routes.Desired(opt.Self, list, local, opt.Overlay)
	rt.Unreachable, rt.Invalid = rep.Unreachable, rep.Invalid
	for _, name := range slices.Sorted(maps.Keys(rep.Unreachable)) {
		r.problem(secRoutes, fmt.Sprintf("node %s cannot be routed: %s", name, rep.Unreachable[name]),
			"run the agent with --overlay auto (VXLAN to nodes on other subnets), or give the node an InternalIP this node can reach")
	}
	for _, name := range slices.Sorted(maps.Keys(rep.Invalid)) {
		r.problem(secRoutes, fmt.Sprintf("node %s is ignored: %s", name, rep.Invalid[name]),
			fmt.Sprintf("fix node %s's podCIDR or InternalIP (kubectl get node %s -o yaml)", name, name))
	}
	for _, dst := range slices.SortedFunc(maps.Keys(rep.Desired), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		want := rep.Desired[dst]
		if via, ok := have[dst]; !ok || via != want.Via {
			rt.Missing = append(rt.Missing, want.String())
			r.problem(secRoutes, fmt.Sprintf("route %s to node %s is not in the kernel: pods there are unreachable", want, want.Node),
				"check that minicni's agent runs on this node (kubectl -n kube-system logs the minicni pod's agent container)")
		}
	}
}
