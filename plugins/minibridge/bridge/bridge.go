package bridge

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/internal/crashpoint"
	"github.com/minicni/minicni/internal/sum256"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// VethPrefix starts every host-side veth name minibridge creates, so an
// admin (or a GC) recognises them in `ip link`.
const VethPrefix = "mbr"

// DefaultMTU is used when the config says 0 and the host netns has no
// default route.
const DefaultMTU = 1500

// HostVethName returns the name of the host end of the veth for one
// attachment: VethPrefix and 12 hex digits of SHA-256(containerID, ifname),
// 15 bytes in all (IFNAMSIZ). It is deterministic so DEL and CHECK find the
// host end without the pod's netns, which may be gone.
func HostVethName(containerID, ifName string) string {
	sum := sum256.Sum([]byte(containerID + "\x00" + ifName))
	return VethPrefix + hex.EncodeToString(sum[:6])
}

// Add attaches the pod in args.Netns to the bridge: IPAM ADD, bridge
// creation or repair (up, MTU, gateway addresses, accept_ra=0, VLAN
// filtering with vlan), forwarding, a veth pair named args.IfName in the
// pod, addresses and routes in the pod, the host end's port options
// (hairpin, isolated, VLAN).
// On any failure from the IPAM's ADD on, it runs the IPAM's DEL and removes
// the veth, so a failed ADD leaves neither a veth nor a reservation (the
// bridge, once created, stays: it is the node's, shared by every pod).
func Add(ctx context.Context, conf *NetConf, args *libmini.CmdArgs, node Node) (_ *current.Result, retErr error) {
	log := node.log()
	if err := validateArgs(args); err != nil {
		return nil, err
	}
	netns, err := openNetNS(args.Netns)
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	host, err := openRtnl() // the host netns' requests, on one socket
	if err != nil {
		return nil, err
	}
	defer host.Close()
	hostName := HostVethName(args.ContainerID, args.IfName)
	if err := hostNameFree(host, hostName, args); err != nil {
		return nil, err
	}
	mtu, err := resolveMTU(host, conf.MTU)
	if err != nil {
		return nil, err
	}

	// The rollback is armed before the IPAM's ADD: an IPAM that fails,
	// times out or returns no address may still hold a reservation, and its
	// DEL is idempotent. The in-process miniipam is the exception: its
	// failing ADD has released what it reserved, and a DEL would only wait
	// again for the lock whose timeout may be why it failed.
	vethMade := false
	ipamHeld := conf.IPAM.Type != InProcessIPAM
	defer func() {
		if retErr == nil {
			return
		}
		if vethMade {
			if err := host.delLink(hostName); err != nil {
				log.Warn("rollback: removing host veth", "veth", hostName, "err", err)
			}
		}
		if ipamHeld {
			if err := (ipamCall{conf, args}).del(context.WithoutCancel(ctx)); err != nil {
				log.Warn("rollback: IPAM DEL", "ipam", conf.IPAM.Type, "err", err)
			}
		}
		log.Warn("ADD failed and was rolled back", "err", retErr)
	}()

	res, hasV6, err := ipamResult(ctx, conf, args)
	if err != nil {
		return nil, err
	}
	ipamHeld = true
	br, gwLink, err := prepareHost(host, conf, res.IPs, mtu, hasV6)
	if err != nil {
		return nil, err
	}
	vethMade = true // the name was free above: whatever holds it now is ours
	hostVeth, err := createVeth(host, conf, br, netns, args, hostName, mtu, res)
	if err != nil {
		return nil, err
	}
	if err := configurePodNS(netns, args, res, hasV6, conf.EnableDAD); err != nil {
		return nil, err
	}
	if hostVeth, err = waitUp(host, hostVeth.Attrs().Index, hostName, node.upTimeout()); err != nil {
		return nil, err
	}
	if err := listInterfaces(host, conf, res, hostVeth, br, gwLink, mtu); err != nil {
		return nil, err
	}
	log.Info("attached", "bridge", conf.Bridge, "veth", hostName, "mtu", mtu, "ips", ipStrings(res.IPs))
	return res, nil
}

