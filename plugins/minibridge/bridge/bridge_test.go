package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
)

// cniPath holds the reference host-local, built once for the package.
var cniPath string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // the root tests skip themselves
		}
		dir, err := os.MkdirTemp("", "minibridge-bridge-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := minitest.BuildPlugins(dir, "host-local"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cniPath = dir
		return m.Run()
	}()
	os.Exit(code)
}

// fixture is one "node" (a host netns, where the plugin logic runs) with a
// network config whose IPAM is host-local with its own dataDir.
type fixture struct {
	host    ns.NetNS
	bridge  string
	net     string
	dataDir string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{host: minitest.NewNS(t), bridge: minitest.Name("mbt"), net: minitest.Name("net"), dataDir: t.TempDir()}
}

func (f *fixture) conf(t *testing.T, extra string, subnets ...string) (*NetConf, []byte) {
	t.Helper()
	var ranges []string
	for _, s := range subnets {
		ranges = append(ranges, fmt.Sprintf(`[{"subnet":%q}]`, s))
	}
	stdin := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"minibridge","bridge":%q,%s"ipam":{"type":"host-local","dataDir":%q,"ranges":[%s]}}`,
		f.net, f.bridge, extra, f.dataDir, strings.Join(ranges, ","))
	conf, err := LoadConf([]byte(stdin))
	if err != nil {
		t.Fatal(err)
	}
	return conf, []byte(stdin)
}

// args returns the CmdArgs of one attachment and sets the CNI_ variables
// the delegated IPAM reads from the environment (so these tests are serial).
func args(t *testing.T, id, netns, ifname string, stdin []byte) *libmini.CmdArgs {
	t.Setenv("CNI_CONTAINERID", id)
	t.Setenv("CNI_NETNS", netns)
	t.Setenv("CNI_IFNAME", ifname)
	t.Setenv("CNI_PATH", cniPath)
	return &libmini.CmdArgs{ContainerID: id, Netns: netns, IfName: ifname, Path: cniPath, StdinData: stdin}
}

// reservations lists the addresses reserved in the network's dataDir.
func (f *fixture) reservations(t testing.TB) []string {
	t.Helper()
	return minitest.Reservations(t, f.dataDir, f.net)
}

func wantCode(t *testing.T, err error, code uint, mention ...string) {
	t.Helper()
	if got := errCode(t, err); got != code {
		t.Fatalf("code %d, want %d (err %v)", got, code, err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

// TestAddCheckDel drives Add, Check and Del in process: the auto MTU comes
// from the host netns's default route, CHECK notices every kind of drift,
// DEL leaves nothing of the pod and may be repeated.
func TestAddCheckDel(t *testing.T) {
	f := newFixture(t)
	pod := minitest.NewNS(t)
	uplink := minitest.Name("up")
	// An "uplink" holding the default route: a veth pair (this kernel has
	// no dummy links), MTU 1400.
	ipCmd(t, f.host, "link", "add", uplink, "mtu", "1400", "type", "veth", "peer", "name", uplink+"p", "mtu", "1400")
	ipCmd(t, f.host, "link", "set", uplink, "up")
	ipCmd(t, f.host, "link", "set", uplink+"p", "up")
	ipCmd(t, f.host, "addr", "add", "192.0.2.10/24", "dev", uplink)
	ipCmd(t, f.host, "route", "add", "default", "via", "192.0.2.1")

	conf, stdin := f.conf(t, "", "10.20.0.0/24")
	a := args(t, "ctr-inproc", pod.Path(), "eth0", stdin)
	ctx := context.Background()
	var res *current.Result
	minitest.Do(t, f.host, func() (err error) { res, err = Add(ctx, conf, a, Node{}); return err })

	hostName := HostVethName("ctr-inproc", "eth0")
	var want struct{ brMAC, hostMAC, podMAC, podAddr string }
	var hostMaster, brIndex, hostMTU, podMTU int
	var queues []int // tx and rx of the host end, then of the pod end
	minitest.Do(t, f.host, func() error {
		br, err := netlinksafe.LinkByName(f.bridge)
		if err != nil {
			return err
		}
		h, err := netlinksafe.LinkByName(hostName)
		if err != nil {
			return err
		}
		want.brMAC, want.hostMAC = br.Attrs().HardwareAddr.String(), h.Attrs().HardwareAddr.String()
		brIndex, hostMaster, hostMTU = br.Attrs().Index, h.Attrs().MasterIndex, h.Attrs().MTU
		queues = append(queues, h.Attrs().NumTxQueues, h.Attrs().NumRxQueues)
		return nil
	})
	minitest.Do(t, pod, func() error {
		l, err := netlinksafe.LinkByName("eth0")
		if err != nil {
			return err
		}
		want.podMAC, podMTU = l.Attrs().HardwareAddr.String(), l.Attrs().MTU
		queues = append(queues, l.Attrs().NumTxQueues, l.Attrs().NumRxQueues)
		return nil
	})
	addrs := minitest.GlobalAddrs(t, pod, "eth0")
	if len(addrs) != 1 {
		t.Fatalf("pod addresses %v, want one", addrs)
	}
	gotIfaces := fmt.Sprint(res.Interfaces)
	wantIfaces := fmt.Sprint([]*current.Interface{
		{Name: f.bridge, Mac: want.brMAC}, {Name: hostName, Mac: want.hostMAC},
		{Name: "eth0", Mac: want.podMAC, Sandbox: pod.Path()}})
	if d := cmp.Diff(wantIfaces, gotIfaces); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != addrs[0] || *res.IPs[0].Interface != 2 {
		t.Errorf("result IPs %v, want %s on interface 2", res.IPs, addrs[0])
	}
	gw := res.IPs[0].Gateway
	if d := cmp.Diff([]string{gw.String() + "/24"}, minitest.GlobalAddrs(t, f.host, f.bridge)); d != "" {
		t.Errorf("bridge addresses (-want +got):\n%s", d)
	}
	// One queue each way on both ends, asked for in the creation request
	// (the kernel's veth would otherwise allocate one per CPU and cut the
	// real count back to one, waiting for an expedited RCU grace period).
	if d := cmp.Diff([]int{1, 1, 1, 1}, queues); d != "" {
		t.Errorf("tx and rx queues of the host end, then the pod end (-want +got):\n%s", d)
	}
	if hostMaster != brIndex || hostMTU != 1400 || podMTU != 1400 {
		t.Errorf("host veth master %d (bridge %d), MTU host %d pod %d, want 1400 (the uplink's)", hostMaster, brIndex, hostMTU, podMTU)
	}
	minitest.Do(t, f.host, func() error {
		for name, want := range map[string]string{"net/ipv4/ip_forward": "1", "net/ipv6/conf/" + f.bridge + "/accept_ra": "0",
			"net/ipv6/conf/" + hostName + "/accept_ra": "0"} {
			if v, err := sysctl.Sysctl(name); err != nil || v != want {
				t.Errorf("%s = %q (%v), want %q", name, v, err, want)
			}
		}
		return nil
	})

	// CHECK with the ADD's result as prevResult, then with drift.
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	checkStdin := strings.Replace(string(stdin), `{`, `{"prevResult":`+string(raw)+`,`, 1)
	cconf, err := LoadConf([]byte(checkStdin))
	if err != nil {
		t.Fatal(err)
	}
	ca := args(t, "ctr-inproc", pod.Path(), "eth0", []byte(checkStdin))
	check := func() error {
		var err error
		_ = f.host.Do(func(ns.NetNS) error { err = Check(ctx, cconf, ca, Node{}); return nil })
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("CHECK right after ADD: %v", err)
	}
	drifts := []struct {
		name    string
		in      ns.NetNS
		cmd     []string
		undo    [][]string
		mention string
	}{
		{"detached", f.host, []string{"link", "set", hostName, "nomaster"}, [][]string{{"link", "set", hostName, "master", f.bridge}}, "not attached"},
		{"host MTU", f.host, []string{"link", "set", hostName, "mtu", "1300"}, [][]string{{"link", "set", hostName, "mtu", "1400"}}, "MTU"},
		{"pod MTU", pod, []string{"link", "set", "eth0", "mtu", "1300"}, [][]string{{"link", "set", "eth0", "mtu", "1400"}}, "MTU"},
		// Removing the address also flushes the default route through it.
		{"pod address", pod, []string{"addr", "del", addrs[0], "dev", "eth0"},
			[][]string{{"addr", "add", addrs[0], "dev", "eth0"}, {"route", "add", "default", "via", gw.String()}}, "addresses"},
		{"pod default route", pod, []string{"route", "del", "default"}, [][]string{{"route", "add", "default", "via", gw.String()}}, "route 0.0.0.0/0 via " + gw.String() + " is missing"},
		{"gateway", f.host, []string{"addr", "del", gw.String() + "/24", "dev", f.bridge}, [][]string{{"addr", "add", gw.String() + "/24", "dev", f.bridge}}, gw.String()},
		{"bridge down", f.host, []string{"link", "set", f.bridge, "down"}, [][]string{{"link", "set", f.bridge, "up"}}, "down"},
	}
	for _, d := range drifts {
		t.Run("drift "+d.name, func(t *testing.T) {
			ipCmd(t, d.in, d.cmd...)
			err := check()
			for _, u := range d.undo {
				ipCmd(t, d.in, u...)
			}
			wantCode(t, err, libmini.CodeCheckFailed, d.mention)
			if err := check(); err != nil {
				t.Fatalf("CHECK after undoing the drift: %v", err)
			}
		})
	}

	// DEL, twice; then nothing of the pod remains, the bridge does.
	for i := range 2 {
		minitest.Do(t, f.host, func() error { return Del(ctx, conf, a, Node{}) })
		if got := minitest.LinkNames(t, pod); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("DEL %d: pod links %v, want only lo", i+1, got)
		}
		if got := minitest.LinkNames(t, f.host); slices.Contains(got, hostName) || !slices.Contains(got, f.bridge) {
			t.Errorf("DEL %d: host links %v: want the bridge and no %s", i+1, got, hostName)
		}
		if r := f.reservations(t); len(r) != 0 {
			t.Errorf("DEL %d: reservations left: %v", i+1, r)
		}
	}
}

// ipCmd runs ip(8) in n: a child started from a thread in n inherits it.
func ipCmd(t *testing.T, n ns.NetNS, args ...string) {
	t.Helper()
	minitest.Do(t, n, func() error {
		out, err := execCommand("ip", args...)
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
}

// TestAddRollback makes ADD fail after the IPAM's ADD (the pod already has
// an eth0; the bridge name is taken by a non-bridge; the bridge holds an
// address of another subnet): the reservation is released and no veth is
// left.
func TestAddRollback(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, pod ns.NetNS)
		code    uint
		mention []string
	}{
		{"pod ifname taken", func(t *testing.T, f *fixture, pod ns.NetNS) {
			ipCmd(t, pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
		}, libmini.CodeLink, []string{"eth0"}},
		{"bridge name is a veth", func(t *testing.T, f *fixture, pod ns.NetNS) {
			ipCmd(t, f.host, "link", "add", f.bridge, "type", "veth", "peer", "name", f.bridge+"p")
		}, libmini.CodeLink, []string{"not a bridge"}},
		{"gateway conflict", func(t *testing.T, f *fixture, pod ns.NetNS) {
			ipCmd(t, f.host, "link", "add", f.bridge, "type", "bridge")
			ipCmd(t, f.host, "addr", "add", "10.99.7.1/24", "dev", f.bridge)
		}, libmini.CodeGatewayConflict, []string{"10.99.7.1/24", "10.21.0.1/24", "forceAddress"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			pod := minitest.NewNS(t)
			tt.prepare(t, f, pod)
			hostBefore, podBefore := minitest.LinkNames(t, f.host), minitest.LinkNames(t, pod)
			conf, stdin := f.conf(t, "", "10.21.0.0/24")
			a := args(t, "ctr-rollback", pod.Path(), "eth0", stdin)
			var err error
			_ = f.host.Do(func(ns.NetNS) error { _, err = Add(context.Background(), conf, a, Node{}); return nil })
			wantCode(t, err, tt.code, tt.mention...)
			if r := f.reservations(t); len(r) != 0 {
				t.Errorf("reservations left: %v", r)
			}
			hostAfter := slices.DeleteFunc(minitest.LinkNames(t, f.host), func(s string) bool { return s == f.bridge })
			hostBefore = slices.DeleteFunc(hostBefore, func(s string) bool { return s == f.bridge })
			if d := cmp.Diff(hostBefore, hostAfter); d != "" {
				t.Errorf("host links changed (-before +after):\n%s", d)
			}
			if d := cmp.Diff(podBefore, minitest.LinkNames(t, pod)); d != "" {
				t.Errorf("pod links changed (-before +after):\n%s", d)
			}
		})
	}
}

// TestEnsureGateways covers the gateway addresses on an existing bridge.
func TestEnsureGateways(t *testing.T) {
	cidr := func(s string) *net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		n.IP = ip
		return n
	}
	tests := []struct {
		name   string
		before []string
		gws    []string
		force  bool
		code   uint
		after  []string
	}{
		{"empty bridge", nil, []string{"10.0.0.1/24"}, false, 0, []string{"10.0.0.1/24"}},
		{"already there", []string{"10.0.0.1/24"}, []string{"10.0.0.1/24"}, false, 0, []string{"10.0.0.1/24"}},
		{"another address of the subnet stays", []string{"10.0.0.254/24"}, []string{"10.0.0.1/24"}, false, 0, []string{"10.0.0.1/24", "10.0.0.254/24"}},
		{"subnet changed", []string{"10.5.0.1/24"}, []string{"10.0.0.1/24"}, false, libmini.CodeGatewayConflict, []string{"10.5.0.1/24"}},
		{"prefix changed", []string{"10.0.0.1/16"}, []string{"10.0.0.1/24"}, false, libmini.CodeGatewayConflict, []string{"10.0.0.1/16"}},
		{"subnet changed, forced", []string{"10.5.0.1/24"}, []string{"10.0.0.1/24"}, true, 0, []string{"10.0.0.1/24"}},
		{"other family untouched", []string{"fd00:5::1/64"}, []string{"10.0.0.1/24"}, false, 0, []string{"10.0.0.1/24", "fd00:5::1/64"}},
		{"two ranges of one family", nil, []string{"10.0.0.1/24", "10.1.0.1/24"}, false, 0, []string{"10.0.0.1/24", "10.1.0.1/24"}},
		{"dual stack", nil, []string{"10.0.0.1/24", "fd00::1/64"}, false, 0, []string{"10.0.0.1/24", "fd00::1/64"}},
		{"v6 subnet changed", []string{"fd00:5::1/64"}, []string{"fd00::1/64"}, false, libmini.CodeGatewayConflict, []string{"fd00:5::1/64"}},
		{"v6 subnet changed, forced", []string{"fd00:5::1/64"}, []string{"fd00::1/64"}, true, 0, []string{"fd00::1/64"}},
	}
	host := minitest.NewNS(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := minitest.Name("mbg")
			ipCmd(t, host, "link", "add", name, "type", "bridge")
			defer ipCmd(t, host, "link", "del", name)
			ipCmd(t, host, "link", "set", name, "up")
			for _, a := range tt.before {
				ipCmd(t, host, "addr", "add", a, "dev", name, "nodad")
			}
			var gws []*net.IPNet
			for _, g := range tt.gws {
				gws = append(gws, cidr(g))
			}
			var err error
			minitest.Do(t, host, func() error {
				l, lerr := netlinksafe.LinkByName(name)
				if lerr != nil {
					return lerr
				}
				return withRtnl(func(c *rtnl) error {
					err = ensureGateways(c, l.(*netlink.Bridge), gws, tt.force)
					return nil
				})
			})
			if tt.code != 0 {
				wantCode(t, err, tt.code, tt.before[0], tt.gws[0], name)
			} else if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.after, minitest.GlobalAddrs(t, host, name)); d != "" {
				t.Errorf("bridge addresses (-want +got):\n%s", d)
			}
		})
	}
}

// TestResolveMTU: 0 means the default-route link's MTU, else 1500.
func TestResolveMTU(t *testing.T) {
	host := minitest.NewNS(t)
	mtu := func() int {
		var m int
		minitest.Do(t, host, func() (err error) { m, err = mtuOf(0); return err })
		return m
	}
	if got := mtu(); got != DefaultMTU {
		t.Errorf("no default route: MTU %d, want %d", got, DefaultMTU)
	}
	ipCmd(t, host, "link", "add", "up6", "mtu", "1280", "type", "veth", "peer", "name", "up6p")
	ipCmd(t, host, "link", "set", "up6", "up")
	ipCmd(t, host, "link", "set", "up6p", "up")
	ipCmd(t, host, "route", "add", "default", "dev", "up6")
	ipCmd(t, host, "-6", "route", "add", "default", "dev", "up6")
	if got := mtu(); got != 1280 {
		t.Errorf("default route via up6: MTU %d, want 1280", got)
	}
	ipCmd(t, host, "route", "del", "default")
	if got := mtu(); got != 1280 {
		t.Errorf("IPv6 default route only: MTU %d, want 1280", got)
	}
	var explicit int
	minitest.Do(t, host, func() (err error) { explicit, err = mtuOf(9000); return err })
	if explicit != 9000 {
		t.Errorf("explicit MTU 9000 resolved to %d", explicit)
	}
}

// TestAddTwice: a second ADD of an attachment whose host veth exists fails
// with CodeLink naming the veth, and leaves the first attachment whole: its
// veth, its pod interface's address and its reservation (the in-process
// miniipam hands the same reservation back to a repeated ADD, so a
// rollback after the IPAM would release it).
func TestAddTwice(t *testing.T) {
	for _, ipam := range []string{"host-local", InProcessIPAM} {
		t.Run(ipam, func(t *testing.T) {
			f := newFixture(t)
			pod := minitest.NewNS(t)
			stdin := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"minibridge","bridge":%q,"ipam":{"type":%q,"dataDir":%q,"ranges":[[{"subnet":"10.22.0.0/24"}]]}}`,
				f.net, f.bridge, ipam, f.dataDir))
			conf, err := LoadConf(stdin)
			if err != nil {
				t.Fatal(err)
			}
			a := args(t, "ctr-twice", pod.Path(), "eth0", stdin)
			ctx := context.Background()
			var res *current.Result
			minitest.Do(t, f.host, func() (err error) { res, err = Add(ctx, conf, a, Node{}); return err })
			hostName := HostVethName("ctr-twice", "eth0")
			hostBefore, podBefore := minitest.LinkNames(t, f.host), minitest.LinkNames(t, pod)
			reserved := f.reservations(t)

			_ = f.host.Do(func(ns.NetNS) error { _, err = Add(ctx, conf, a, Node{}); return nil })
			wantCode(t, err, libmini.CodeLink, hostName, "already exists", "DEL it first")
			if d := cmp.Diff(reserved, f.reservations(t)); d != "" || len(reserved) != 1 {
				t.Errorf("reservations %v, after the second ADD (-before +after):\n%s", reserved, d)
			}
			if d := cmp.Diff(hostBefore, minitest.LinkNames(t, f.host)); d != "" {
				t.Errorf("host links changed (-before +after):\n%s", d)
			}
			if d := cmp.Diff(podBefore, minitest.LinkNames(t, pod)); d != "" {
				t.Errorf("pod links changed (-before +after):\n%s", d)
			}
			if got, want := minitest.GlobalAddrs(t, pod, "eth0"), []string{res.IPs[0].Address.String()}; !cmp.Equal(got, want) {
				t.Errorf("pod eth0 addresses %v, want %v", got, want)
			}
			minitest.Do(t, f.host, func() error { return Del(ctx, conf, a, Node{}) })
		})
	}
}
