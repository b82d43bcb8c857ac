package bridge

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestRtnlMatchesNetlink: rtnl's reads give what the netlink library's
// package-level functions give for the same objects: links by name and by
// index, a missing link (the same error text, and unix.ENODEV), and the
// addresses of one link among others' (a peer address, a label, IPv6).
func TestRtnlMatchesNetlink(t *testing.T) {
	n := minitest.NewNS(t)
	ipCmd(t, n, "link", "add", "la", "mtu", "1400", "type", "veth", "peer", "name", "lb")
	ipCmd(t, n, "link", "set", "la", "up")
	ipCmd(t, n, "link", "set", "lb", "up")
	for _, a := range [][]string{
		{"10.1.0.1", "peer", "10.1.0.2/32", "dev", "la"},
		{"10.2.0.1/24", "dev", "la", "label", "la:x"},
		{"10.3.0.1/24", "dev", "la"},
		{"10.3.0.2/24", "dev", "lb"},
		{"fd00:1::1/64", "dev", "la", "nodad"},
		{"fd00:2::1/64", "dev", "lb", "nodad"},
	} {
		ipCmd(t, n, append([]string{"addr", "add"}, a...)...)
	}
	minitest.Do(t, n, func() error {
		c, err := openRtnl()
		if err != nil {
			return err
		}
		defer c.Close()
		want, err := netlinksafe.LinkByName("la")
		if err != nil {
			return err
		}
		for _, get := range []func() (netlink.Link, error){
			func() (netlink.Link, error) { return c.linkByName("la") },
			func() (netlink.Link, error) { return c.linkByIndex(want.Attrs().Index) },
		} {
			got, err := get()
			if err != nil {
				return err
			}
			ga, wa := *got.Attrs(), *want.Attrs()
			ga.Statistics, wa.Statistics = nil, nil // rtnl asks for none
			if d := cmp.Diff(wa, ga); d != "" {
				t.Errorf("link (-netlink +rtnl):\n%s", d)
			}
		}
		_, werr := netlink.LinkByName("nosuch")
		_, gerr := c.linkByName("nosuch")
		if gerr == nil || werr == nil || gerr.Error() != werr.Error() || !errors.Is(gerr, unix.ENODEV) {
			t.Errorf("missing link: rtnl %v, netlink %v", gerr, werr)
		}
		if ok, err := c.linkExists("nosuch"); ok || err != nil {
			t.Errorf("linkExists(nosuch) = %v, %v", ok, err)
		}
		if ok, err := c.linkExists("la"); !ok || err != nil {
			t.Errorf("linkExists(la) = %v, %v", ok, err)
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			want, err := netlinksafe.AddrList(want, family)
			if err != nil {
				return err
			}
			got, err := c.addrList(want[0].LinkIndex, family)
			if err != nil {
				return err
			}
			if d := cmp.Diff(want, got); d != "" || len(got) < 2 {
				t.Errorf("family %d: %d addresses (-netlink +rtnl):\n%s", family, len(got), d)
			}
		}
		return nil
	})
}

// TestRtnlWritesMatchNetlink: the addresses and routes rtnl adds in one
// netns are those the netlink library's AddrAdd and RouteAddEcmp add in
// another (ip's listing of both compared): IPv4 prefixes with and without
// a broadcast, IPv6, and routes with a gateway, metrics, a priority, a
// table, link scope, and a second IPv6 route to a destination (a nexthop).
func TestRtnlWritesMatchNetlink(t *testing.T) {
	addrs := []string{"10.40.0.5/24", "10.41.0.4/31", "10.42.0.9/32", "fd40::5/64"}
	table, scopeLink := 100, int(netlink.SCOPE_LINK)
	routes := []*types.Route{
		{Dst: *mustCIDR(t, "0.0.0.0/0"), GW: net.ParseIP("10.40.0.1")},
		{Dst: *mustCIDR(t, "10.50.0.0/16"), GW: net.ParseIP("10.40.0.2"), MTU: 1400, AdvMSS: 1360, Priority: 7},
		{Dst: *mustCIDR(t, "10.51.0.0/16"), Table: &table},
		{Dst: *mustCIDR(t, "10.52.0.0/16"), Scope: &scopeLink},
		{Dst: *mustCIDR(t, "::/0"), GW: net.ParseIP("fd40::1")},
		{Dst: *mustCIDR(t, "fd50::/64"), GW: net.ParseIP("fd40::2")},
		{Dst: *mustCIDR(t, "fd50::/64"), GW: net.ParseIP("fd40::3")},
	}
	ips := []*current.IPConfig{{Address: *mustCIDR(t, "10.40.0.5/24"), Gateway: net.ParseIP("10.40.0.1")}}
	show := func(n ns.NetNS) string {
		var out []string
		for _, args := range [][]string{{"-d", "addr", "show", "dev", "la"}, {"route", "show", "table", "all", "dev", "la"}, {"-6", "route", "show", "table", "all"}} {
			minitest.Do(t, n, func() error {
				b, err := execCommand("ip", args...)
				out = append(out, string(b))
				return err
			})
		}
		return strings.Join(out, "")
	}
	var got, want string
	for _, lib := range []bool{true, false} {
		n := minitest.NewNS(t)
		ipCmd(t, n, "link", "add", "la", "type", "veth", "peer", "name", "lb")
		ipCmd(t, n, "link", "set", "lb", "up")
		minitest.Do(t, n, func() error {
			c, err := openRtnl()
			if err != nil {
				return err
			}
			defer c.Close()
			l, err := c.linkByName("la")
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if lib {
					err = netlink.AddrAdd(l, &netlink.Addr{IPNet: mustCIDR(t, a)})
				} else {
					err = c.addrAdd(l.Attrs().Index, mustCIDR(t, a))
				}
				if err != nil {
					return fmt.Errorf("adding %s: %w", a, err)
				}
			}
			if lib {
				err = netlink.LinkSetUp(l)
			} else {
				err = c.linkSetUp(l.Attrs().Index)
			}
			if err != nil {
				return err
			}
			for _, r := range routes {
				kr := kernelRoute(l.Attrs().Index, r, ips)
				if lib {
					err = netlink.RouteAddEcmp(kr)
				} else {
					err = c.routeAdd(kr)
				}
				if err != nil {
					return fmt.Errorf("adding route %v: %w", r, err)
				}
			}
			return nil
		})
		if lib {
			want = show(n)
		} else {
			got = show(n)
		}
	}
	// The links' MACs and the IPv6 link-local addresses derived from them differ.
	norm := regexp.MustCompile(`link/ether \S+ brd \S+|fe80::\S+|valid_lft \S+ preferred_lft \S+`)
	got, want = norm.ReplaceAllString(got, "X"), norm.ReplaceAllString(want, "X")
	if d := cmp.Diff(want, got); d != "" || !strings.Contains(got, "10.50.0.0/16 via 10.40.0.2") || !strings.Contains(got, "nexthop via fd40::3") {
		t.Errorf("ip's listing (-netlink +rtnl):\n%s\nrtnl:\n%s", d, got)
	}
}

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}