// hostNameFree fails when the host end of args' attachment exists already.
// It asks before the IPAM's ADD rather than waiting for the veth's creation
// to fail with EEXIST: for an attachment made before, the IPAM hands back
// that attachment's reservation, and the rollback of the failed ADD would
// then release the address of the pod that holds it.
func hostNameFree(host *rtnl, hostName string, args *libmini.CmdArgs) error {
	if taken, _ := host.linkExists(hostName); taken {
		return libmini.Errorf(libmini.CodeLink,
			"host veth %s of container %s interface %s already exists: the attachment was made before (DEL it first)",
			hostName, args.ContainerID, args.IfName)
	}
	return nil
}

// ipamResult runs the IPAM's ADD and returns minibridge's result with its
// addresses, routes (planRoutes) and DNS, and whether it has an IPv6
// address. The interfaces are filled in by createVeth and listInterfaces.
func ipamResult(ctx context.Context, conf *NetConf, args *libmini.CmdArgs) (_ *current.Result, hasV6 bool, _ error) {
	ipamRes, err := ipamCall{conf, args}.add(ctx)
	if err != nil {
		return nil, false, err
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		IPs:        ipamRes.IPs,
		Routes:     ipamRes.Routes,
		DNS:        ipamRes.DNS,
	}
	hasV6 = planRoutes(conf, res)
	return res, hasV6, nil
}

// prepareHost readies the node for the pod: the bridge (ensureBridge), with
// a vlan and isGateway that VLAN's gateway veth, the gateway addresses
// (isGateway) and forwarding. It returns the bridge and the link holding the
// gateways: the bridge, or with a vlan that VLAN's gateway veth (the
// bridge's own port is not in the VLAN).
func prepareHost(host *rtnl, conf *NetConf, ips []*current.IPConfig, mtu int, hasV6 bool) (*netlink.Bridge, netlink.Link, error) {
	br, err := ensureBridge(host, conf, mtu)
	if err != nil {
		return nil, nil, err
	}
	var gwLink netlink.Link = br
	if conf.Vlan != 0 && conf.IsGateway {
		if gwLink, err = ensureVlanGateway(br, conf.Vlan, conf.PreserveDefaultVlan, mtu); err != nil {
			return nil, nil, err
		}
	}
	if conf.IsGateway {
		if err := ensureGateways(host, gwLink, gatewayNets(ips), conf.ForceAddress); err != nil {
			return nil, nil, err
		}
	}
	if err := enableForwarding(hasV6); err != nil {
		return nil, nil, err
	}
	return br, gwLink, nil
}

// createVeth lists the bridge, the host end and the pod end in
// res.Interfaces (the bridge and the pod end without their MAC yet: see
// configurePod and listInterfaces), creates the veth pair (makeVeth: the
// host end already a port of br and up, the pod end args.IfName in the
// pod's netns) and sets the host end's port options (attach) before the
// pod end goes up, so the port never forwards without them.
func createVeth(host *rtnl, conf *NetConf, br *netlink.Bridge, netns ns.NetNS, args *libmini.CmdArgs, hostName string, mtu int, res *current.Result) (netlink.Link, error) {
	res.Interfaces = []*current.Interface{{Name: conf.Bridge}, {Name: hostName}, {Name: args.IfName, Sandbox: netns.Path()}}
	l, err := makeVeth(host, conf, br, hostName, args.IfName, mtu, netns)
	if err != nil {
		return nil, err
	}
	res.Interfaces[1].Mac = macOf(l)
	// The host end must not take addresses or routes from router
	// advertisements (as the reference plugins' veth setup has it). The pod
	// end is down, so no packet can reach it before this.
	if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", hostName), "0", true); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.VethCreated)
	if err := attach(host, conf, br, l); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.VethAttached)
	return l, nil
}

// configurePodNS runs configurePod in the pod's netns, on this thread.
func configurePodNS(netns ns.NetNS, args *libmini.CmdArgs, res *current.Result, hasV6, dad bool) error {
	err := inNetNS(netns, func() error { return configurePod(args.IfName, res, hasV6, dad) })
	return libmini.Wrap(err, libmini.CodeLink, "configuring the pod's netns "+args.Netns)
}

