package routes

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func withOverlay(r *Reconciler, mode overlay.Mode) *Reconciler {
	r.Overlay = overlay.DefaultConfig()
	r.Overlay.Mode = mode
	return r
}

// overlayState renders what minicni keeps in h's namespace: its VXLAN
// devices (with their settings and addresses), their FDB and neighbour
// entries, and the routes with minicni's protocol, as sorted lines.
func overlayState(t *testing.T, h netlinksafe.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	var out []string
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		vx, ok := l.(*netlink.Vxlan)
		if !ok {
			continue
		}
		a := l.Attrs()
		out = append(out, fmt.Sprintf("device %s vni %d port %d local %s learning %v mac %s mtu %d up %v alias %q",
			a.Name, vx.VxlanId, vx.Port, vx.SrcAddr, vx.Learning, a.HardwareAddr, a.MTU, a.Flags&net.FlagUp != 0, a.Alias))
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range addrs {
			if !ad.IP.IsLinkLocalUnicast() {
				out = append(out, fmt.Sprintf("addr %s dev %s", ad.IPNet, a.Name))
			}
		}
		for _, fam := range []int{unix.AF_BRIDGE, unix.AF_INET, unix.AF_INET6} {
			ns, err := h.NeighList(a.Index, fam)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				switch {
				case fam == unix.AF_BRIDGE:
					out = append(out, fmt.Sprintf("fdb %s dst %s dev %s permanent %v", n.HardwareAddr, n.IP, a.Name, n.State&netlink.NUD_PERMANENT != 0))
				case n.State == netlink.NUD_PERMANENT:
					out = append(out, fmt.Sprintf("neigh %s lladdr %s dev %s", n.IP, n.HardwareAddr, a.Name))
				}
			}
		}
	}
	rts, err := ListOwn(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rts {
		s := fmt.Sprintf("route %s via %s dev %s", r.Dst, r.Gw, names[r.LinkIndex])
		if onlink(r) {
			s += " onlink"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func sync(t *testing.T, r *Reconciler, self string, list []nodes.Node) Stats {
	t.Helper()
	st, err := r.Sync(self, list)
	if err != nil {
		t.Fatalf("sync of %s: %v", self, err)
	}
	return st
}

// TestOverlayDataPlane: two nodes on different underlay subnets, joined by
// a router, each with a pod behind it; both agents in auto mode reach the
// other's pod subnets over VXLAN, IPv4 and IPv6 inside an IPv4 underlay,
// at the full pod MTU with DF set; then over an IPv6 underlay.
func TestOverlayDataPlane(t *testing.T) {
	a, b := twonode.NewRouted(t)
	const mtu = 1500 - 50
	podA := twonode.AddPod(t, a, mtu, []string{"172.18.0.1/24", "fd00:18::1/64"}, []string{"172.18.0.2/24", "fd00:18::2/64"})
	podB := twonode.AddPod(t, b, mtu, []string{"172.18.1.1/24", "fd00:18:0:1::1/64"}, []string{"172.18.1.2/24", "fd00:18:0:1::2/64"})
	list := []nodes.Node{
		node("a", []string{"10.99.0.11"}, "172.18.0.0/24", "fd00:18::/64"),
		node("b", []string{"10.99.1.12"}, "172.18.1.0/24", "fd00:18:0:1::/64"),
	}
	var logA bytes.Buffer
	ra, rb := withOverlay(New(a.H, logTo(&logA)), overlay.Auto), withOverlay(New(b.H, nil), overlay.Auto)
	st := sync(t, ra, "a", list)
	sync(t, rb, "b", list)
	if diff := cmp.Diff(map[Path]int{VXLAN: 1}, st.Peers); diff != "" || st.Programmed != 2 || st.Changes != 2 {
		t.Errorf("stats %+v; peers (-want +got):\n%s", st, diff)
	}
	want := []string{
		"addr 172.18.0.0/32 dev minicni.vxlan",
		`device minicni.vxlan vni 4097 port 4789 local 10.99.0.11 learning false mac 0a:58:0a:63:00:0b mtu 1450 up true alias "minicni overlay"`,
		"fdb 0a:58:0a:63:01:0c dst 10.99.1.12 dev minicni.vxlan permanent true",
		"neigh 172.18.1.0 lladdr 0a:58:0a:63:01:0c dev minicni.vxlan",
		"neigh fd00:18:0:1:: lladdr 0a:58:0a:63:01:0c dev minicni.vxlan",
		"route 172.18.1.0/24 via 172.18.1.0 dev minicni.vxlan onlink",
		"route fd00:18:0:1::/64 via fd00:18:0:1:: dev minicni.vxlan onlink",
	}
	if diff := cmp.Diff(want, overlayState(t, a.H)); diff != "" {
		t.Errorf("node a (-want +got):\n%s", diff)
	}
	if !strings.Contains(logA.String(), `msg="peer paths" overlay=auto direct="" vxlan=b unreachable="" invalid=""`) {
		t.Errorf("no status line naming b's path:\n%s", logA.String())
	}

	pings := []struct {
		from  string
		n     twonode.Node
		pod   bool
		dst   string
		size  int // payload with DF set; 0: default size
		label string
	}{
		{"pod a", a, true, "172.18.1.2", 0, "IPv4"},
		{"pod a", a, true, "fd00:18:0:1::2", 0, "IPv6 in IPv4"},
		{"pod a", a, true, "172.18.1.2", mtu - 28, "IPv4 at the pod MTU, DF"},
		{"pod a", a, true, "fd00:18:0:1::2", mtu - 48, "IPv6 at the pod MTU"},
		{"node a", a, false, "172.18.1.2", 0, "IPv4 from the node (source 172.18.0.0)"},
		{"node a", a, false, "fd00:18:0:1::2", 0, "IPv6 from the node"},
	}
	for _, p := range pings {
		from := a.NS
		if p.pod {
			from = podA
		}
		args := []string{p.dst}
		if p.size > 0 {
			args = []string{"-M", "do", "-s", fmt.Sprint(p.size), p.dst}
		}
		if out, err := ping(from, args...); err != nil {
			t.Errorf("%s -> %s (%s): %v\n%s", p.from, p.dst, p.label, err, out)
		}
	}
	if out, err := ping(podB, "-W", "1", "-M", "do", "-s", fmt.Sprint(mtu-28+1), "172.18.0.2"); err == nil {
		t.Errorf("a ping one byte over the pod MTU with DF passed: the MTU is not what the test thinks\n%s", out)
	}

	t.Run("IPv6 underlay", func(t *testing.T) {
		v6 := []nodes.Node{
			node("a", []string{"fd00:99::11"}, "172.18.0.0/24", "fd00:18::/64"),
			node("b", []string{"fd00:99:1::12"}, "172.18.1.0/24", "fd00:18:0:1::/64"),
		}
		sync(t, ra, "a", v6)
		sync(t, rb, "b", v6)
		state := strings.Join(overlayState(t, a.H), "\n")
		for _, w := range []string{"local fd00:99::11", "mtu 1430", "fdb " + overlay.MAC(addr("fd00:99:1::12")).String() + " dst fd00:99:1::12"} {
			if !strings.Contains(state, w) {
				t.Errorf("node a lacks %q:\n%s", w, state)
			}
		}
		for _, dst := range []string{"172.18.1.2", "fd00:18:0:1::2"} {
			if out, err := ping(podA, "-M", "do", "-s", "1300", dst); err != nil {
				t.Errorf("pod a -> %s over the IPv6 underlay: %v\n%s", dst, err, out)
			}
		}
	})
}

// TestOverlayEntries follows one node's device, entries and routes through
// a peer's life: added, resync, address changed, made direct, removed; then
// a restart that finds stale entries and an old device, a settings change,
// mode none, and a foreign link in the way.
func TestOverlayEntries(t *testing.T) {
	a, _ := twonode.NewRouted(t)
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24", "fd00:18::/64")
	b := node("b", []string{"10.99.1.12"}, "172.18.1.0/24", "fd00:18:0:1::/64")
	c := node("c", []string{"192.168.7.7"}, "172.18.2.0/24")
	var log bytes.Buffer
	r := withOverlay(New(a.H, logTo(&log)), overlay.Auto)

	st := sync(t, r, "a", []nodes.Node{self, b, c})
	if st.OverlayChanges != 8 || st.Changes != 3 { // device created and up, address, 2 FDB entries, 3 neighbours; 3 routes
		t.Errorf("first sync: %+v, want 8 overlay changes and 3 routes", st)
	}
	dev := `device minicni.vxlan vni 4097 port 4789 local 10.99.0.11 learning false mac 0a:58:0a:63:00:0b mtu 1450 up true alias "minicni overlay"`
	base := []string{"addr 172.18.0.0/32 dev minicni.vxlan", dev}
	bEntries := []string{
		"fdb 0a:58:0a:63:01:0c dst 10.99.1.12 dev minicni.vxlan permanent true",
		"neigh 172.18.1.0 lladdr 0a:58:0a:63:01:0c dev minicni.vxlan",
		"neigh fd00:18:0:1:: lladdr 0a:58:0a:63:01:0c dev minicni.vxlan",
		"route 172.18.1.0/24 via 172.18.1.0 dev minicni.vxlan onlink",
		"route fd00:18:0:1::/64 via fd00:18:0:1:: dev minicni.vxlan onlink",
	}
	cEntries := func(ip, mac string) []string {
		return []string{
			"fdb " + mac + " dst " + ip + " dev minicni.vxlan permanent true",
			"neigh 172.18.2.0 lladdr " + mac + " dev minicni.vxlan",
			"route 172.18.2.0/24 via 172.18.2.0 dev minicni.vxlan onlink",
		}
	}
	check := func(t *testing.T, want ...[]string) {
		t.Helper()
		var all []string
		for _, w := range want {
			all = append(all, w...)
		}
		slices.Sort(all)
		if diff := cmp.Diff(all, overlayState(t, a.H)); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
	}
	check(t, base, bEntries, cEntries("192.168.7.7", "0a:58:c0:a8:07:07"))
	log.Reset()

	t.Run("resync changes and logs nothing", func(t *testing.T) {
		st := sync(t, r, "a", []nodes.Node{self, b, c})
		if st.Changes != 0 || st.OverlayChanges != 0 || log.Len() != 0 {
			t.Errorf("resync: %+v\n%s", st, log.String())
		}
	})
	t.Run("peer changes address", func(t *testing.T) {
		moved := node("c", []string{"192.168.7.8"}, "172.18.2.0/24")
		st := sync(t, r, "a", []nodes.Node{self, b, moved})
		check(t, base, bEntries, cEntries("192.168.7.8", "0a:58:c0:a8:07:08"))
		if st.Changes != 0 || st.OverlayChanges != 3 { // FDB deleted and added, neighbour set
			t.Errorf("stats %+v, want 3 overlay changes and no route change", st)
		}
	})
	t.Run("peer becomes direct", func(t *testing.T) {
		direct := node("c", []string{"10.99.0.13"}, "172.18.2.0/24")
		st := sync(t, r, "a", []nodes.Node{self, b, direct})
		check(t, base, bEntries, []string{"route 172.18.2.0/24 via 10.99.0.13 dev " + a.Link})
		if st.Peers[Direct] != 1 || st.Peers[VXLAN] != 1 {
			t.Errorf("peers by path %v", st.Peers)
		}
	})
	t.Run("vxlan peer removed", func(t *testing.T) {
		// c is direct, b gone: in auto mode no peer needs the device.
		direct := node("c", []string{"10.99.0.13"}, "172.18.2.0/24")
		sync(t, r, "a", []nodes.Node{self, direct})
		check(t, []string{"route 172.18.2.0/24 via 10.99.0.13 dev " + a.Link})
		if !strings.Contains(log.String(), `msg="deleted VXLAN device" device=minicni.vxlan`) {
			t.Errorf("device removal not logged:\n%s", log.String())
		}
	})
	t.Run("restart removes stale entries and an old device", func(t *testing.T) {
		sync(t, r, "a", []nodes.Node{self, b, c})
		// What a previous run (or someone) left: entries for a peer gone,
		// an address, and a device of an earlier --vxlan-device.
		vx, err := a.H.LinkByName("minicni.vxlan")
		if err != nil {
			t.Fatal(err)
		}
		idx := vx.Attrs().Index
		stale := []*netlink.Neigh{
			{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: net.ParseIP("192.168.9.9"), HardwareAddr: mac("0a:58:c0:a8:09:09")},
			{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: net.ParseIP("172.18.9.0"), HardwareAddr: mac("0a:58:c0:a8:09:09")},
			{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: net.ParseIP("fd00:18:0:9::"), HardwareAddr: mac("0a:58:c0:a8:09:09")},
		}
		for _, n := range stale {
			if err := a.H.NeighSet(n); err != nil {
				t.Fatal(err)
			}
		}
		ad, _ := netlink.ParseAddr("172.18.9.0/32")
		if err := a.H.AddrAdd(vx, ad); err != nil {
			t.Fatal(err)
		}
		old := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "minicni.old", TxQLen: -1}, VxlanId: 77, Port: 4789}
		if err := a.H.LinkAdd(old); err != nil {
			t.Fatal(err)
		}
		if err := a.H.LinkSetAlias(old, overlay.Alias); err != nil {
			t.Fatal(err)
		}
		restarted := withOverlay(New(a.H, logTo(&log)), overlay.Auto)
		st := sync(t, restarted, "a", []nodes.Node{self, b, c})
		check(t, base, bEntries, cEntries("192.168.7.7", "0a:58:c0:a8:07:07"))
		if st.OverlayChanges != 5 {
			t.Errorf("stats %+v, want 5 overlay changes (old device, address, FDB entry, two neighbours)", st)
		}
	})
	t.Run("settings change recreates the device", func(t *testing.T) {
		changed := withOverlay(New(a.H, logTo(&log)), overlay.Auto)
		changed.Overlay.VNI, changed.Overlay.Port = 4098, 4790
		sync(t, changed, "a", []nodes.Node{self, b, c})
		state := strings.Join(overlayState(t, a.H), "\n")
		if !strings.Contains(state, "vni 4098 port 4790") || !strings.Contains(state, "route 172.18.1.0/24 via 172.18.1.0 dev minicni.vxlan onlink") {
			t.Errorf("after a VNI and port change:\n%s", state)
		}
		if !strings.Contains(log.String(), "VNI 4097, want 4098") {
			t.Errorf("recreation not logged:\n%s", log.String())
		}
	})
	t.Run("mode none removes the device", func(t *testing.T) {
		none := withOverlay(New(a.H, logTo(&log)), overlay.None)
		st := sync(t, none, "a", []nodes.Node{self, b, c})
		check(t, nil)
		if st.Peers[Unreachable] != 2 {
			t.Errorf("peers by path %v, want 2 unreachable", st.Peers)
		}
	})
	t.Run("a foreign link of that name is left alone", func(t *testing.T) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "minicni.vxlan", TxQLen: -1}}
		if err := a.H.LinkAdd(br); err != nil {
			t.Fatal(err)
		}
		_, err := withOverlay(New(a.H, nil), overlay.VXLAN).Sync("a", []nodes.Node{self, b})
		if err == nil || !strings.Contains(err.Error(), "is not minicni's VXLAN device") {
			t.Errorf("Sync = %v, want a refusal", err)
		}
		if l, err := a.H.LinkByName("minicni.vxlan"); err != nil || l.Type() != "bridge" {
			t.Errorf("the foreign link: %v %v", l, err)
		}
	})
}

