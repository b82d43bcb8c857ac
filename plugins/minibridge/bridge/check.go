package bridge

import (
	"context"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
)

// Check verifies that the attachment described by prevResult is still in
// place: the host end exists, is attached to the bridge, has the MTU, the
// isolated flag of portIsolation and, with a vlan, is an untagged port of
// that VLAN only (unless preserveDefaultVlan) on a VLAN-filtering bridge;
// the bridge (or the VLAN's gateway veth) holds the gateways (isGateway);
// the pod interface is the host end's peer, has the MTU, prevResult's
// addresses and its routes with their table, metric, scope, mtu and advmss.
// Then the IPAM's CHECK. Drift is libmini.CodeCheckFailed.
func Check(ctx context.Context, conf *NetConf, args *libmini.CmdArgs, _ Node) error {
	if err := validateArgs(args); err != nil {
		return err
	}
	prev, err := libmini.PrevResult(&conf.NetConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return libmini.Errorf(libmini.CodeNoPrevResult, "CHECK needs the prevResult of the ADD")
	}
	netns, err := openNetNS(args.Netns)
	if err != nil {
		return err
	}
	defer netns.Close()
	var mtu int
	if err := withRtnl(func(c *rtnl) (err error) { mtu, err = resolveMTU(c, conf.MTU); return err }); err != nil {
		return err
	}

	ips, err := podIPs(prev, args.IfName)
	if err != nil {
		return err
	}
	peerIndex, err := checkHost(conf, args, mtu, ips)
	if err != nil {
		return err
	}
	if err := checkPod(netns, args, peerIndex, mtu, ips, prev.Routes); err != nil {
		return err
	}
	return ipamCall{conf, args}.check(ctx)
}

// podIPs returns the addresses of prev that belong to the pod interface
// ifName (or to no interface).
func podIPs(prev *current.Result, ifName string) ([]*current.IPConfig, error) {
	podIdx := -1
	for i, iface := range prev.Interfaces {
		if iface.Name == ifName && iface.Sandbox != "" {
			podIdx = i
			break
		}
	}
	if podIdx < 0 {
		return nil, drift("prevResult has no interface %s in a sandbox", ifName)
	}
	var ips []*current.IPConfig
	for _, ipc := range prev.IPs {
		if ipc.Interface == nil || *ipc.Interface == podIdx {
			ips = append(ips, ipc)
		}
	}
	return ips, nil
}

// checkPod verifies, inside the pod's netns, that the pod interface is the
// host end's peer (peerIndex, when known) and has mtu, ips and routes.
func checkPod(netns ns.NetNS, args *libmini.CmdArgs, peerIndex, mtu int, ips []*current.IPConfig, routes []*types.Route) error {
	err := netns.Do(func(ns.NetNS) error {
		l, err := netlinksafe.LinkByName(args.IfName)
		if err != nil {
			return drift("pod interface %s: %v", args.IfName, err)
		}
		if peerIndex > 0 && l.Attrs().Index != peerIndex {
			return drift("pod interface %s (index %d) is not the peer of the host veth (index %d)", args.IfName, l.Attrs().Index, peerIndex)
		}
		if l.Attrs().MTU != mtu {
			return drift("pod interface %s has MTU %d, want %d", args.IfName, l.Attrs().MTU, mtu)
		}
		if err := validateExpectedIPs(args.IfName, ips); err != nil {
			return drift("pod addresses: %v", err)
		}
		if err := checkRoutes(l, routes, ips); err != nil {
			return drift("pod %v", err)
		}
		return nil
	})
	return libmini.Wrap(err, libmini.CodeLink, "entering the pod's netns "+args.Netns)
}