// listInterfaces completes res.Interfaces: the MACs of the host end and of
// the bridge, the VLAN's gateway link when it is not the bridge, and from
// CNI 1.1.0 on every interface's MTU.
func listInterfaces(host *rtnl, conf *NetConf, res *current.Result, hostVeth netlink.Link, br *netlink.Bridge, gwLink netlink.Link, mtu int) error {
	res.Interfaces[1].Mac = macOf(hostVeth)
	// The bridge's MAC may change as ports come and go unless it was set
	// explicitly, so it is read last.
	brLink, err := host.linkByName(conf.Bridge)
	if err != nil {
		return libmini.Wrap(err, libmini.CodeLink, "reading bridge "+conf.Bridge)
	}
	res.Interfaces[0].Mac = brLink.Attrs().HardwareAddr.String()
	if gwLink != br {
		// As the reference bridge does, the VLAN's gateway link is listed
		// after the pod interface.
		res.Interfaces = append(res.Interfaces, &current.Interface{Name: gwLink.Attrs().Name, Mac: gwLink.Attrs().HardwareAddr.String()})
	}
	// interfaces[].mtu exists from CNI 1.1.0; older results do not carry it.
	if ok, _ := cniversion.GreaterThanOrEqualTo(conf.CNIVersion, "1.1.0"); ok {
		for _, iface := range res.Interfaces {
			iface.Mtu = mtu
		}
	}
	return nil
}

// Del detaches the pod: it removes the veth (found by its host-side name, so
// the pod's netns is not needed, and a missing one is success) and then runs
// the IPAM's DEL. It never removes the bridge.
func Del(ctx context.Context, conf *NetConf, args *libmini.CmdArgs, node Node) error {
	log := node.log()

	if err := validateArgs(args); err != nil {
		return err
	}
	var errs []error
	hostName := HostVethName(args.ContainerID, args.IfName)
	if err := delLink(hostName); err != nil {
		errs = append(errs, err)
	}
	if err := (ipamCall{conf, args}).del(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("DEL failed", "err", err)
		return err
	}
	log.Info("detached", "veth", hostName)
	return nil
}

// validateArgs checks CNI_IFNAME for callers that bypass PluginMain (which checks
// it too): the name becomes a link name and part of a sysctl path.
func validateArgs(args *libmini.CmdArgs) error {
	if err := libmini.ValidateIfNameAs(libmini.CodeInvalidEnv, "CNI_IFNAME", args.IfName); err != nil {
		return err
	}
	if args.ContainerID == "" {
		return libmini.Errorf(libmini.CodeInvalidEnv, "CNI_CONTAINERID is empty")
	}
	return nil
}

// openNetNS opens the pod's netns; a path that is missing or not a netns is
// an invalid CNI_NETNS.
func openNetNS(path string) (ns.NetNS, error) {
	if path == "" {
		return nil, libmini.Errorf(libmini.CodeInvalidEnv, "CNI_NETNS is empty")
	}
	netns, err := ns.GetNS(path)
	if err != nil {
		return nil, types.NewError(libmini.CodeInvalidEnv, fmt.Sprintf("cannot open CNI_NETNS %q", path), err.Error())
	}
	// GetNS accepts any file on procfs; ask the kernel what it is.
	if typ, err := unix.IoctlRetInt(int(netns.Fd()), unix.NS_GET_NSTYPE); err != nil || typ != unix.CLONE_NEWNET {
		_ = netns.Close()
		why := fmt.Sprintf("it is a namespace of type %#x", typ)
		if err != nil {
			why = fmt.Sprintf("ioctl NS_GET_NSTYPE: %v", err)
		}
		return nil, types.NewError(libmini.CodeInvalidEnv, fmt.Sprintf("CNI_NETNS %q is not a network namespace", path), why)
	}
	// The CNI library's skel refuses the plugin's own netns only after ADD has run; by then
	// the host would hold a pod interface and a reservation.
	var pod, self unix.Stat_t
	if unix.Fstat(int(netns.Fd()), &pod) == nil && unix.Stat("/proc/thread-self/ns/net", &self) == nil &&
		pod.Dev == self.Dev && pod.Ino == self.Ino {
		_ = netns.Close()
		return nil, libmini.Errorf(libmini.CodeInvalidEnv, "CNI_NETNS %q is minibridge's own netns, not a pod's", path)
	}
	return netns, nil
}

