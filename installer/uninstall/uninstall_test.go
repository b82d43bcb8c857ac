package uninstall

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/installer/routes"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/route"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func run(t *testing.T, n ns.NetNS, name string, args ...string) string {
	t.Helper()
	var out []byte
	err := n.Do(func(ns.NetNS) error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestUninstall sets up, in a test namespace with temporary dirs, what
// minicni creates next to what others created, and checks uninstall removes
// exactly minicni's.
func TestUninstall(t *testing.T) {
	a, _ := twonode.New(t)
	ctx := context.Background()

	// minicni's routes, and an admin's.
	list := []nodes.Node{
		{Name: "a", InternalIPs: []string{"10.99.0.11", "fd00:99::11"}, PodCIDRs: []string{"172.18.0.0/24", "fd00:18::/64"}},
		{Name: "b", InternalIPs: []string{"10.99.0.12", "fd00:99::12"}, PodCIDRs: []string{"172.18.1.0/24", "fd00:18:0:1::/64"}},
	}
	if _, err := routes.New(a.H, nil).Sync("a", list); err != nil {
		t.Fatal(err)
	}
	// minicni's VXLAN device, with its entries and routes (of a third node
	// not on the underlay), under a name of an earlier --vxlan-device; and
	// someone else's VXLAN device.
	withC := append(list, nodes.Node{Name: "c", InternalIPs: []string{"192.168.7.7"}, PodCIDRs: []string{"172.18.2.0/24"}})
	r := routes.New(a.H, nil)
	r.Overlay = overlay.DefaultConfig()
	r.Overlay.Device = "minicni.old"
	if _, err := r.Sync("a", withC); err != nil {
		t.Fatal(err)
	}
	if got := twonode.Routes(t, a.H, routes.Protocol); len(got) != 3 {
		t.Fatalf("setup: routes %v, want two direct and one VXLAN", got)
	}
	other := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "other.vx", TxQLen: -1}, VxlanId: 5, Port: 4789}
	if err := a.H.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{Dst: twonode.MustNet("10.50.0.0/24"), Gw: net.ParseIP("10.99.0.12"), Protocol: unix.RTPROT_STATIC}
	if err := a.H.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}

	// miniroute's chains, through miniroute itself, and someone else's.
	// and a stamp saying they were verified (Stamp.Record keeps the first
	// stamp a namespace gets).
	st := &stamps.Stamps{Dir: t.TempDir()}
	err := a.NS.Do(func(ns.NetNS) error {
		st.Lookup(rules.IPv4, "digest").Record()
		for _, s := range []rules.Spec{
			{Family: rules.IPv4, Cluster: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}, PodNets: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/24")}, Forward: true, Masquerade: true},
			{Family: rules.IPv6, Cluster: []netip.Prefix{netip.MustParsePrefix("fd00:18::/48")}, PodNets: []netip.Prefix{netip.MustParsePrefix("fd00:18::/64")}, Forward: true, Masquerade: true},
		} {
			if _, err := route.Ensure(ctx, backend.New(s.Family), s); err != nil {
				return err
			}
			// And in legacy, as miniroute writes on a node whose kubelet
			// uses it.
			legacy := backend.New(s.Family)
			legacy.Mode = backend.Legacy
			if _, err := route.Ensure(ctx, legacy, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := minitest.DirNames(t, st.Dir); len(got) != 1 {
		t.Fatalf("setup: stamps %v, want one", got)
	}
	run(t, a.NS, "iptables", "-N", "OTHER-FORWARD")
	run(t, a.NS, "iptables", "-A", "FORWARD", "-j", "OTHER-FORWARD")
	run(t, a.NS, "iptables-legacy", "-A", "FORWARD", "-s", "10.50.0.0/24", "-j", "ACCEPT")
	if save := run(t, a.NS, "iptables-save"); !strings.Contains(save, rules.ForwardChain) || !strings.Contains(save, rules.PostroutingChain) {
		t.Fatalf("setup: miniroute's chains missing:\n%s", save)
	}

	// Files: minicni's and others'.
	from, bin, conf := t.TempDir(), t.TempDir(), t.TempDir()
	put := func(dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback"} {
		put(from, b, "minicni's "+b)
	}
	for _, b := range []string{"minibridge", "miniipam", "portmap"} { // miniroute already gone
		put(bin, b, "minicni's "+b)
	}
	put(bin, "loopback", "the distribution's loopback")
	put(bin, "bridge", "the distribution's bridge")
	put(conf, "10-minicni.conflist", "{}")
	put(conf, "99-other.conflist", "{}")

	opts := Options{
		ConfPath: filepath.Join(conf, "10-minicni.conflist"),
		Binaries: []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback"},
		BinDir:   bin, From: from, Routes: a.H, Stamps: st,
	}
	uninstall := func(o Options) error {
		return a.NS.Do(func(ns.NetNS) error { return Run(ctx, o) })
	}

	// Without --remove-binaries the binaries stay.
	if err := uninstall(opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bridge", "loopback", "minibridge", "miniipam", "portmap"}, minitest.DirNames(t, bin)); diff != "" {
		t.Errorf("binaries touched without --remove-binaries (-want +got):\n%s", diff)
	}
	opts.RemoveBinaries = true
	if err := uninstall(opts); err != nil {
		t.Fatal(err)
	}

	if got := twonode.Routes(t, a.H, routes.Protocol); got != nil {
		t.Errorf("minicni routes left: %v", got)
	}
	if links := minitest.LinkNames(t, a.NS); slices.Contains(links, "minicni.old") || !slices.Contains(links, "other.vx") {
		t.Errorf("links after uninstall: %v; want minicni's VXLAN device gone, the other kept", links)
	}
	if got := twonode.Routes(t, a.H, unix.RTPROT_STATIC); !cmp.Equal(got, []string{"10.50.0.0/24 via 10.99.0.12"}) {
		t.Errorf("the admin's route: %v", got)
	}
	for _, cmd := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		save := run(t, a.NS, cmd)
		if strings.Contains(save, "MINICNI") || strings.Contains(save, "minicni") {
			t.Errorf("%s still shows minicni:\n%s", cmd, save)
		}
	}
	if got := minitest.DirNames(t, st.Dir); got != nil {
		t.Errorf("stamps left: %v", got)
	}
	if save := run(t, a.NS, "iptables-save"); !strings.Contains(save, "-A FORWARD -j OTHER-FORWARD") {
		t.Errorf("someone else's chain was removed:\n%s", save)
	}
	if save := run(t, a.NS, "iptables-legacy-save"); !strings.Contains(save, "-A FORWARD -s 10.50.0.0/24 -j ACCEPT") {
		t.Errorf("someone else's legacy rule was removed:\n%s", save)
	}
	if diff := cmp.Diff([]string{"99-other.conflist"}, minitest.DirNames(t, conf)); diff != "" {
		t.Errorf("conf dir (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bridge", "loopback"}, minitest.DirNames(t, bin)); diff != "" {
		t.Errorf("bin dir: only minicni's binaries and identical reference ones go (-want +got):\n%s", diff)
	}
	// Idempotent.
	if err := uninstall(opts); err != nil {
		t.Errorf("second uninstall: %v", err)
	}
}
