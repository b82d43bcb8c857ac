package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/ipam/miniipam/store"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
)

// hostLocal is the reference IPAM whose store has miniipam's layout, so
// minibridge can probe it (host-local answers STATUS without looking).
const hostLocal = "host-local"

// Status tells a runtime whether minibridge could serve an ADD now
// (libmini.CodeNotAvailable, 50, when not) and whether pods already attached
// are affected too (libmini.CodeLimitedAvailable, 51). It answers 50 when:
//   - the IPAM plugin named in ipam.type is not an executable file in
//     CNI_PATH. This is checked for InProcessIPAM too, which minibridge runs
//     in-process: a runtime and an admin expect the binary to be installed;
//   - the IPAM's own STATUS fails (delegated, or miniipam's allocator
//     in-process, which checks that its store can be written and that no
//     range set is full), or, for host-local, which answers STATUS without
//     looking, its store (miniipam's layout) cannot be written;
//   - the bridge's name is held by a link that is not a bridge, or the
//     bridge holds an address outside the subnets of its gateways while
//     forceAddress is off: ADD would fail (the latter with 103).
//
// It answers 51 when the bridge has ports but is administratively down or,
// with isGateway, lacks a gateway address. The gateways are derived from the
// ipam ranges when they are host-local-style keys (the gateway key, else the
// subnet's first address, as miniipam and host-local put in their results);
// a range set counts as served when the bridge holds the gateway of any of
// its ranges. A node without the bridge passes: ADD creates it.
//
// Every problem found is in the one error: 51 when any is, msg joins the
// causes, details the underlying errors.
func Status(ctx context.Context, conf *NetConf, args *libmini.CmdArgs, node Node) error {
	log := node.log()

	found := ipamStatus(ctx, conf, args)
	found = append(found, bridgeStatus(conf, args.StdinData)...)
	e := combine(found)
	if e == nil {
		return nil
	}
	// Info, not Warn: a runtime calls STATUS every few seconds, and
	// stderr goes to its log; Info goes only to a configured logFile.
	log.Info("not available", "code", e.Code, "msg", e.Msg, "details", e.Details)
	return e
}

// combine makes one error of several: code 51 when any is 51, else 50.
func combine(found []*types.Error) *types.Error {
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	code := libmini.CodeNotAvailable
	var msgs, details []string
	for _, e := range found {
		if e.Code == libmini.CodeLimitedAvailable {
			code = e.Code
		}
		msgs = append(msgs, e.Msg)
		if e.Details != "" {
			details = append(details, e.Details)
		}
	}
	return types.NewError(code, strings.Join(msgs, "; "), strings.Join(details, "; "))
}

// ipamStatus checks the IPAM binary, then the IPAM's STATUS (and
// host-local's store).
func ipamStatus(ctx context.Context, conf *NetConf, args *libmini.CmdArgs) []*types.Error {
	typ := conf.IPAM.Type
	var found []*types.Error
	if e := findIPAM(typ, args.Path); e != nil {
		found = append(found, e)
		if typ != InProcessIPAM {
			return found // nothing to delegate to
		}
	}
	if err := (ipamCall{conf, args}).status(ctx); err != nil {
		found = append(found, ipamStatusError(typ, err))
	}
	if typ == hostLocal {
		if c, err := config.LoadConf(args.StdinData, ""); err == nil {
			d := store.New(c.DataDir, c.Name)
			if err := d.ProbeWritable(); err != nil {
				found = append(found, types.NewError(libmini.CodeNotAvailable,
					fmt.Sprintf("the IPAM store %s of %s cannot be written: %s", d.Dir, typ, store.Cause(err)), err.Error()))
			}
		}
	}
	return found
}

// findIPAM is CodeNotAvailable when typ is not an executable file in
// cniPath (CNI_PATH), where delegation looks for it.
func findIPAM(typ, cniPath string) *types.Error {
	paths := filepath.SplitList(cniPath)
	find := libmini.FindInPath
	if libmini.IPAMExec != nil {
		find = libmini.IPAMExec.FindInPath
	}
	path, err := find(typ, paths)
	if err != nil {
		return types.NewError(libmini.CodeNotAvailable,
			fmt.Sprintf("IPAM plugin %s (ipam.type) is not in CNI_PATH", typ), fmt.Sprintf("CNI_PATH=%q: %v", cniPath, err))
	}
	if libmini.IPAMExec != nil {
		return nil // a fake: no file to look at
	}
	fi, err := os.Stat(path)
	if err != nil {
		return types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("IPAM plugin %s cannot be read at %s", typ, path), err.Error())
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return types.NewError(libmini.CodeNotAvailable,
			fmt.Sprintf("IPAM plugin %s at %s is not executable", typ, path), fmt.Sprintf("mode %s", fi.Mode()))
	}
	return nil
}

// ipamStatusError keeps a 50 or 51 from the IPAM (naming it) and turns any
// other failure into 50: the IPAM cannot serve ADDs either way.
func ipamStatusError(typ string, err error) *types.Error {
	e, ok := libmini.AsCNIError(err)
	if !ok {
		e = types.NewError(libmini.CodeIPAM, err.Error(), "")
	}
	if e.Code == libmini.CodeNotAvailable || e.Code == libmini.CodeLimitedAvailable {
		return types.NewError(e.Code, fmt.Sprintf("IPAM %s: %s", typ, e.Msg), e.Details)
	}
	details := fmt.Sprintf("code %d: %s", e.Code, e.Msg)
	if e.Details != "" {
		details += ": " + e.Details
	}
	return types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("IPAM plugin %s failed its STATUS: %s", typ, e.Msg), details)
}