// resolveMTU returns mtu, or when it is 0 the MTU of the link holding the
// default route of the current (host) netns's main table, IPv4 first, else
// DefaultMTU. Of several default routes, the first the kernel lists whose
// link can be read wins (defaultRoutes).
func resolveMTU(host *rtnl, mtu int) (int, error) {
	if mtu != 0 {
		return mtu, nil
	}
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		found, ok := 0, false
		err := host.defaultRoutes(family, func(idx int) bool {
			l, err := host.linkByIndex(idx)
			if err != nil {
				return false // the link went away meanwhile
			}
			found, ok = l.Attrs().MTU, true
			return true
		})
		if err != nil {
			return 0, linkErr(err, "listing routes to find the default-route interface's MTU")
		}
		if ok {
			return found, nil
		}
	}
	return DefaultMTU, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

// planRoutes points every IP at the pod interface (index 2 of the result's
// interfaces) and, when isDefaultGateway, adds a default route via the
// family's first gateway unless the IPAM already gave one for that family.
// It reports whether there is an IPv6 address.
func planRoutes(conf *NetConf, res *current.Result) (hasV6 bool) {
	haveDefault := map[bool]bool{} // by "is IPv4"
	for _, r := range res.Routes {
		if isDefault(&r.Dst) {
			haveDefault[r.Dst.IP.To4() != nil] = true
		}
	}
	for _, ipc := range res.IPs {
		ipc.Interface = current.Int(2)
		v4 := ipc.Address.IP.To4() != nil
		hasV6 = hasV6 || !v4
		if !conf.IsDefaultGateway || ipc.Gateway == nil || haveDefault[v4] {
			continue
		}
		dst := net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		if v4 {
			dst = net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
		res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: ipc.Gateway})
		haveDefault[v4] = true
	}
	return hasV6
}

// gatewayNets returns gateway/prefix for every IP that has a gateway.
func gatewayNets(ips []*current.IPConfig) []*net.IPNet {
	var gws []*net.IPNet
	for _, ipc := range ips {
		if ipc.Gateway == nil {
			continue
		}
		gw := ipc.Gateway
		if v4 := gw.To4(); v4 != nil {
			gw = v4
		}
		gws = append(gws, &net.IPNet{IP: gw, Mask: ipc.Address.Mask})
	}
	return gws
}

