package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
)

// link joins a and b with a veth pair (aName in a, bName in b) and gives each
// end an address.
func link(t *testing.T, a ns.NetNS, aName, aAddr string, b ns.NetNS, bName, bAddr string) {
	t.Helper()
	err := a.Do(func(ns.NetNS) error {
		la := netlink.NewLinkAttrs()
		la.Name = aName
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: bName}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName(bName)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, int(b.Fd())); err != nil {
			return err
		}
		return addrUp(aName, aAddr)
	})
	if err == nil {
		err = b.Do(func(ns.NetNS) error { return addrUp(bName, bAddr) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

func addrUp(name, cidr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func defaultVia(t *testing.T, n ns.NetNS, gw string) {
	t.Helper()
	err := n.Do(func(ns.NetNS) error {
		return netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP(gw)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sourceSeen sends a UDP datagram from inside from to to's address dst and
// returns the source address to sees (nil when nothing arrives within wait).
func sourceSeen(t *testing.T, from, to ns.NetNS, dst string, wait time.Duration) net.IP {
	t.Helper()
	var conn net.PacketConn
	err := to.Do(func(ns.NetNS) error {
		var err error
		conn, err = net.ListenPacket("udp4", net.JoinHostPort(dst, "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = from.Do(func(ns.NetNS) error {
		c, err := net.Dial("udp4", conn.LocalAddr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 16)
	_, addr, err := conn.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return addr.(*net.UDPAddr).IP.To4()
}

// TestMasqueradePacket sends real packets through a node namespace holding
// miniroute's rules, with FORWARD's policy DROP: a pod's packet to a host
// outside the cluster arrives from the node's address, and one to another
// pod subnet of the cluster arrives from the pod's own address.
//
//	pod 172.18.0.5 ── 172.18.0.1 node 10.99.0.1 ── 10.99.0.200 outside
//	                             node 172.18.1.1 ── 172.18.1.5 remote pod
func TestMasqueradePacket(t *testing.T) {
	pod, node, outside, remote := minitest.NewNS(t), minitest.NewNS(t), minitest.NewNS(t), minitest.NewNS(t)
	link(t, node, "pod0", "172.18.0.1/24", pod, "eth0", "172.18.0.5/24")
	link(t, node, "up0", "10.99.0.1/24", outside, "eth0", "10.99.0.200/24")
	link(t, node, "remote0", "172.18.1.1/24", remote, "eth0", "172.18.1.5/24")
	defaultVia(t, pod, "172.18.0.1")
	defaultVia(t, remote, "172.18.1.1")
	err := node.Do(func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}

	// Without miniroute, the outside host sees the pod's address.
	if got := sourceSeen(t, pod, outside, "10.99.0.200", 5*time.Second); !got.Equal(net.ParseIP("172.18.0.5")) {
		t.Fatalf("before ADD the outside host saw %v, want the pod's 172.18.0.5", got)
	}
	err = node.Do(func(ns.NetNS) error {
		return runCmd("iptables", "-P", "FORWARD", "DROP")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceSeen(t, pod, outside, "10.99.0.200", 300*time.Millisecond); got != nil {
		t.Fatalf("FORWARD policy DROP let a packet through from %v", got)
	}

	stdin, _ := conf(t, "1.0.0", `,"clusterCIDR":["172.18.0.0/16"]`, podResult(true))
	mustSucceed(t, run(t, node, call{cmd: "ADD", stdin: stdin, netns: pod.Path()}), "ADD")
	for _, tt := range []struct {
		to   ns.NetNS
		dst  string
		want string
	}{
		{outside, "10.99.0.200", "10.99.0.1"},
		{remote, "172.18.1.5", "172.18.0.5"},
	} {
		if got := sourceSeen(t, pod, tt.to, tt.dst, 5*time.Second); !got.Equal(net.ParseIP(tt.want)) {
			t.Errorf("after ADD %s saw the pod's packet from %v, want %s", tt.dst, got, tt.want)
		}
	}
}

func runCmd(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v: %s", name, args, err, out)
	}
	return nil
}