// bridgeStatus looks at the bridge in the current netns (the node's).
func bridgeStatus(conf *NetConf, stdin []byte) []*types.Error {
	l, err := netlinksafe.LinkByName(conf.Bridge)
	if notFound := (netlink.LinkNotFoundError{}); errors.As(err, &notFound) {
		return nil // ADD creates it
	}
	if err != nil {
		return []*types.Error{types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("cannot read bridge %s", conf.Bridge), err.Error())}
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return []*types.Error{types.NewError(libmini.CodeNotAvailable,
			fmt.Sprintf("%s exists but is a %s link, not a bridge: ADD cannot attach pods to it", conf.Bridge, l.Type()),
			fmt.Sprintf("link %s: type %s, index %d", conf.Bridge, l.Type(), l.Attrs().Index))}
	}
	ports, err := bridgePorts(br)
	if err != nil {
		return []*types.Error{types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("cannot list the ports of bridge %s", conf.Bridge), err.Error())}
	}
	var found []*types.Error
	if br.Flags&net.FlagUp == 0 && len(ports) > 0 {
		found = append(found, types.NewError(libmini.CodeLimitedAvailable,
			fmt.Sprintf("bridge %s is down with %s attached: those pods have no network", conf.Bridge, describePorts(ports)),
			fmt.Sprintf("link %s: flags %s, operstate %s; ports %s", conf.Bridge, br.Flags, br.OperState, strings.Join(ports, " "))))
	}
	if !conf.IsGateway {
		return found
	}
	sets := gatewaySets(stdin)
	if sets == nil {
		return found // not host-local-style keys: the gateways are unknown
	}
	gwName, addrs, err := gatewayAddrs(conf, br)
	if err != nil {
		return append(found, types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("cannot list the addresses of %s", gwName), err.Error()))
	}
	var all []*net.IPNet
	for _, set := range sets {
		all = append(all, set...)
		if len(ports) == 0 || holdsAny(addrs, set) {
			continue // without pods, ADD puts the gateway back
		}
		found = append(found, types.NewError(libmini.CodeLimitedAvailable,
			fmt.Sprintf("%s has lost its gateway address %s with %s attached to bridge %s: those pods cannot leave their subnet",
				gwName, set[0], describePorts(ports), conf.Bridge),
			addrDetails(gwName, addrs)))
	}
	if conf.ForceAddress {
		return found // ADD replaces a conflicting address
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() || inAnySubnet(a.IPNet, all) || !sameFamilyAsAny(a.IP, all) {
			continue
		}
		found = append(found, types.NewError(libmini.CodeNotAvailable,
			fmt.Sprintf("%s holds %s, outside the subnets of its gateways (%s): ADD fails until it is removed or forceAddress is set",
				gwName, a.IPNet, joinNets(all)),
			addrDetails(gwName, addrs)))
	}
	return found
}

// gatewayAddrs returns the link that holds the gateway addresses (the bridge,
// or with vlan the VLAN's gateway veth) and its addresses. A VLAN gateway
// that does not exist holds none: ADD creates it, and with pods attached
// they have lost their gateway.
func gatewayAddrs(conf *NetConf, br *netlink.Bridge) (string, []netlink.Addr, error) {
	var link netlink.Link = br
	if conf.Vlan != 0 {
		name := VlanGateway(conf.Bridge, conf.Vlan)
		l, err := netlinksafe.LinkByName(name)
		if notFound := (netlink.LinkNotFoundError{}); errors.As(err, &notFound) {
			return name, nil, nil
		}
		if err != nil {
			return name, nil, err
		}
		link = l
	}
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_ALL)
	return link.Attrs().Name, addrs, err
}

// bridgePorts lists the names of the links attached to br.
func bridgePorts(br *netlink.Bridge) ([]string, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, err
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports, nil
}

// describePorts is "2 ports (mbr1, mbr2)", naming at most three.
func describePorts(ports []string) string {
	names := ports
	more := ""
	if len(names) > 3 {
		names, more = names[:3], ", ..."
	}
	unit := "ports"
	if len(ports) == 1 {
		unit = "port"
	}
	return fmt.Sprintf("%d %s (%s%s)", len(ports), unit, strings.Join(names, ", "), more)
}

// gatewaySets returns, per ipam range set, the gateway/prefix of each of its
// ranges, or nil when the ipam keys are not host-local-style.
func gatewaySets(stdin []byte) [][]*net.IPNet {
	c, err := config.LoadConf(stdin, "")
	if err != nil {
		return nil
	}
	sets := make([][]*net.IPNet, 0, len(c.Sets))
	for _, set := range c.Sets {
		var gws []*net.IPNet
		for _, r := range set {
			gws = append(gws, &net.IPNet{IP: r.Gateway.AsSlice(), Mask: net.CIDRMask(r.Subnet.Bits(), r.Subnet.Addr().BitLen())})
		}
		sets = append(sets, gws)
	}
	return sets
}

// holdsAny reports whether addrs hold one of gws (address and prefix).
func holdsAny(addrs []netlink.Addr, gws []*net.IPNet) bool {
	for _, gw := range gws {
		for _, a := range addrs {
			if a.IP.Equal(gw.IP) && a.Mask.String() == gw.Mask.String() {
				return true
			}
		}
	}
	return false
}

func sameFamilyAsAny(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		if (n.IP.To4() != nil) == (ip.To4() != nil) {
			return true
		}
	}
	return false
}

// addrDetails lists a link's addresses for an error's details.
func addrDetails(link string, addrs []netlink.Addr) string {
	s := make([]string, 0, len(addrs))
	for _, a := range addrs {
		s = append(s, a.IPNet.String())
	}
	if len(s) == 0 {
		return "addresses of " + link + ": none"
	}
	return "addresses of " + link + ": " + strings.Join(s, " ")
}

func joinNets(nets []*net.IPNet) string {
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.String()
	}
	return strings.Join(s, ", ")
}
