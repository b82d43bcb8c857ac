// Package twonode builds, for tests, two simulated nodes: network namespaces
// joined by a veth pair (New: node a holding 10.99.0.11/24 and
// fd00:99::11/64, node b .12 and ::12), or on two subnets joined by a router
// namespace (NewRouted), each with a netlink handle bound to it so that any
// goroutine can act on it, and pod-like namespaces behind a node (AddPod).
// Everything is removed when the test ends.
package twonode

import (
	"net"
	"os"
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
	link(t, a.H, a.Link, b.H, b.NS, b.Link)
	up(t, a.NS, a.H, a.Link, "10.99.0.11/24", "fd00:99::11/64")
	up(t, b.NS, b.H, b.Link, "10.99.0.12/24", "fd00:99::12/64")
	waitUp(t, a.H, a.Link)
	waitUp(t, b.H, b.Link)
	return a, b
}

// NewRouted makes two nodes on different underlay subnets joined by a third
// namespace, a router: node a holds 10.99.0.11/24 and fd00:99::11/64, node b
// 10.99.1.12/24 and fd00:99:1::12/64, the router .1 and ::1 of each subnet
// and forwards; each node has default routes via the router. Neither node is
// on a subnet of the other, so only an overlay joins their pod subnets.
func NewRouted(t testing.TB) (a, b Node) {
	t.Helper()
	a.NS, b.NS = minitest.NewNS(t), minitest.NewNS(t)
	r := minitest.NewNS(t)
	a.H, b.H = Handle(t, a.NS), Handle(t, b.NS)
	rh := Handle(t, r)
	a.Link, b.Link = minitest.Name("ua"), minitest.Name("ub")
	ra, rb := minitest.Name("ra"), minitest.Name("rb")
	link(t, rh, ra, a.H, a.NS, a.Link)
	link(t, rh, rb, b.H, b.NS, b.Link)
	up(t, r, rh, ra, "10.99.0.1/24", "fd00:99::1/64")
	up(t, r, rh, rb, "10.99.1.1/24", "fd00:99:1::1/64")
	up(t, a.NS, a.H, a.Link, "10.99.0.11/24", "fd00:99::11/64")
	up(t, b.NS, b.H, b.Link, "10.99.1.12/24", "fd00:99:1::12/64")
	forward(t, r)
	for _, n := range []struct {
		h      netlinksafe.Handle
		v4, v6 string
	}{{a.H, "10.99.0.1", "fd00:99::1"}, {b.H, "10.99.1.1", "fd00:99:1::1"}} {
		for _, gw := range []string{n.v4, n.v6} {
			if err := n.h.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
				t.Fatalf("default route via %s: %v", gw, err)
			}
		}
	}
	for _, l := range []struct {
		h    netlinksafe.Handle
		name string
	}{{rh, ra}, {rh, rb}, {a.H, a.Link}, {b.H, b.Link}} {
		waitUp(t, l.h, l.name)
	}
	return a, b
}

// AddPod puts a pod-like namespace behind n: a veth pair, MTU mtu, whose
// node end holds the gateways (one CIDR per family, "172.18.0.1/24") and
// whose pod end ("eth0") holds pods (the pod's addresses in the same
// subnets, "172.18.0.2/24") with default routes via the gateways. n
// forwards. The namespace is removed when the test ends.
func AddPod(t testing.TB, n Node, mtu int, gateways, pods []string) ns.NetNS {
	t.Helper()
	pod := minitest.NewNS(t)
	ph := Handle(t, pod)
	host := minitest.Name("pv")
	link(t, n.H, host, ph, pod, "eth0")
	for _, l := range []struct {
		ns    ns.NetNS
		h     netlinksafe.Handle
		name  string
		addrs []string
	}{{n.NS, n.H, host, gateways}, {pod, ph, "eth0", pods}} {
		lk, err := l.h.LinkByName(l.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.h.LinkSetMTU(lk, mtu); err != nil {
			t.Fatal(err)
		}
		up(t, l.ns, l.h, l.name, l.addrs...)
	}
	for _, gw := range gateways {
		ip, _, err := net.ParseCIDR(gw)
		if err != nil {
			t.Fatal(err)
		}
		if err := ph.RouteAdd(&netlink.Route{Gw: ip}); err != nil {
			t.Fatalf("pod's default route via %s: %v", ip, err)
		}
	}
	forward(t, n.NS)
	waitUp(t, n.H, host)
	waitUp(t, ph, "eth0")
	return pod
}

// link makes a veth pair, name in h's namespace and peer in peerNS, and
// sets lo up on both sides.
func link(t testing.TB, h netlinksafe.Handle, name string, peerH netlinksafe.Handle, peerNS ns.NetNS, peer string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer, PeerNamespace: netlink.NsFd(int(peerNS.Fd()))}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s: %v", name, peer, err)
	}
	if lo, err := peerH.LinkByName("lo"); err != nil || peerH.LinkSetUp(lo) != nil {
		t.Fatalf("lo up: %v", err)
	}
	if lo, err := h.LinkByName("lo"); err != nil || h.LinkSetUp(lo) != nil {
		t.Fatalf("lo up: %v", err)
	}
}

// up adds the addresses to name, in n, and sets it up, without duplicate
// address detection (for its link-local address too): every address is
// usable at once, where DAD would drop the first second of IPv6 traffic.
func up(t testing.TB, n ns.NetNS, h netlinksafe.Handle, name string, cidrs ...string) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	minitest.Do(t, n, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/accept_dad", []byte("0"), 0o644)
	})
	for _, cidr := range cidrs {
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		addr.Flags = unix.IFA_F_NODAD
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatalf("address %s on %s: %v", cidr, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// forward turns on IPv4 and IPv6 forwarding in n.
func forward(t testing.TB, n ns.NetNS) {
	t.Helper()
	minitest.Do(t, n, func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitUp waits for the kernel's linkwatch to mark a new veth operationally
// up (and give it a working qdisc), asynchronously, up to a second later
// under load; until then packets are dropped.
func waitUp(t testing.TB, h netlinksafe.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %s after 5 s", name, l.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
