package nodestatus

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// Bridge is minibridge's bridge in the node's namespace.
type Bridge struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	Up     bool   `json:"up"`
	// Addresses are its global addresses (the gateways), prefix included.
	Addresses []string `json:"addresses"`
	MTU       int      `json:"mtu"`
	Ports     int      `json:"ports"`
}

const secBridge = "bridge"

func (r *Report) bridge(n *network) {
	b := &Bridge{Name: n.bridge.Bridge, Addresses: []string{}}
	r.Bridge = b
	l, err := netlinksafe.LinkByName(b.Name)
	if notFound := (netlink.LinkNotFoundError{}); errors.As(err, &notFound) {
		return // no pod yet: the first ADD creates it
	}
	if err != nil {
		r.blind(secBridge, fmt.Sprintf("cannot read link %s: %v", b.Name, err), "run as root in the node's network namespace")
		return
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		r.problem(secBridge, fmt.Sprintf("%s is a %s link, not a bridge: every ADD fails", b.Name, l.Type()),
			fmt.Sprintf("delete it (ip link del %s) or set another bridge name in the conflist", b.Name))
		return
	}
	b.Exists, b.Up, b.MTU = true, br.Flags&net.FlagUp != 0, br.MTU
	links, err := netlinksafe.LinkList()
	if err != nil {
		r.blind(secBridge, "cannot list links: "+err.Error(), "run as root")
		return
	}
	for _, p := range links {
		if p.Attrs().MasterIndex == br.Index {
			b.Ports++
		}
	}
	addrs, err := netlinksafe.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		r.blind(secBridge, "cannot list the addresses of "+b.Name+": "+err.Error(), "run as root")
		return
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			b.Addresses = append(b.Addresses, a.IPNet.String())
		}
	}
	if b.Ports > 0 && !b.Up {
		r.problem(secBridge, fmt.Sprintf("bridge %s is down with %d ports: those pods have no network", b.Name, b.Ports),
			"ip link set "+b.Name+" up")
	}
	if b.Ports > 0 && n.bridge.IsGateway && n.bridge.Vlan == 0 && len(b.Addresses) == 0 {
		r.problem(secBridge, fmt.Sprintf("bridge %s has no gateway address with %d ports: those pods cannot leave their subnet", b.Name, b.Ports),
			"the next pod ADD puts it back; or add it by hand (ip addr add GATEWAY/PREFIX dev "+b.Name+")")
	}
}