// ensureBridge creates the bridge or repairs it (type, MTU, promiscuous
// mode, VLAN filtering when conf has a vlan, up, accept_ra=0 and
// accept_dad=0 before it is up: gatewayLinkIPv6). Concurrent
// ADDs race to create it: EEXIST is not an error, and the link is read back
// either way.
func ensureBridge(host *rtnl, conf *NetConf, mtu int) (*netlink.Bridge, error) {
	l, err := host.linkByName(conf.Bridge)
	if errors.Is(err, unix.ENODEV) {
		// Only the first ADD on a node gets here.
		attrs := netlink.NewLinkAttrs()
		attrs.Name = conf.Bridge
		attrs.MTU = mtu
		// An explicitly set MAC keeps the bridge's MAC fixed as ports come
		// and go (otherwise the kernel adopts the lowest port MAC, and every
		// pod's neighbour entry for the gateway goes stale).
		attrs.HardwareAddr = randomMAC()
		nb := &netlink.Bridge{LinkAttrs: attrs}
		if conf.Vlan != 0 {
			on := true
			nb.VlanFiltering = &on
		}
		if err := netlink.LinkAdd(nb); err != nil && !errors.Is(err, unix.EEXIST) {
			if conf.Vlan != 0 {
				return nil, vlanError(fmt.Sprintf("creating bridge %s with VLAN filtering", conf.Bridge), err)
			}
			return nil, linkErr(err, "creating bridge %s", conf.Bridge)
		}
		l, err = host.linkByName(conf.Bridge)
	}
	if err != nil {
		return nil, linkErr(err, "reading bridge %s", conf.Bridge)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, libmini.Errorf(libmini.CodeLink, "%s exists but is a %s link, not a bridge", conf.Bridge, l.Type())
	}
	if err := gatewayLinkIPv6(conf.Bridge); err != nil {
		return nil, err
	}
	if conf.Vlan != 0 && !vlanFiltering(br) {
		// Ports keep the default VLAN they joined with: the pods already on
		// the bridge keep reaching each other and the bridge.
		if err := netlink.BridgeSetVlanFiltering(br, true); err != nil {
			return nil, vlanError(fmt.Sprintf("turning VLAN filtering on for bridge %s", conf.Bridge), err)
		}
	}
	if br.MTU != mtu {
		if err := netlink.LinkSetMTU(br, mtu); err != nil {
			return nil, linkErr(err, "setting MTU %d on bridge %s", mtu, conf.Bridge)
		}
	}
	if conf.PromiscMode && br.Promisc == 0 {
		if err := netlink.SetPromiscOn(br); err != nil {
			return nil, linkErr(err, "setting bridge %s promiscuous", conf.Bridge)
		}
	}
	if br.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return nil, linkErr(err, "setting bridge %s up", conf.Bridge)
		}
	}
	return br, nil
}

// ensureGateways puts every gateway address on br (the bridge, or a VLAN's
// gateway link). A global address of the same family in none of the
// gateways' subnets means the node's subnet changed: CodeGatewayConflict
// naming both addresses, or, with force, the old address is removed. EEXIST
// (a concurrent ADD added the same address) is not an error.
func ensureGateways(host *rtnl, br netlink.Link, gws []*net.IPNet, force bool) error {
	name := br.Attrs().Name
	for _, gw := range gws {
		v4 := gw.IP.To4() != nil
		family := netlink.FAMILY_V6
		if v4 {
			family = netlink.FAMILY_V4
		}
		addrs, err := host.addrList(br.Attrs().Index, family)
		if err != nil {
			return linkErr(err, "listing addresses of bridge %s", name)
		}
		present := false
		for _, a := range addrs {
			if a.IP.Equal(gw.IP) && a.Mask.String() == gw.Mask.String() {
				present = true
				continue
			}
			if a.IP.IsLinkLocalUnicast() || inAnySubnet(a.IPNet, gws) {
				continue
			}
			if !force {
				return libmini.Errorf(libmini.CodeGatewayConflict,
					"bridge %s already holds %s, outside the subnet of gateway %s (did the node's subnet change?); remove it or set forceAddress to replace it",
					name, a.IPNet, gw)
			}
			if err := netlink.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return linkErr(err, "removing %s from bridge %s", a.IPNet, name)
			}
		}
		if present {
			continue
		}
		addr := &netlink.Addr{IPNet: gw}
		if !v4 {
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", name), "0", false); err != nil {
				return err
			}
			// The gateway is the node's own address: waiting a second
			// for duplicate detection would only delay every pod.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(br, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return linkErr(err, "adding gateway %s to bridge %s", gw, name)
		}
	}
	return nil
}

// inAnySubnet reports whether a and one of gws share a family and a subnet
// (same prefix length and network).
func inAnySubnet(a *net.IPNet, gws []*net.IPNet) bool {
	for _, gw := range gws {
		if a.Mask.String() == gw.Mask.String() && gw.Contains(a.IP) && (a.IP.To4() != nil) == (gw.IP.To4() != nil) {
			return true
		}
	}
	return false
}

// enableForwarding turns on IPv4 forwarding and, when the pod has an IPv6
// address, IPv6 forwarding; each sysctl is written only when not yet 1.
func enableForwarding(v6 bool) error {
	if err := setSysctl("net/ipv4/ip_forward", "1", false); err != nil {
		return err
	}
	if v6 {
		return setSysctl("net/ipv6/conf/all/forwarding", "1", false)
	}
	return nil
}

