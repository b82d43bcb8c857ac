package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// rogueRAPrefix is the prefix a rogue router advertisement offers.
var rogueRAPrefix = net.ParseIP("fd00:bad::")

// TestRouterAdvertIgnored: a pod that sends router advertisements on the
// bridge (as in CVE-2020-10749) configures neither another pod nor the node.
// The pods have accept_ra=0 (IPv4-only pods too: they have IPv6 link-local
// addresses), the host ends and the bridge as well. A control pod set back
// to accept_ra=1 after its ADD takes the advertisement's default route, so
// the advertisement does arrive: the other pod ignored it.
func TestRouterAdvertIgnored(t *testing.T) {
	for _, tt := range []struct {
		name    string
		subnets []string
	}{
		{"ipv4 only", []string{"10.36.0.0/24"}},
		{"dual stack", []string{"10.37.0.0/24", "fd00:37::/64"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			minitest.RequireRoot(t)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, "miniipam", tt.subnets...)
			conf := n.conf(t, "1.0.0", nil)
			victim, sender, control := newPod(t), newPod(t), newPod(t)
			for _, p := range []*pod{victim, sender, control} {
				run(t, host, p.call("ADD", conf))
				t.Cleanup(func() { _, _, _ = execIn(host, p.call("DEL", conf)) })
			}
			for _, p := range []*pod{victim, sender, control} {
				if v := readSysctl(t, p.ns, "net/ipv6/conf/"+p.if_+"/accept_ra"); v != "0" {
					t.Errorf("pod accept_ra = %s, want 0", v)
				}
			}
			for _, name := range []string{n.br, bridge.HostVethName(victim.id, victim.if_)} {
				if v := readSysctl(t, host, "net/ipv6/conf/"+name+"/accept_ra"); v != "0" {
					t.Errorf("%s accept_ra = %s, want 0", name, v)
				}
			}
			minitest.Do(t, control.ns, func() error {
				_, err := sysctl.Sysctl("net/ipv6/conf/"+control.if_+"/accept_ra", "1")
				return err
			})

			// The sender's link-local source must be past DAD (IPv4-only
			// pods run it) before the kernel sends from it: repeat.
			deadline := time.Now().Add(10 * time.Second)
			for len(raRoutes(t, control.ns)) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the control pod (accept_ra=1) never took the advertisement: the test cannot tell anything")
				}
				sendRA(t, sender.ns, sender.if_)
				time.Sleep(100 * time.Millisecond)
			}
			// The same multicast frame reached every port at once; give the
			// others' softirqs a moment.
			time.Sleep(200 * time.Millisecond)
			for what, n := range map[string]ns.NetNS{"pod": victim.ns, "node": host} {
				if rs := raRoutes(t, n); len(rs) > 0 {
					t.Errorf("the %s took routes from a pod's router advertisement: %v", what, rs)
				}
				if a := rogueAddrs(t, n); len(a) > 0 {
					t.Errorf("the %s took addresses from a pod's router advertisement: %v", what, a)
				}
			}
		})
	}
}

// TestIPv6ForwardingOnlyWithIPv6Range: IPv4 forwarding is turned on by
// every ADD; IPv6 forwarding only when the IPAM gives the pod an IPv6
// address, so an IPv4-only cluster leaves the node's IPv6 forwarding (and,
// with it, its hosts' acceptance of router advertisements on the uplinks)
// as it was.
func TestIPv6ForwardingOnlyWithIPv6Range(t *testing.T) {
	for _, tt := range []struct {
		name    string
		subnets []string
		want6   string
	}{
		{"ipv4 only", []string{"10.38.0.0/24"}, "0"},
		{"dual stack", []string{"10.39.0.0/24", "fd00:39::/64"}, "1"},
		{"ipv6 only", []string{"fd00:40::/64"}, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			minitest.RequireRoot(t)
			t.Parallel()
			host := minitest.NewNS(t)
			keys := []string{"net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding"}
			for _, k := range keys {
				if v := readSysctl(t, host, k); v != "0" {
					t.Fatalf("a new namespace has %s = %s: the test needs it at 0", k, v)
				}
			}
			n := newNetwork(t, "miniipam", tt.subnets...)
			conf := n.conf(t, "1.0.0", nil)
			pd := newPod(t)
			run(t, host, pd.call("ADD", conf))
			if v := readSysctl(t, host, "net/ipv4/ip_forward"); v != "1" {
				t.Errorf("ip_forward = %s, want 1", v)
			}
			if v := readSysctl(t, host, keys[0]); v != tt.want6 {
				t.Errorf("%s = %s, want %s", keys[0], v, tt.want6)
			}
			run(t, host, pd.call("DEL", conf))
		})
	}
}

