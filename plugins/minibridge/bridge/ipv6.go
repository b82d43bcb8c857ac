package bridge

import "fmt"

// refuseRouterAdverts sets accept_ra=0 on the pod interface, inside the
// pod's netns, before it is up: a pod must not take addresses or routes
// from router advertisements another pod on the bridge sends (the pod-side
// half of CVE-2020-10749; the bridge has accept_ra=0 from ensureBridge, the
// host end from the plugins library's veth setup). It is set for every pod,
// IPv4-only ones too: the kernel gives every interface an IPv6 link-local
// address, so a rogue advertisement would give an IPv4-only pod IPv6
// addresses and a default route through the sender. With accept_ra=0 the
// pod also sends no router solicitations. A kernel without IPv6 has no such
// setting, which is fine.
func refuseRouterAdverts(ifName string) error {
	return setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", ifName), "0", true)
}

// gatewayLinkIPv6 readies the link holding the pods' gateways (the bridge,
// or a VLAN's gateway veth), before it is set up:
//   - accept_ra=0: a pod's router advertisements must not configure the
//     node (CVE-2020-10749);
//   - accept_dad=0: no duplicate address detection for its link-local
//     address. While that address is tentative (a second or more after the
//     link first gets a carrier) the kernel cannot send a neighbour
//     solicitation for a packet it forwards into the pod subnet (from
//     another node or from outside: it needs a usable link-local source),
//     so the first pods' first forwarded IPv6 packets would wait or be
//     lost. The addresses on this link are the node's own and its gateways
//     (added with IFA_F_NODAD anyway), unique by construction.
//
// A kernel without IPv6 has neither setting, which is fine.
func gatewayLinkIPv6(name string) error {
	// CVE-2020-10749: a pod's router advertisements must not configure the host.
	if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", name), "0", true); err != nil {
		return err
	}
	return setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_dad", name), "0", true)
}
