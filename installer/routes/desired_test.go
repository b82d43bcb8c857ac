package routes

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

var local = []LocalNet{
	{Prefix: netip.MustParsePrefix("10.99.0.0/24"), Addr: netip.MustParseAddr("10.99.0.11"), LinkIndex: 2},
	{Prefix: netip.MustParsePrefix("fd00:99::/64"), Addr: netip.MustParseAddr("fd00:99::11"), LinkIndex: 2},
	{Prefix: netip.MustParsePrefix("10.99.0.128/25"), Addr: netip.MustParseAddr("10.99.0.130"), LinkIndex: 3},
	{Prefix: netip.MustParsePrefix("172.18.0.0/24"), Addr: netip.MustParseAddr("172.18.0.1"), LinkIndex: 4}, // own bridge
}

// routeSet renders a desired set as sorted "dst via gw dev N" strings.
func routeSet(m map[netip.Prefix]Route) []string {
	var out []string
	for _, r := range m {
		out = append(out, r.String()+" dev "+string(rune('0'+r.LinkIndex))+" node "+r.Node)
	}
	sort.Strings(out)
	return out
}

func node(name string, ips []string, pods ...string) nodes.Node {
	return nodes.Node{Name: name, InternalIPs: ips, PodCIDRs: pods}
}