// checkHost verifies the host side and returns the index of the host end's
// peer (the pod interface) in the pod's netns.
func checkHost(conf *NetConf, args *libmini.CmdArgs, mtu int, ips []*current.IPConfig) (int, error) {
	hostName := HostVethName(args.ContainerID, args.IfName)
	l, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		return 0, drift("host veth %s: %v", hostName, err)
	}
	veth, ok := l.(*netlink.Veth)
	if !ok {
		return 0, drift("host end %s is a %s link, not a veth", hostName, l.Type())
	}
	bl, err := netlinksafe.LinkByName(conf.Bridge)
	if err != nil {
		return 0, drift("bridge %s: %v", conf.Bridge, err)
	}
	br, ok := bl.(*netlink.Bridge)
	if !ok {
		return 0, drift("%s is a %s link, not a bridge", conf.Bridge, bl.Type())
	}
	if veth.MasterIndex == 0 {
		// The bridge was deleted under the pod (and maybe made again by a
		// later ADD): the pod is cut off until it is recreated.
		return 0, drift("host veth %s is not attached to bridge %s: it is on no bridge (the bridge it was on was deleted)", hostName, conf.Bridge)
	}
	if veth.MasterIndex != br.Index {
		return 0, drift("host veth %s is not attached to bridge %s", hostName, conf.Bridge)
	}
	if veth.MTU != mtu {
		return 0, drift("host veth %s has MTU %d, want %d", hostName, veth.MTU, mtu)
	}
	if br.Flags&net.FlagUp == 0 {
		return 0, drift("bridge %s is down", conf.Bridge)
	}
	info, err := netlinksafe.LinkGetProtinfo(veth)
	if err != nil {
		return 0, linkErr(err, "reading the port flags of %s", hostName)
	}
	if info.Isolated != conf.PortIsolation {
		return 0, drift("host veth %s has isolated %v, want %v (portIsolation)", hostName, info.Isolated, conf.PortIsolation)
	}
	if err := checkVlanAndGateways(conf, br, veth, ips); err != nil {
		return 0, err
	}
	return veth.ParentIndex, nil
}

// checkVlanAndGateways verifies, with a vlan, that the bridge filters VLANs
// and the host end veth is that VLAN's untagged port (and, with isGateway,
// the VLAN's gateway veth is in place), and with isGateway that the link
// holding the gateways (the bridge or that veth) has the gateway of every
// IP in ips.
func checkVlanAndGateways(conf *NetConf, br *netlink.Bridge, veth *netlink.Veth, ips []*current.IPConfig) error {
	var gwLink netlink.Link = br
	if conf.Vlan != 0 {
		if !vlanFiltering(br) {
			return drift("bridge %s does not filter VLANs (vlan %d)", conf.Bridge, conf.Vlan)
		}
		vlans, err := netlinksafe.BridgeVlanList()
		if err != nil {
			return linkErr(err, "listing the VLANs of bridge ports")
		}
		if err := checkPortVlan(vlans, veth, conf.Vlan, conf.PreserveDefaultVlan); err != nil {
			return drift("%v", err)
		}
		if conf.IsGateway {
			if gwLink, err = checkVlanGateway(vlans, br, conf.Vlan, conf.PreserveDefaultVlan); err != nil {
				return drift("%v", err)
			}
		}
	}
	if !conf.IsGateway {
		return nil
	}
	name := gwLink.Attrs().Name
	addrs, err := netlinksafe.AddrList(gwLink, netlink.FAMILY_ALL)
	if err != nil {
		return linkErr(err, "listing addresses of %s", name)
	}
	for _, gw := range gatewayNets(ips) {
		found := false
		for _, a := range addrs {
			found = found || (a.IP.Equal(gw.IP) && a.Mask.String() == gw.Mask.String())
		}
		if !found {
			return drift("%s lacks gateway address %s", name, gw)
		}
	}
	return nil
}

func drift(format string, args ...any) error {
	return libmini.Errorf(libmini.CodeCheckFailed, "CHECK: "+format, args...)
}

// validateExpectedIPs checks, in the pod's netns, that every address of ips
// is on ifName with its prefix length, and that the kernel's route to its
// subnet exists.
func validateExpectedIPs(ifName string, ips []*current.IPConfig) error {
	l, err := netlinksafe.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("finding %s: %w", ifName, err)
	}
	addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing the addresses of %s: %w", ifName, err)
	}
	for _, ipc := range ips {
		want := ipc.Address
		found := false
		for _, a := range addrs {
			if a.IP.Equal(want.IP) && a.Mask.String() == want.Mask.String() {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s is not on %s", want.String(), ifName)
		}
		subnet := &net.IPNet{IP: want.IP.Mask(want.Mask), Mask: want.Mask}
		family := netlink.FAMILY_V6
		if want.IP.To4() != nil {
			family = netlink.FAMILY_V4
		}
		routes, err := netlinksafe.RouteListFiltered(family, &netlink.Route{Dst: subnet}, netlink.RT_FILTER_DST)
		if err != nil {
			return fmt.Errorf("listing the routes to %s: %w", subnet, err)
		}
		if len(routes) == 0 {
			return fmt.Errorf("no route to %s, the subnet of %s", subnet, want.String())
		}
	}
	return nil
}
