package routes

import (
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/nodes"
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
			rep := Desired("a", append([]nodes.Node{self}, tt.others...), local)
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
	rep := Desired("a", []nodes.Node{node("a", []string{"10.99.0.11"}, "bogus"), node("b", []string{"10.99.0.12"}, "172.18.1.0/24")}, local)
	if got := strings.Join(routeSet(rep.Desired), ","); got != "172.18.1.0/24 via 10.99.0.12 dev 2 node b" {
		t.Errorf("desired = %s", got)
	}
}