// TestDesired is the decision without overlay (mode none), as before the
// overlay existed.
func TestDesired(t *testing.T) {
	self := node("a", []string{"10.99.0.11", "fd00:99::11"}, "172.18.0.0/24", "fd00:18::/64")
	tests := []struct {
		name        string
		others      []nodes.Node
		want        []string
		unreachable []string
		invalid     []string
	}{
		{"none", nil, nil, nil, nil},
		{"one ipv4", []nodes.Node{node("b", []string{"10.99.0.12"}, "172.18.1.0/24")},
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b"}, nil, nil},
		{"dual stack", []nodes.Node{node("b", []string{"fd00:99::12", "10.99.0.12"}, "172.18.1.0/24", "fd00:18:0:1::/64")},
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b", "fd00:18:0:1::/64 via fd00:99::12 dev 2 node b"}, nil, nil},
		{"longest local prefix wins", []nodes.Node{node("b", []string{"10.99.0.200"}, "172.18.1.0/24")},
			[]string{"172.18.1.0/24 via 10.99.0.200 dev 3 node b"}, nil, nil},
		{"first internal ip of the family", []nodes.Node{node("b", []string{"10.99.0.12", "10.99.0.13"}, "172.18.1.0/24")},
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b"}, nil, nil},
		{"no podCIDR yet", []nodes.Node{node("b", []string{"10.99.0.12"})}, nil, nil, nil},
		{"not on a local subnet", []nodes.Node{node("b", []string{"192.168.7.7"}, "172.18.1.0/24")},
			nil, []string{"b: InternalIP 192.168.7.7 is not on a subnet of a local interface"}, nil},
		{"no ip of the family", []nodes.Node{node("b", []string{"10.99.0.12"}, "172.18.1.0/24", "fd00:18:0:1::/64")},
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b"}, []string{"b: no IPv6 InternalIP for podCIDR fd00:18:0:1::/64"}, nil},
		{"no internal ip", []nodes.Node{node("b", nil, "172.18.1.0/24")},
			nil, []string{"b: no IPv4 InternalIP for podCIDR 172.18.1.0/24"}, nil},
		{"invalid podCIDR", []nodes.Node{node("b", []string{"10.99.0.12"}, "10.0.0.0/24; rm -rf /"), node("c", []string{"10.99.0.13"}, "172.18.2.0/24")},
			[]string{"172.18.2.0/24 via 10.99.0.13 dev 2 node c"}, nil, []string{`b: node "b": invalid podCIDR "10.0.0.0/24; rm -rf /": not a CIDR`}},
		{"invalid internal ip", []nodes.Node{node("b", []string{"10.99.0.12 ; reboot"}, "172.18.1.0/24")},
			nil, nil, []string{`b: node "b": invalid internal IP "10.99.0.12 ; reboot": not an IP address`}},
		{"loopback internal ip", []nodes.Node{node("b", []string{"127.0.0.1"}, "172.18.1.0/24")},
			nil, nil, []string{`b: node "b": invalid internal IP "127.0.0.1": not a routable unicast address`}},
		{"invalid name", []nodes.Node{node("B_x", []string{"10.99.0.12"}, "172.18.1.0/24")},
			nil, nil, []string{`B_x: invalid node name "B_x": not a DNS subdomain`}},
		{"claims our subnet", []nodes.Node{node("b", []string{"10.99.0.12"}, "172.18.0.0/25")},
			nil, nil, []string{"b: podCIDR 172.18.0.0/25 overlaps this node's podCIDR 172.18.0.0/24"}},
		{"claims the underlay", []nodes.Node{node("b", []string{"10.99.0.12"}, "10.99.0.0/26")},
			nil, nil, []string{"b: podCIDR 10.99.0.0/26 overlaps local subnet 10.99.0.0/24"}},
		{"claims our address", []nodes.Node{node("b", []string{"10.99.0.11"}, "172.18.1.0/24")},
			nil, nil, []string{"b: InternalIP 10.99.0.11 is an address of this node"}},
		{"two nodes, one subnet", []nodes.Node{
			node("b", []string{"10.99.0.12"}, "172.18.1.0/24"),
			node("c", []string{"10.99.0.13"}, "172.18.1.0/25"),
			node("d", []string{"10.99.0.14"}, "172.18.4.0/24"),
		}, []string{"172.18.4.0/24 via 10.99.0.14 dev 2 node d"}, nil, []string{
			`b: podCIDR 172.18.1.0/24 overlaps node "c"'s 172.18.1.0/25`,
			`c: podCIDR 172.18.1.0/25 overlaps node "b"'s 172.18.1.0/24`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Desired("a", append([]nodes.Node{self}, tt.others...), local, overlay.None)
			if diff := cmp.Diff(tt.want, routeSet(rep.Desired)); diff != "" {
				t.Errorf("desired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.unreachable, flat(rep.Unreachable)); diff != "" {
				t.Errorf("unreachable (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.invalid, flat(rep.Invalid)); diff != "" {
				t.Errorf("invalid (-want +got):\n%s", diff)
			}
		})
	}
}

func flat(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

// TestDesiredSelfInvalid: this node's own bad values do not stop routes to
// the others (the conflist step reports them).
func TestDesiredSelfInvalid(t *testing.T) {
	rep := Desired("a", []nodes.Node{node("a", []string{"10.99.0.11"}, "bogus"), node("b", []string{"10.99.0.12"}, "172.18.1.0/24")}, local, overlay.None)
	if got := strings.Join(routeSet(rep.Desired), ","); got != "172.18.1.0/24 via 10.99.0.12 dev 2 node b" {
		t.Errorf("desired = %s", got)
	}
}

// peerSet renders overlay peers as "node underlay mac nexthop,...".
func peerSet(ps []overlay.Peer) []string {
	var out []string
	for _, p := range ps {
		var hops []string
		for _, h := range p.NextHops {
			hops = append(hops, h.String())
		}
		out = append(out, p.Node+" "+p.Underlay.String()+" "+p.MAC.String()+" "+strings.Join(hops, ","))
	}
	return out
}

func pathSet(m map[string]Path) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+string(v))
	}
	sort.Strings(out)
	return out
}

// TestDesiredOverlay is the per-peer, per-family decision with every mode:
// direct where the peer's InternalIP of the family is on a local subnet (not
// in vxlan mode), VXLAN where the mode allows it and both nodes have an
// underlay address of one family, and what is invalid whatever the mode.
func TestDesiredOverlay(t *testing.T) {
	dual := node("a", []string{"10.99.0.11", "fd00:99::11"}, "172.18.0.0/24", "fd00:18::/64")
	v6only := node("a", []string{"fd00:99::11"}, "172.18.0.0/24", "fd00:18::/64")
	notLocal := node("a", []string{"10.50.0.1"}, "172.18.0.0/24")
	b := func(ips ...string) nodes.Node { return node("b", ips, "172.18.1.0/24", "fd00:18:0:1::/64") }
	tests := []struct {
		name     string
		mode     overlay.Mode
		self     nodes.Node
		others   []nodes.Node
		underlay string
		want     []string
		peers    []string
		paths    []string
		problems []string // unreachable and invalid reasons
	}{
		{"auto: same subnet, direct", overlay.Auto, dual, []nodes.Node{b("10.99.0.12", "fd00:99::12")}, "10.99.0.11",
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b", "fd00:18:0:1::/64 via fd00:99::12 dev 2 node b"},
			nil, []string{"b=direct"}, nil},
		{"auto: other subnet, both families over an IPv4 underlay", overlay.Auto, dual, []nodes.Node{b("192.168.7.7")}, "10.99.0.11",
			[]string{"172.18.1.0/24 via 172.18.1.0 vxlan dev 0 node b", "fd00:18:0:1::/64 via fd00:18:0:1:: vxlan dev 0 node b"},
			[]string{"b 192.168.7.7 0a:58:c0:a8:07:07 172.18.1.0,fd00:18:0:1::"}, []string{"b=vxlan"}, nil},
		{"auto: per family, IPv4 direct and IPv6 (no IPv6 InternalIP) over VXLAN", overlay.Auto, dual, []nodes.Node{b("10.99.0.12")}, "10.99.0.11",
			[]string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b", "fd00:18:0:1::/64 via fd00:18:0:1:: vxlan dev 0 node b"},
			[]string{"b 10.99.0.12 0a:58:0a:63:00:0c fd00:18:0:1::"}, []string{"b=vxlan"}, nil},
		{"auto: IPv6 on a local subnet, IPv4 not", overlay.Auto, dual, []nodes.Node{b("192.168.7.7", "fd00:99::12")}, "10.99.0.11",
			[]string{"172.18.1.0/24 via 172.18.1.0 vxlan dev 0 node b", "fd00:18:0:1::/64 via fd00:99::12 dev 2 node b"},
			[]string{"b 192.168.7.7 0a:58:c0:a8:07:07 172.18.1.0"}, []string{"b=vxlan"}, nil},
		{"vxlan: always, even on a shared subnet", overlay.VXLAN, dual, []nodes.Node{b("10.99.0.12", "fd00:99::12")}, "10.99.0.11",
			[]string{"172.18.1.0/24 via 172.18.1.0 vxlan dev 0 node b", "fd00:18:0:1::/64 via fd00:18:0:1:: vxlan dev 0 node b"},
			[]string{"b 10.99.0.12 0a:58:0a:63:00:0c 172.18.1.0,fd00:18:0:1::"}, []string{"b=vxlan"}, nil},
		{"none: other subnet is unreachable", overlay.None, dual, []nodes.Node{b("192.168.7.7")}, "",
			nil, nil, []string{"b=unreachable"}, []string{"b: InternalIP 192.168.7.7 is not on a subnet of a local interface; no IPv6 InternalIP for podCIDR fd00:18:0:1::/64"}},
		{"auto: no InternalIP of the underlay family", overlay.Auto, dual, []nodes.Node{node("b", []string{"fd00:77::7"}, "172.18.1.0/24")}, "10.99.0.11",
			nil, nil, []string{"b=unreachable"}, []string{"b: no IPv4 InternalIP for podCIDR 172.18.1.0/24; no VXLAN for podCIDR 172.18.1.0/24: no IPv4 InternalIP for the IPv4 underlay"}},
		{"auto: this node's InternalIP is not local, no underlay", overlay.Auto, notLocal, []nodes.Node{node("b", []string{"192.168.7.7"}, "172.18.1.0/24"), node("c", []string{"10.99.0.13"}, "172.18.2.0/24")}, "",
			[]string{"172.18.2.0/24 via 10.99.0.13 dev 2 node c"}, nil, []string{"b=unreachable", "c=direct"},
			[]string{"b: InternalIP 192.168.7.7 is not on a subnet of a local interface; no VXLAN: none of this node's InternalIPs is a local address to send it from"}},
		{"vxlan: IPv6 underlay when this node has no IPv4 InternalIP", overlay.VXLAN, v6only, []nodes.Node{b("10.77.0.7", "fd00:77::7")}, "fd00:99::11",
			[]string{"172.18.1.0/24 via 172.18.1.0 vxlan dev 0 node b", "fd00:18:0:1::/64 via fd00:18:0:1:: vxlan dev 0 node b"},
			[]string{"b fd00:77::7 " + overlay.MAC(netip.MustParseAddr("fd00:77::7")).String() + " 172.18.1.0,fd00:18:0:1::"}, []string{"b=vxlan"}, nil},
		{"auto: a node without podCIDR has no path", overlay.Auto, dual, []nodes.Node{node("b", []string{"192.168.7.7"})}, "10.99.0.11",
			nil, nil, nil, nil},
		{"auto: InternalIP of this node's", overlay.Auto, dual, []nodes.Node{b("192.168.7.7", "10.99.0.130")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{"b: InternalIP 10.99.0.130 is an address of this node"}},
		{"vxlan: this node's InternalIP, not a local address", overlay.VXLAN, node("a", []string{"10.99.0.11", "10.50.0.1"}, "172.18.0.0/24"), []nodes.Node{b("10.50.0.1")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{"b: InternalIP 10.50.0.1 is an address of this node"}},
		{"auto: loopback", overlay.Auto, dual, []nodes.Node{b("127.0.0.2")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "127.0.0.2": not a routable unicast address`}},
		{"auto: multicast", overlay.Auto, dual, []nodes.Node{b("239.1.1.1")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "239.1.1.1": not a routable unicast address`}},
		{"auto: link-local", overlay.Auto, dual, []nodes.Node{b("169.254.9.9")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "169.254.9.9": not a routable unicast address`}},
		{"auto: IPv6 link-local", overlay.Auto, dual, []nodes.Node{b("fe80::1")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "fe80::1": not a routable unicast address`}},
		{"auto: unspecified", overlay.Auto, dual, []nodes.Node{b("0.0.0.0")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "0.0.0.0": not a routable unicast address`}},
		{"vxlan: unparsable", overlay.VXLAN, dual, []nodes.Node{b("10.99.0.12\n")}, "10.99.0.11",
			nil, nil, []string{"b=invalid"}, []string{`b: node "b": invalid internal IP "10.99.0.12\n": not an IP address`}},
		{"auto: two nodes with one underlay address", overlay.Auto, dual, []nodes.Node{
			b("192.168.7.7"), node("c", []string{"192.168.7.7"}, "172.18.2.0/24"), node("d", []string{"192.168.7.8"}, "172.18.3.0/24"),
		}, "10.99.0.11",
			[]string{"172.18.3.0/24 via 172.18.3.0 vxlan dev 0 node d"}, []string{"d 192.168.7.8 0a:58:c0:a8:07:08 172.18.3.0"},
			[]string{"b=invalid", "c=invalid", "d=vxlan"}, []string{
				`b: VTEP MAC 0a:58:c0:a8:07:07 of InternalIP 192.168.7.7 is also node "c"'s`,
				`c: VTEP MAC 0a:58:c0:a8:07:07 of InternalIP 192.168.7.7 is also node "b"'s`,
			}},
		{"auto: overlapping podCIDRs over VXLAN", overlay.Auto, dual, []nodes.Node{
			node("b", []string{"192.168.7.7"}, "172.18.1.0/24"), node("c", []string{"192.168.7.8"}, "172.18.1.0/25"),
		}, "10.99.0.11", nil, nil, []string{"b=invalid", "c=invalid"}, []string{
			`b: podCIDR 172.18.1.0/24 overlaps node "c"'s 172.18.1.0/25`,
			`c: podCIDR 172.18.1.0/25 overlaps node "b"'s 172.18.1.0/24`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Desired("a", append([]nodes.Node{tt.self}, tt.others...), local, tt.mode)
			underlay := ""
			if rep.Underlay.IsValid() {
				underlay = rep.Underlay.String()
			}
			if underlay != tt.underlay {
				t.Errorf("underlay = %q, want %q", underlay, tt.underlay)
			}
			if diff := cmp.Diff(tt.want, routeSet(rep.Desired)); diff != "" {
				t.Errorf("desired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.peers, peerSet(rep.Peers)); diff != "" {
				t.Errorf("peers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.paths, pathSet(rep.Paths)); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.problems, append(flat(rep.Unreachable), flat(rep.Invalid)...)); diff != "" {
				t.Errorf("unreachable and invalid (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDesiredMACCollision: two IPv6 underlay addresses whose hashed VTEP
// MACs collide make both nodes invalid (a device can reach only one).
func TestDesiredMACCollision(t *testing.T) {
	seen := map[string]netip.Addr{}
	var x, y netip.Addr
	for i := uint32(1); !x.IsValid(); i++ { // a birthday collision of 32 bits: ~80000 tries
		a := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x77, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		mac := overlay.MAC(a).String()
		if other, ok := seen[mac]; ok {
			x, y = other, a
		}
		seen[mac] = a
	}
	self := node("a", []string{"fd00:99::11"}, "fd00:18::/64")
	rep := Desired("a", []nodes.Node{self, node("b", []string{x.String()}, "fd00:18:0:1::/64"), node("c", []string{y.String()}, "fd00:18:0:2::/64")}, local, overlay.Auto)
	if len(rep.Desired) != 0 || len(rep.Peers) != 0 || len(rep.Invalid) != 2 {
		t.Errorf("colliding MACs of %s and %s: desired %v, peers %v, invalid %v", x, y, rep.Desired, rep.Peers, rep.Invalid)
	}
}

// TestRefuseOverlapsSweep checks the sorted sweep against every pair, on
// random nested and duplicate subnets of both families: the same nodes are
// refused, each for a subnet that does overlap the one its reason names.
func TestRefuseOverlapsSweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 5000))
	for round := range 200 {
		var wanted []Route
		for i := range 2 + rng.IntN(30) {
			var p netip.Prefix
			if rng.IntN(4) == 0 {
				p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0x18, byte(rng.IntN(4))}), 40+rng.IntN(25)).Masked()
			} else {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 18, byte(rng.IntN(4)), byte(rng.IntN(256))}), 20+rng.IntN(10)).Masked()
			}
			wanted = append(wanted, Route{Dst: p, Node: fmt.Sprintf("n%d", i)})
		}
		brute := map[string]bool{}
		for i := range wanted {
			for j := range wanted {
				if i != j && wanted[i].Dst.Overlaps(wanted[j].Dst) {
					brute[wanted[i].Node] = true
				}
			}
		}
		rep := Report{Invalid: map[string]string{}}
		rep.refuseOverlaps(wanted)
		got := map[string]bool{}
		for name, reason := range rep.Invalid {
			got[name] = true
			var mine, other, otherNode string
			if _, err := fmt.Sscanf(strings.ReplaceAll(reason, `"`, " "), "podCIDR %s overlaps node %s 's %s", &mine, &otherNode, &other); err != nil {
				t.Fatalf("round %d: reason %q: %v", round, reason, err)
			}
			if !netip.MustParsePrefix(mine).Overlaps(netip.MustParsePrefix(other)) || otherNode == name {
				t.Errorf("round %d: %s: %q", round, name, reason)
			}
		}
		if !maps.Equal(brute, got) {
			t.Fatalf("round %d: sweep refused %v, every pair %v; input %v", round, got, brute, wanted)
		}
	}
}

// TestDesiredMACShared: three nodes claiming one InternalIP (one VTEP MAC)
// are all refused, the first by name naming the last, the others the
// first, in whatever order the list gives them.
func TestDesiredMACShared(t *testing.T) {
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24")
	list := []nodes.Node{
		node("d", []string{"192.168.7.7"}, "172.18.4.0/24"), self,
		node("b", []string{"192.168.7.7"}, "172.18.2.0/24"),
		node("c", []string{"192.168.7.7"}, "172.18.3.0/24"),
		node("e", []string{"192.168.7.8"}, "172.18.5.0/24"),
	}
	rep := Desired("a", list, local, overlay.Auto)
	mac := "VTEP MAC 0a:58:c0:a8:07:07 of InternalIP 192.168.7.7 is also node "
	want := map[string]string{"b": mac + `"d"'s`, "c": mac + `"b"'s`, "d": mac + `"b"'s`}
	if diff := cmp.Diff(want, rep.Invalid); diff != "" {
		t.Errorf("invalid (-want +got):\n%s", diff)
	}
	if len(rep.Peers) != 1 || rep.Peers[0].Node != "e" {
		t.Errorf("peers %v, want e only", rep.Peers)
	}
}