// TestIPv6NoDADDelay: the addresses ADD sets are usable when it returns,
// so the pod's first IPv6 packet goes out at once: the gateway is added to
// the bridge with IFA_F_NODAD, the pod's addresses (its link-local one too)
// without duplicate address detection (accept_dad=0), so none is tentative
// (a tentative address is not used until DAD ends, a second or more
// later); then a single echo to the gateway and one to the other pod
// answer.
func TestIPv6NoDADDelay(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	n := newNetwork(t, "miniipam", "10.41.0.0/24", "fd00:41::/64")
	conf := n.conf(t, "1.0.0", nil)
	a, b := newPod(t), newPod(t)
	var v6 []net.IP
	var gw net.IP
	for _, pd := range []*pod{a, b} {
		res := parseResult(t, "1.0.0", run(t, host, pd.call("ADD", conf)))
		t.Cleanup(func() { _, _, _ = execIn(host, pd.call("DEL", conf)) })
		for _, ipc := range res.IPs {
			if ipc.Address.IP.To4() == nil {
				v6, gw = append(v6, ipc.Address.IP), ipc.Gateway
			}
		}
		if bad := notReady(t, pd.ns, pd.if_); len(bad) > 0 {
			t.Errorf("right after ADD the pod's addresses %v are not usable yet", bad)
		}
	}
	if len(v6) != 2 || gw == nil {
		t.Fatalf("IPv6 addresses %v, gateway %v: want two and a gateway", v6, gw)
	}
	if bad := notReady(t, host, n.br); len(bad) > 0 {
		t.Errorf("the bridge's addresses %v are not usable yet", bad)
	}
	minitest.Do(t, host, func() error {
		l, err := netlinksafe.LinkByName(n.br)
		if err != nil {
			return err
		}
		addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_V6)
		for _, ad := range addrs {
			if ad.IP.Equal(gw) && ad.Flags&unix.IFA_F_NODAD == 0 {
				t.Errorf("gateway %s on the bridge without nodad (flags %#x)", ad.IPNet, ad.Flags)
			}
		}
		return err
	})
	for _, dst := range []net.IP{gw, v6[1]} {
		minitest.Do(t, a.ns, func() error {
			out, err := exec.Command("ping", "-n", "-c", "1", "-W", "1", dst.String()).CombinedOutput()
			if err != nil {
				return fmt.Errorf("first ping to %s: %v\n%s", dst, err, out)
			}
			return nil
		})
	}
}

// notReady lists link's IPv6 addresses in n that are tentative, optimistic
// or failed DAD.
func notReady(t *testing.T, n ns.NetNS, name string) []string {
	t.Helper()
	var bad []string
	minitest.Do(t, n, func() error {
		l, err := netlinksafe.LinkByName(name)
		if err != nil {
			return err
		}
		addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_V6)
		for _, ad := range addrs {
			if ad.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_OPTIMISTIC|unix.IFA_F_DADFAILED) != 0 {
				bad = append(bad, fmt.Sprintf("%s (flags %#x)", ad.IPNet, ad.Flags))
			}
		}
		return err
	})
	return bad
}

func readSysctl(t *testing.T, n ns.NetNS, key string) string {
	t.Helper()
	var v string
	minitest.Do(t, n, func() (err error) {
		v, err = sysctl.Sysctl(key)
		v = strings.TrimSpace(v)
		return err
	})
	return v
}

// raRoutes lists n's IPv6 routes learnt from router advertisements.
func raRoutes(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	var rs []string
	minitest.Do(t, n, func() error {
		routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Protocol: unix.RTPROT_RA}, netlink.RT_FILTER_PROTOCOL)
		for _, r := range routes {
			rs = append(rs, r.String())
		}
		return err
	})
	return rs
}

// rogueAddrs lists n's addresses in the rogue advertisement's prefix.
func rogueAddrs(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	var as []string
	prefix := &net.IPNet{IP: rogueRAPrefix, Mask: net.CIDRMask(64, 128)}
	minitest.Do(t, n, func() error {
		addrs, err := netlinksafe.AddrList(nil, netlink.FAMILY_V6)
		for _, ad := range addrs {
			if prefix.Contains(ad.IP) {
				as = append(as, ad.IPNet.String())
			}
		}
		return err
	})
	return as
}

// sendRA sends, from ifName in n, one router advertisement to all nodes
// (ff02::1): a default router for 1800 s and the autonomous on-link prefix
// rogueRAPrefix/64, with the hop limit 255 receivers require.
func sendRA(t *testing.T, n ns.NetNS, ifName string) {
	t.Helper()
	minitest.Do(t, n, func() error {
		l, err := netlinksafe.LinkByName(ifName)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, l.Attrs().Index); err != nil {
			return err
		}
		// ICMPv6 type 134; the kernel fills in the checksum.
		msg := make([]byte, 16+32)
		msg[0] = 134
		msg[4] = 64                                     // current hop limit
		binary.BigEndian.PutUint16(msg[6:], 1800)       // router lifetime
		opt := msg[16:]                                 // prefix information
		opt[0], opt[1], opt[2], opt[3] = 3, 4, 64, 0xc0 // type, length/8, prefix length, L and A
		binary.BigEndian.PutUint32(opt[4:], 86400)      // valid lifetime
		binary.BigEndian.PutUint32(opt[8:], 14400)      // preferred lifetime
		copy(opt[16:], rogueRAPrefix.To16())
		to := &unix.SockaddrInet6{ZoneId: uint32(l.Attrs().Index)} //nolint:gosec // an interface index
		copy(to.Addr[:], net.ParseIP("ff02::1").To16())
		// No usable link-local source yet (DAD) is an error or a packet
		// receivers drop: the caller sends again.
		_ = unix.Sendto(fd, msg, 0, to)
		return nil
	})
}