// configurePod runs inside the pod's netns: arp_notify (announce the new
// MAC), accept_ra=0 (refuseRouterAdverts), for IPv6 accept_dad=0 (the IPAM guarantees uniqueness, and DAD would
// hold the address back for a second or more) unless dad asks for
// duplicate address detection (accept_dad=1, enhanced_dad=1, as the
// reference bridge's enabledad), then addresses and up (podAddrsUp),
// then the routes as given (addRoutes).
func configurePod(ifName string, res *current.Result, v6, dad bool) error {
	if err := setSysctl(fmt.Sprintf("net/ipv4/conf/%s/arp_notify", ifName), "1", false); err != nil {
		return err
	}
	if err := refuseRouterAdverts(ifName); err != nil {
		return err
	}
	if v6 {
		acceptDAD := "0"
		if dad {
			acceptDAD = "1"
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/enhanced_dad", ifName), "1", true); err != nil {
				return err
			}
		}
		if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", ifName), acceptDAD, false); err != nil {
			return err
		}
	}
	// One socket in the pod's netns for all of the pod's requests.
	c, err := openRtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	l, err := c.linkByName(ifName)
	if err != nil {
		return linkErr(err, "finding %s in the pod", ifName)
	}
	res.Interfaces[2].Mac = macOf(l)
	if err := podAddrsUp(c, l, res); err != nil {
		return linkErr(err, "configuring %s in the pod", ifName)
	}
	if err := addRoutes(c, l, res); err != nil {
		return linkErr(err, "configuring the routes of %s in the pod", ifName)
	}
	return nil
}

// attach sets the port options of the host end l, already a port of br:
// hairpin mode and the isolated flag and, with a vlan, an untagged port of
// that VLAN. A new port has neither hairpin nor isolation: a request is sent
// only for what the config turns on.
func attach(host *rtnl, conf *NetConf, br *netlink.Bridge, l netlink.Link) error {
	hostName := l.Attrs().Name
	if l.Attrs().MasterIndex != br.Index {
		return libmini.Errorf(libmini.CodeLink, "host veth %s is not a port of bridge %s", hostName, conf.Bridge)
	}
	if conf.HairpinMode {
		if err := host.setPortFlag(l.Attrs().Index, nl.IFLA_BRPORT_MODE); err != nil {
			return linkErr(err, "setting hairpin mode of %s", hostName)
		}
	}
	if conf.PortIsolation {
		if err := host.setPortFlag(l.Attrs().Index, nl.IFLA_BRPORT_ISOLATED); err != nil {
			return linkErr(err, "setting the isolated flag of %s to true", hostName)
		}
	}
	if conf.Vlan != 0 {
		return setPortVlan(l, conf.Vlan, conf.PreserveDefaultVlan)
	}
	return nil
}

// delLink removes a link by name (rtnl.delLink) on a socket of its own.
func delLink(name string) error {
	return withRtnl(func(c *rtnl) error { return c.delLink(name) })
}

// randomMAC returns a random unicast, locally administered MAC.
func randomMAC() net.HardwareAddr {
	// math/rand/v2's generator is seeded by the runtime from the kernel: a
	// MAC needs to be unlikely to collide, not secret, and crypto/rand
	// would add its DRBG's package init to every start.
	r := rand.Uint64()
	mac := net.HardwareAddr{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24), byte(r >> 32), byte(r >> 40)}
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

func ipStrings(ips []*current.IPConfig) []string {
	s := make([]string, len(ips))
	for i, ipc := range ips {
		s[i] = ipc.Address.String()
	}
	return s
}

// linkErr is the CodeLink error for a link, address, route or sysctl
// operation that failed: msg says what was being done (format and a, as
// fmt.Sprintf), details carry err.
func linkErr(err error, format string, a ...any) error {
	return types.NewError(libmini.CodeLink, fmt.Sprintf(format, a...), err.Error())
}