// TestOverlayDeviceMTU: the device follows the uplink's MTU.
func TestOverlayDeviceMTU(t *testing.T) {
	a, _ := twonode.NewRouted(t)
	list := []nodes.Node{node("a", []string{"10.99.0.11"}, "172.18.0.0/24"), node("b", []string{"10.99.1.12"}, "172.18.1.0/24")}
	r := withOverlay(New(a.H, nil), overlay.VXLAN)
	sync(t, r, "a", list)
	up, err := a.H.LinkByName(a.Link)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.H.LinkSetMTU(up, 9000); err != nil {
		t.Fatal(err)
	}
	sync(t, r, "a", list)
	if vx, err := a.H.LinkByName("minicni.vxlan"); err != nil || vx.Attrs().MTU != 8950 {
		t.Errorf("device MTU after the uplink went to 9000: %v %v, want 8950", vx, err)
	}
	for _, tt := range []struct {
		ips  []string
		want int
	}{
		{[]string{"10.99.0.11"}, 8950},
		{[]string{"fd00:99::11"}, 8930},
		{[]string{"fd00:99::11", "10.99.0.11"}, 8950},
		{[]string{"192.168.7.7"}, 9000 - 70}, // not local: the default route's link, minus the larger overhead
		{nil, 9000 - 70},
	} {
		var ips []netip.Addr
		for _, s := range tt.ips {
			ips = append(ips, addr(s))
		}
		if got, err := overlay.PodMTU(a.H, ips); err != nil || got != tt.want {
			t.Errorf("PodMTU(%v) = %d, %v; want %d", tt.ips, got, err, tt.want)
		}
	}
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// ping waits for one echo reply in n, for 3 s at most, sending a request
// every second ("ping -c 1 -w 3 ARGS"): in fresh namespaces about one
// first IPv6 request in 30 goes unanswered for longer than a second while
// neighbour discovery settles, with or without the overlay.
func ping(n ns.NetNS, args ...string) ([]byte, error) {
	var out []byte
	err := n.Do(func(ns.NetNS) error {
		var err error
		out, err = exec.Command("ping", append([]string{"-c", "1", "-w", "3"}, args...)...).CombinedOutput()
		return err
	})
	return out, err
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
