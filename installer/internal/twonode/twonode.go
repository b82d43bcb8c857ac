// Package twonode builds, for tests, two simulated nodes: network namespaces
// joined by a veth pair, node a holding 10.99.0.11/24 and fd00:99::11/64 and
// node b .12 and ::12, each with a netlink handle bound to it so that any
// goroutine can act on it. Everything is removed when the test ends.
package twonode

import (
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Node is one simulated node.
type Node struct {
	NS   ns.NetNS
	H    netlinksafe.Handle
	Link string // its end of the underlay veth
}

// Handle opens a netlink handle on n, closed when t ends.
func Handle(t testing.TB, n ns.NetNS) netlinksafe.Handle {
	t.Helper()
	fd, err := netns.GetFromPath(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fd.Close() })
	h, err := netlinksafe.NewHandleAt(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// New makes the two nodes (skipping the test when not root).
func New(t testing.TB) (a, b Node) {
	t.Helper()
	a.NS, b.NS = minitest.NewNS(t), minitest.NewNS(t)
	a.H, b.H = Handle(t, a.NS), Handle(t, b.NS)
	a.Link, b.Link = minitest.Name("ua"), minitest.Name("ub")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.Link}, PeerName: b.Link, PeerNamespace: netlink.NsFd(int(b.NS.Fd()))}
	if err := a.H.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for i, n := range []Node{a, b} {
		for _, name := range []string{"lo", n.Link} {
			l, err := n.H.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.H.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
			if name == "lo" {
				continue
			}
			for _, cidr := range []string{fmt.Sprintf("10.99.0.%d/24", 11+i), fmt.Sprintf("fd00:99::%d/64", 11+i)} {
				addr, _ := netlink.ParseAddr(cidr)
				addr.Flags = unix.IFA_F_NODAD // usable at once, no 1-2 s of DAD
				if err := n.H.AddrAdd(l, addr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The kernel's linkwatch marks a new veth operationally up (and gives it
	// a working qdisc) asynchronously, up to a second later under load;
	// until then packets are dropped. Wait for it, so that tests can send.
	for _, n := range []Node{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := n.H.LinkByName(n.Link)
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is still %s after 5 s", n.Link, l.Attrs().OperState)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return a, b
}

// Routes lists h's main-table routes with protocol proto as sorted
// "dst via gw" strings.
func Routes(t testing.TB, h netlinksafe.Handle, proto netlink.RouteProtocol) []string {
	t.Helper()
	filter := &netlink.Route{Protocol: proto, Table: unix.RT_TABLE_MAIN}
	rts, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rts {
		dst, gw := "default", "-"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		if r.Gw != nil {
			gw = r.Gw.String()
		}
		out = append(out, dst+" via "+gw)
	}
	sort.Strings(out)
	return out
}

// MustNet parses a CIDR.
func MustNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}
