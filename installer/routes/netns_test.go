package routes

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// simNode is a network namespace standing for a node, with a netlink handle
// bound to it (usable from any goroutine).
type simNode struct {
	ns   ns.NetNS
	h    netlinksafe.Handle
	link string // its end of the underlay veth
}

// NewHandleFor opens a netlink handle on n, closed when t ends.
func newHandleFor(t *testing.T, n ns.NetNS) netlinksafe.Handle {
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

// twoNodes makes two namespaces joined by a veth pair: node a holds
// 10.99.0.11/24 and fd00:99::11/64, node b .12 and ::12.
func twoNodes(t *testing.T) (a, b simNode) {
	t.Helper()
	a.ns, b.ns = minitest.NewNS(t), minitest.NewNS(t)
	a.h, b.h = newHandleFor(t, a.ns), newHandleFor(t, b.ns)
	a.link, b.link = minitest.Name("ua"), minitest.Name("ub")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.link}, PeerName: b.link, PeerNamespace: netlink.NsFd(int(b.ns.Fd()))}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for i, n := range []simNode{a, b} {
		for _, name := range []string{"lo", n.link} {
			l, err := n.h.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
			if name == "lo" {
				continue
			}
			for _, cidr := range []string{fmt.Sprintf("10.99.0.%d/24", 11+i), fmt.Sprintf("fd00:99::%d/64", 11+i)} {
				addr, _ := netlink.ParseAddr(cidr)
				addr.Flags = unix.IFA_F_NODAD // usable at once, no 1-2 s of DAD
				if err := n.h.AddrAdd(l, addr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return a, b
}

// kernelRoutes lists h's main-table routes with protocol proto as
// "dst via gw" strings, sorted.
func kernelRoutes(t *testing.T, h netlinksafe.Handle, proto netlink.RouteProtocol) []string {
	t.Helper()
	filter := &netlink.Route{Protocol: proto, Table: unix.RT_TABLE_MAIN}
	rts, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rts {
		out = append(out, prefixOf(r.Dst).String()+" via "+addrOf(r.Gw).String())
	}
	sort.Strings(out)
	return out
}

func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var (
	nodeA = node("a", []string{"10.99.0.11", "fd00:99::11"}, "172.18.0.0/24", "fd00:18::/64")
	nodeB = node("b", []string{"10.99.0.12", "fd00:99::12"}, "172.18.1.0/24", "fd00:18:0:1::/64")
	nodeC = node("c", []string{"192.168.7.7"}, "172.18.2.0/24") // not on the underlay
)

func TestReconcileTwoNodes(t *testing.T) {
	a, b := twoNodes(t)
	// An admin's route to the same gateway: minicni must never touch it.
	foreign := &netlink.Route{Dst: mustNet("10.50.0.0/24"), Gw: net.ParseIP("10.99.0.12"), Protocol: unix.RTPROT_STATIC}
	if err := a.h.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	var logA, logB bytes.Buffer
	ra, rb := New(a.h, logTo(&logA)), New(b.h, logTo(&logB))
	all := []nodes.Node{nodeA, nodeB, nodeC}

	st, err := ra.Sync("a", all)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Sync("b", all); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Stats{Programmed: 2, Unreachable: 1, Changes: 2}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	wantA := []string{"172.18.1.0/24 via 10.99.0.12", "fd00:18:0:1::/64 via fd00:99::12"}
	if diff := cmp.Diff(wantA, kernelRoutes(t, a.h, Protocol)); diff != "" {
		t.Errorf("node a's routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"172.18.0.0/24 via 10.99.0.11", "fd00:18::/64 via fd00:99::11"}, kernelRoutes(t, b.h, Protocol)); diff != "" {
		t.Errorf("node b's routes (-want +got):\n%s", diff)
	}
	if got := lines(&logA); len(got) != 3 || !strings.Contains(got[0], "node=c") || !strings.Contains(strings.Join(got, "\n"), `msg="added route" dst=172.18.1.0/24 via=10.99.0.12 node=b`) {
		t.Errorf("log of the first sync: want one line for c, one per added route:\n%s", strings.Join(got, "\n"))
	}

	// The routes carry traffic: a pod-subnet address on b answers a's ping.
	lo, err := b.h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := netlink.ParseAddr("172.18.1.1/32")
	if err := b.h.AddrAdd(lo, pod); err != nil {
		t.Fatal(err)
	}
	if out, err := pingFrom(a.ns, "172.18.1.1"); err != nil {
		t.Errorf("ping from node a to b's pod subnet: %v\n%s", err, out)
	}

	t.Run("resync changes and logs nothing", func(t *testing.T) {
		st, err := ra.Sync("a", all)
		if err != nil || st.Changes != 0 || st.Programmed != 2 {
			t.Errorf("resync: %+v %v", st, err)
		}
		if got := lines(&logA); got != nil {
			t.Errorf("resync logged:\n%s", strings.Join(got, "\n"))
		}
	})
	t.Run("drift is repaired", func(t *testing.T) {
		if err := a.h.RouteDel(&netlink.Route{Dst: mustNet("172.18.1.0/24"), Table: unix.RT_TABLE_MAIN}); err != nil {
			t.Fatal(err)
		}
		wrong := &netlink.Route{Dst: mustNet("fd00:18:0:1::/64"), Gw: net.ParseIP("fd00:99::99"), Protocol: Protocol}
		if err := a.h.RouteReplace(wrong); err != nil {
			t.Fatal(err)
		}
		st, err := ra.Sync("a", all)
		if err != nil || st.Changes != 2 {
			t.Errorf("repair: %+v %v", st, err)
		}
		if diff := cmp.Diff(wantA, kernelRoutes(t, a.h, Protocol)); diff != "" {
			t.Errorf("routes after repair (-want +got):\n%s", diff)
		}
		lines(&logA)
	})
	t.Run("podCIDR change moves the route", func(t *testing.T) {
		moved := node("b", nodeB.InternalIPs, "172.18.5.0/24", "fd00:18:0:1::/64")
		if _, err := ra.Sync("a", []nodes.Node{nodeA, moved, nodeC}); err != nil {
			t.Fatal(err)
		}
		want := []string{"172.18.5.0/24 via 10.99.0.12", "fd00:18:0:1::/64 via fd00:99::12"}
		if diff := cmp.Diff(want, kernelRoutes(t, a.h, Protocol)); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
		if _, err := ra.Sync("a", all); err != nil {
			t.Fatal(err)
		}
		lines(&logA)
	})
	t.Run("restart after node deleted removes the stale route", func(t *testing.T) {
		// A new reconciler has no memory: only the kernel says what
		// minicni installed before.
		restarted := New(a.h, logTo(&logA))
		st, err := restarted.Sync("a", []nodes.Node{nodeA, nodeC})
		if err != nil {
			t.Fatal(err)
		}
		if got := kernelRoutes(t, a.h, Protocol); got != nil {
			t.Errorf("stale routes left after restart: %v", got)
		}
		if st.Changes != 2 || st.Programmed != 0 {
			t.Errorf("stats %+v, want 2 deletions", st)
		}
		if !strings.Contains(logA.String(), `msg="deleted route" dst=172.18.1.0/24`) {
			t.Errorf("deletion not logged:\n%s", logA.String())
		}
	})
	if got := kernelRoutes(t, a.h, unix.RTPROT_STATIC); !cmp.Equal(got, []string{"10.50.0.0/24 via 10.99.0.12"}) {
		t.Errorf("the admin's static route was touched: %v", got)
	}
	if out, err := pingFrom(a.ns, "172.18.1.1"); err == nil {
		t.Errorf("ping still works after the route was removed:\n%s", out)
	}
}

func TestDeleteOwn(t *testing.T) {
	a, _ := twoNodes(t)
	if _, err := New(a.h, nil).Sync("a", []nodes.Node{nodeA, nodeB}); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{Dst: mustNet("10.50.0.0/24"), Gw: net.ParseIP("10.99.0.12"), Protocol: unix.RTPROT_BOOT}
	if err := a.h.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	deleted, err := DeleteOwn(a.h)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("DeleteOwn = %v, %v; want two routes", deleted, err)
	}
	if got := kernelRoutes(t, a.h, Protocol); got != nil {
		t.Errorf("left: %v", got)
	}
	if got := kernelRoutes(t, a.h, unix.RTPROT_BOOT); len(got) != 1 {
		t.Errorf("foreign route removed: %v", got)
	}
	if deleted, err := DeleteOwn(a.h); err != nil || deleted != nil {
		t.Errorf("second DeleteOwn = %v, %v", deleted, err)
	}
}

func pingFrom(n ns.NetNS, dst string) ([]byte, error) {
	var out []byte
	err := n.Do(func(ns.NetNS) error {
		var err error
		out, err = exec.Command("ping", "-c", "1", "-W", "1", dst).CombinedOutput()
		return err
	})
	return out, err
}

func mustNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}
