package bridge

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/internal/sum256"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The VLAN behaviour follows the reference bridge plugin (v1.10.0), so an
// admin can swap one for the other: the bridge filters VLANs; the host end
// of each pod is an untagged port of its VLAN only (PVID), unless
// preserveDefaultVlan keeps the bridge's default VLAN on it too; the
// gateway of a VLAN lives on a veth named bridge.vid whose peer is an
// untagged port of that VLAN, since the bridge's own port stays in the
// default VLAN, shared by every network on the bridge without a vlan.

// errNoVlanFiltering explains EOPNOTSUPP from the kernel on a VLAN request.
const errNoVlanFiltering = "this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING): the vlan key cannot be honoured"

// vlanError is a CodeLink error for a failed VLAN operation, explaining
// EOPNOTSUPP.
func vlanError(what string, err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return linkErr(err, "%s: %s", what, errNoVlanFiltering)
	}
	return linkErr(err, "%s", what)
}

// vlanFiltering reports whether the bridge filters VLANs.
func vlanFiltering(br *netlink.Bridge) bool {
	return br.VlanFiltering != nil && *br.VlanFiltering
}

// setPortVlan makes port an untagged member of vid with vid as its PVID.
// Unless preserve, it first removes the port's other VLANs (the bridge's
// default VLAN, which every port joins), so the port reaches only vid.
// Repeating it is harmless.
func setPortVlan(port netlink.Link, vid int, preserve bool) error {
	name := port.Attrs().Name
	if !preserve {
		all, err := netlinksafe.BridgeVlanList()
		if err != nil {
			return vlanError("listing the VLANs of bridge ports", err)
		}
		for _, v := range all[int32(port.Attrs().Index)] {
			if int(v.Vid) == vid {
				continue
			}
			if err := netlink.BridgeVlanDel(port, v.Vid, false, false, false, true); err != nil && !errors.Is(err, unix.ENOENT) {
				return vlanError(fmt.Sprintf("removing VLAN %d from port %s", v.Vid, name), err)
			}
		}
	}
	if err := netlink.BridgeVlanAdd(port, uint16(vid), true, true, false, true); err != nil {
		return vlanError(fmt.Sprintf("making %s an untagged port of VLAN %d", name, vid), err)
	}
	return nil
}

// checkPortVlan verifies what setPortVlan did, from a BridgeVlanList dump.
func checkPortVlan(all map[int32][]*nl.BridgeVlanInfo, port netlink.Link, vid int, preserve bool) error {
	name := port.Attrs().Name
	var member bool
	var others []string
	for _, v := range all[int32(port.Attrs().Index)] {
		if int(v.Vid) == vid {
			member = true
			if !v.PortVID() || !v.EngressUntag() {
				return fmt.Errorf("port %s is in VLAN %d but not as its untagged PVID", name, vid)
			}
			continue
		}
		others = append(others, strconv.Itoa(int(v.Vid)))
	}
	if !member {
		return fmt.Errorf("port %s is not in VLAN %d", name, vid)
	}
	if !preserve && len(others) > 0 {
		return fmt.Errorf("port %s is also in VLAN(s) %v", name, others)
	}
	return nil
}

// vlanGatewayPeer names the bridge-side end of a VLAN's gateway veth.
func vlanGatewayPeer(br string, vid int) string {
	sum := sum256.Sum([]byte(br + "\x00" + strconv.Itoa(vid)))
	return "mbv" + hex.EncodeToString(sum[:6])
}

// ensureVlanGateway returns the link that holds the gateway addresses of
// VLAN vid: a veth named VlanGateway(bridge, vid), created when missing,
// whose peer is an untagged port of vid on the bridge (PVID); both ends up,
// accept_ra=0 and accept_dad=0 (gatewayLinkIPv6). Concurrent ADDs race to create it: EEXIST is not an error,
// and either way the peer is (re)configured, which is idempotent. A link of
// that name made by the reference bridge (a veth with another peer name) is
// used as it is.
func ensureVlanGateway(br *netlink.Bridge, vid int, preserve bool, mtu int) (netlink.Link, error) {
	name := VlanGateway(br.Name, vid)
	l, err := netlinksafe.LinkByName(name)
	if notFound := (netlink.LinkNotFoundError{}); errors.As(err, &notFound) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: vlanGatewayPeer(br.Name, vid)}
		if err := netlink.LinkAdd(veth); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, linkErr(err, "creating VLAN %d gateway veth %s", vid, name)
		}
		l, err = netlinksafe.LinkByName(name)
	}
	if err != nil {
		return nil, linkErr(err, "reading VLAN gateway %s", name)
	}
	gw, ok := l.(*netlink.Veth)
	if !ok {
		return nil, libmini.Errorf(libmini.CodeLink, "%s exists but is a %s link, not the veth minibridge uses as VLAN %d's gateway", name, l.Type(), vid)
	}
	peer, err := netlink.LinkByIndex(gw.ParentIndex)
	if err != nil {
		return nil, linkErr(err, "finding the peer of VLAN gateway %s", name)
	}
	if peer.Attrs().MasterIndex != br.Index {
		if err := netlink.LinkSetMaster(peer, br); err != nil {
			return nil, linkErr(err, "attaching %s (peer of %s) to bridge %s", peer.Attrs().Name, name, br.Name)
		}
	}
	if err := setPortVlan(peer, vid, preserve); err != nil {
		return nil, err
	}
	if err := gatewayLinkIPv6(name); err != nil {
		return nil, err
	}
	for _, end := range []netlink.Link{peer, gw} {
		if end.Attrs().MTU != mtu {
			if err := netlink.LinkSetMTU(end, mtu); err != nil {
				return nil, linkErr(err, "setting MTU %d on %s", mtu, end.Attrs().Name)
			}
		}
		if err := netlink.LinkSetUp(end); err != nil {
			return nil, linkErr(err, "setting %s up", end.Attrs().Name)
		}
	}
	return gw, nil
}

// checkVlanGateway verifies the VLAN gateway veth: it exists, is up, and its
// peer is on the bridge as an untagged port of vid. It returns the link.
func checkVlanGateway(all map[int32][]*nl.BridgeVlanInfo, br *netlink.Bridge, vid int, preserve bool) (netlink.Link, error) {
	name := VlanGateway(br.Name, vid)
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("VLAN %d gateway %s: %v", vid, name, err)
	}
	gw, ok := l.(*netlink.Veth)
	if !ok {
		return nil, fmt.Errorf("VLAN gateway %s is a %s link, not a veth", name, l.Type())
	}
	peer, err := netlink.LinkByIndex(gw.ParentIndex)
	if err != nil {
		return nil, fmt.Errorf("peer of VLAN gateway %s: %v", name, err)
	}
	if peer.Attrs().MasterIndex != br.Index {
		return nil, fmt.Errorf("%s, peer of VLAN gateway %s, is not attached to bridge %s", peer.Attrs().Name, name, br.Name)
	}
	if gw.OperState != netlink.OperUp {
		return nil, fmt.Errorf("VLAN gateway %s is %s", name, gw.OperState)
	}
	return gw, checkPortVlan(all, peer, vid, preserve)
}
