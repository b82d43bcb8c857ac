package routes

import (
	"bytes"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

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
	a, b := twonode.New(t)
	// An admin's route to the same gateway: minicni must never touch it.
	foreign := &netlink.Route{Dst: twonode.MustNet("10.50.0.0/24"), Gw: net.ParseIP("10.99.0.12"), Protocol: unix.RTPROT_STATIC}
	if err := a.H.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	var logA, logB bytes.Buffer
	ra, rb := New(a.H, logTo(&logA)), New(b.H, logTo(&logB))
	all := []nodes.Node{nodeA, nodeB, nodeC}

	st, err := ra.Sync("a", all)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Sync("b", all); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Stats{Programmed: 2, Unreachable: 1, Changes: 2, Peers: map[Path]int{Direct: 1, Unreachable: 1}}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	wantA := []string{"172.18.1.0/24 via 10.99.0.12", "fd00:18:0:1::/64 via fd00:99::12"}
	if diff := cmp.Diff(wantA, twonode.Routes(t, a.H, Protocol)); diff != "" {
		t.Errorf("node a's routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"172.18.0.0/24 via 10.99.0.11", "fd00:18::/64 via fd00:99::11"}, twonode.Routes(t, b.H, Protocol)); diff != "" {
		t.Errorf("node b's routes (-want +got):\n%s", diff)
	}
	if got := lines(&logA); len(got) != 4 || !strings.Contains(got[0], "node=c") ||
		got[1] != `level=INFO msg="peer paths" overlay=none direct=b vxlan="" unreachable=c invalid=""` ||
		!strings.Contains(strings.Join(got, "\n"), `msg="added route" dst=172.18.1.0/24 via=10.99.0.12 node=b path=direct`) {
		t.Errorf("log of the first sync: want one line for c, the peer paths, one per added route:\n%s", strings.Join(got, "\n"))
	}

	// The routes carry traffic: a pod-subnet address on b answers a's ping.
	lo, err := b.H.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := netlink.ParseAddr("172.18.1.1/32")
	if err := b.H.AddrAdd(lo, pod); err != nil {
		t.Fatal(err)
	}
	if out, err := pingFrom(a.NS, "172.18.1.1"); err != nil {
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
		if err := a.H.RouteDel(&netlink.Route{Dst: twonode.MustNet("172.18.1.0/24"), Table: unix.RT_TABLE_MAIN}); err != nil {
			t.Fatal(err)
		}
		wrong := &netlink.Route{Dst: twonode.MustNet("fd00:18:0:1::/64"), Gw: net.ParseIP("fd00:99::99"), Protocol: Protocol}
		if err := a.H.RouteReplace(wrong); err != nil {
			t.Fatal(err)
		}
		st, err := ra.Sync("a", all)
		if err != nil || st.Changes != 2 {
			t.Errorf("repair: %+v %v", st, err)
		}
		if diff := cmp.Diff(wantA, twonode.Routes(t, a.H, Protocol)); diff != "" {
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
		if diff := cmp.Diff(want, twonode.Routes(t, a.H, Protocol)); diff != "" {
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
		restarted := New(a.H, logTo(&logA))
		st, err := restarted.Sync("a", []nodes.Node{nodeA, nodeC})
		if err != nil {
			t.Fatal(err)
		}
		if got := twonode.Routes(t, a.H, Protocol); got != nil {
			t.Errorf("stale routes left after restart: %v", got)
		}
		if st.Changes != 2 || st.Programmed != 0 {
			t.Errorf("stats %+v, want 2 deletions", st)
		}
		if !strings.Contains(logA.String(), `msg="deleted route" dst=172.18.1.0/24`) {
			t.Errorf("deletion not logged:\n%s", logA.String())
		}
	})
	if got := twonode.Routes(t, a.H, unix.RTPROT_STATIC); !cmp.Equal(got, []string{"10.50.0.0/24 via 10.99.0.12"}) {
		t.Errorf("the admin's static route was touched: %v", got)
	}
	if out, err := pingFrom(a.NS, "172.18.1.1"); err == nil {
		t.Errorf("ping still works after the route was removed:\n%s", out)
	}
}

func TestDeleteOwn(t *testing.T) {
	a, _ := twonode.New(t)
	if _, err := New(a.H, nil).Sync("a", []nodes.Node{nodeA, nodeB}); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{Dst: twonode.MustNet("10.50.0.0/24"), Gw: net.ParseIP("10.99.0.12"), Protocol: unix.RTPROT_BOOT}
	if err := a.H.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	deleted, err := DeleteOwn(a.H)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("DeleteOwn = %v, %v; want two routes", deleted, err)
	}
	if got := twonode.Routes(t, a.H, Protocol); got != nil {
		t.Errorf("left: %v", got)
	}
	if got := twonode.Routes(t, a.H, unix.RTPROT_BOOT); len(got) != 1 {
		t.Errorf("foreign route removed: %v", got)
	}
	if deleted, err := DeleteOwn(a.H); err != nil || deleted != nil {
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
