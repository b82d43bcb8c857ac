package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
)

// binDir is the CNI_PATH of these tests: minibridge, miniipam, the
// reference host-local and bridge, and two fake IPAMs (shell scripts).
var binDir string

// fakeIPAMs answer ADD with no address (fake-noaddr) or with CNI error 11
// (fake-fail). Both first "reserve" a file in $FAKE_IPAM_DIR, which their
// DEL removes, so a test can see whether minibridge released it.
var fakeIPAMs = map[string]string{
	"fake-noaddr": `echo '{"cniVersion":"1.0.0","ips":[]}'`,
	"fake-fail":   `echo '{"cniVersion":"1.0.0","code":11,"msg":"fake IPAM is busy"}'; exit 1`,
}

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test here needs netns and skips
		}
		dir, err := os.MkdirTemp("", "minibridge-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := minitest.BuildPlugins(dir, "minibridge", "miniipam", "host-local", "bridge"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for name, body := range fakeIPAMs {
			script := "#!/bin/sh\ncat >/dev/null\nf=\"$FAKE_IPAM_DIR/$CNI_CONTAINERID-$CNI_IFNAME\"\n" +
				"case \"$CNI_COMMAND\" in\nADD) touch \"$f\"; " + body + ";;\nDEL) rm -f \"$f\";;\nesac\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// requireIPAM skips a scenario when not root; every IPAM (miniipam,
// host-local and the fakes) is built or written by TestMain.
func requireIPAM(t *testing.T, _ string) {
	t.Helper()
	minitest.RequireRoot(t)
}

// ipams are the IPAM plugins every main scenario runs with.
var ipams = []string{"miniipam", "host-local"}

// network is one network config: minibridge (or typ) on bridge br with
// IPAM ipam allocating from subnets, state in dataDir.
type network struct {
	typ, name, br, ipam, dataDir string
	subnets                      []string
	extra, ipamExtra             map[string]any
}

func newNetwork(t *testing.T, ipam string, subnets ...string) *network {
	return &network{typ: "minibridge", name: minitest.Name("net"), br: minitest.Name("mbt"), ipam: ipam,
		dataDir: t.TempDir(), subnets: subnets, extra: map[string]any{}, ipamExtra: map[string]any{}}
}

// conf renders the config in version ver, with prevResult when not nil.
func (n *network) conf(t testing.TB, ver string, prevResult []byte) []byte {
	t.Helper()
	var ranges [][]map[string]string
	for _, s := range n.subnets {
		ranges = append(ranges, []map[string]string{{"subnet": s}})
	}
	ipam := map[string]any{"type": n.ipam, "dataDir": n.dataDir, "ranges": ranges}
	for k, v := range n.ipamExtra {
		ipam[k] = v
	}
	m := map[string]any{"cniVersion": ver, "name": n.name, "type": n.typ, "bridge": n.br, "ipam": ipam}
	for k, v := range n.extra {
		m[k] = v
	}
	if prevResult != nil {
		m["prevResult"] = json.RawMessage(prevResult)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reservations lists the addresses reserved in the network's dataDir.
func (n *network) reservations(t testing.TB) []string {
	t.Helper()
	return minitest.Reservations(t, n.dataDir, n.name)
}

// call is one plugin invocation.
type call struct {
	plugin, cmd, id, netns, ifname string
	stdin                          []byte
	env                            []string
}

// execIn runs a plugin binary from a thread inside host (the child inherits
// the thread's netns), as a runtime on that node would. It returns stdout,
// or the CNI error the plugin printed; err is for anything else.
func execIn(host ns.NetNS, c call) (out []byte, cniErr *types.Error, err error) {
	if c.plugin == "" {
		c.plugin = "minibridge"
	}
	var stdout, stderr bytes.Buffer
	var runErr error
	err = host.Do(func(ns.NetNS) error {
		cmd := exec.Command(filepath.Join(binDir, c.plugin))
		cmd.Env = append([]string{"CNI_COMMAND=" + c.cmd, "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + c.netns,
			"CNI_IFNAME=" + c.ifname, "CNI_PATH=" + binDir, "PATH=" + os.Getenv("PATH")}, c.env...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(c.stdin), &stdout, &stderr
		runErr = cmd.Run()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if runErr == nil {
		return stdout.Bytes(), nil, nil
	}
	var e types.Error
	if jerr := json.Unmarshal(stdout.Bytes(), &e); jerr != nil || e.Code == 0 {
		return nil, nil, fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", c.plugin, c.cmd, runErr, stdout.Bytes(), stderr.Bytes())
	}
	return nil, &e, nil
}

// run is execIn for the test goroutine: anything but success fails t.
func run(t *testing.T, host ns.NetNS, c call) []byte {
	t.Helper()
	out, cniErr, err := execIn(host, c)
	if err != nil {
		t.Fatal(err)
	}
	if cniErr != nil {
		t.Fatalf("%s %s %s: CNI error %d: %s (%s)", c.plugin, c.cmd, c.id, cniErr.Code, cniErr.Msg, cniErr.Details)
	}
	return out
}

func link(t *testing.T, n ns.NetNS, name string) netlink.Link {
	t.Helper()
	var l netlink.Link
	minitest.Do(t, n, func() (err error) { l, err = netlinksafe.LinkByName(name); return err })
	return l
}

// defaultGWs lists the gateways of n's default routes, v4 then v6.
func defaultGWs(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	var gws []string
	minitest.Do(t, n, func() error {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := netlinksafe.RouteList(nil, fam)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if ones, _ := r.Dst.Mask.Size(); r.Dst == nil || ones == 0 {
					gws = append(gws, r.Gw.String())
				}
			}
		}
		return nil
	})
	return gws
}

func ping(t *testing.T, from ns.NetNS, addr string) {
	t.Helper()
	minitest.Do(t, from, func() error {
		out, err := exec.Command("ping", "-c", "1", "-W", "3", addr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %v\n%s", addr, err, out)
		}
		return nil
	})
}

// resultView is a result reduced to strings, for cmp.Diff.
type resultView struct {
	Interfaces, IPs, Routes []string
}

func view(r *current.Result) resultView {
	var v resultView
	for _, i := range r.Interfaces {
		v.Interfaces = append(v.Interfaces, fmt.Sprintf("%s mac=%s sandbox=%s", i.Name, i.Mac, i.Sandbox))
	}
	for _, ipc := range r.IPs {
		idx := "-"
		if ipc.Interface != nil {
			idx = fmt.Sprint(*ipc.Interface)
		}
		v.IPs = append(v.IPs, fmt.Sprintf("%s gw=%s if=%s", ipc.Address.String(), ipc.Gateway, idx))
	}
	for _, r := range r.Routes {
		v.Routes = append(v.Routes, fmt.Sprintf("%s via %s", r.Dst.String(), r.GW))
	}
	return v
}

// parseResult parses a plugin's stdout in version ver and checks that it
// is in that version.
func parseResult(t *testing.T, ver string, out []byte) *current.Result {
	t.Helper()
	var head struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(out, &head); err != nil || head.CNIVersion != ver {
		t.Fatalf("result cniVersion %q (%v), want %q:\n%s", head.CNIVersion, err, ver, out)
	}
	r, err := create.Create(ver, out)
	if err != nil {
		t.Fatalf("result does not parse as %s: %v\n%s", ver, err, out)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// preV03 reports whether results of ver have no interfaces (0.1.0, 0.2.0).
func preV03(ver string) bool { return ver == "0.1.0" || ver == "0.2.0" }

func canCheck(ver string) bool { return !preV03(ver) && !strings.HasPrefix(ver, "0.3.") }

// pod is one attachment in the tests: its netns, container ID and ifname.
type pod struct {
	ns      ns.NetNS
	id, if_ string
}

func newPod(t *testing.T) *pod {
	return &pod{ns: minitest.NewNS(t), id: minitest.Name("ctr"), if_: "eth0"}
}

func (p *pod) call(cmd string, stdin []byte) call {
	return call{cmd: cmd, id: p.id, netns: p.ns.Path(), ifname: p.if_, stdin: stdin}
}

// expectAttached checks the kernel state of an attached pod against its
// ADD result res (in version ver): addresses, default route via the
// gateway, MTU of all three links, host end on the bridge, result shape.
func expectAttached(t *testing.T, host ns.NetNS, n *network, p *pod, ver string, res *current.Result, mtu int) {
	t.Helper()
	hostName := bridge.HostVethName(p.id, p.if_)
	br, hv, pv := link(t, host, n.br), link(t, host, hostName), link(t, p.ns, p.if_)
	if hv.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("host end %s is not on bridge %s", hostName, n.br)
	}
	for _, l := range []netlink.Link{br, hv, pv} {
		if l.Attrs().MTU != mtu {
			t.Errorf("%s has MTU %d, want %d", l.Attrs().Name, l.Attrs().MTU, mtu)
		}
	}
	podAddrs := minitest.GlobalAddrs(t, p.ns, p.if_)
	if len(podAddrs) != len(n.subnets) {
		t.Fatalf("pod addresses %v: want one per subnet %v", podAddrs, n.subnets)
	}
	// The expected result, from the kernel: gateways are the bridge's
	// addresses in the pod's subnets.
	var want resultView
	if !preV03(ver) {
		want.Interfaces = []string{
			fmt.Sprintf("%s mac=%s sandbox=", n.br, br.Attrs().HardwareAddr),
			fmt.Sprintf("%s mac=%s sandbox=", hostName, hv.Attrs().HardwareAddr),
			fmt.Sprintf("%s mac=%s sandbox=%s", p.if_, pv.Attrs().HardwareAddr, p.ns.Path()),
		}
	}
	var gws []string
	for _, a := range podAddrs {
		ip, pn, _ := net.ParseCIDR(a)
		var gw string
		for _, b := range minitest.GlobalAddrs(t, host, n.br) {
			bip, bn, _ := net.ParseCIDR(b)
			if bn.String() == pn.String() {
				gw = bip.String()
			}
		}
		if gw == "" {
			t.Fatalf("bridge %s has no address in the pod's subnet %s", n.br, pn)
		}
		gws = append(gws, gw)
		idx := "2"
		if preV03(ver) {
			idx = "-"
		}
		want.IPs = append(want.IPs, fmt.Sprintf("%s gw=%s if=%s", a, gw, idx))
		zero := "0.0.0.0/0"
		if ip.To4() == nil {
			zero = "::/0"
		}
		want.Routes = append(want.Routes, fmt.Sprintf("%s via %s", zero, gw))
	}
	got := view(res)
	slices.Sort(got.IPs)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ADD result (-want +got):\n%s", d)
	}
	if d := cmp.Diff(gws, defaultGWs(t, p.ns)); d != "" {
		t.Errorf("pod default routes (-want +got):\n%s", d)
	}
}

// expectDetached checks that nothing of p remains: no host end, only lo in
// the pod, no reservation; the bridge stays.
func expectDetached(t *testing.T, host ns.NetNS, n *network, p *pod) {
	t.Helper()
	hostLinks := minitest.LinkNames(t, host)
	if slices.Contains(hostLinks, bridge.HostVethName(p.id, p.if_)) || !slices.Contains(hostLinks, n.br) {
		t.Errorf("host links %v: want bridge %s and no host end", hostLinks, n.br)
	}
	if p.ns != nil {
		if got := minitest.LinkNames(t, p.ns); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("pod links %v, want only lo", got)
		}
	}
	if r := n.reservations(t); len(r) != 0 {
		t.Errorf("reservations left: %v", r)
	}
}

// TestRoundTrip: ADD, CHECK, DEL, DEL again, in every CNI version, with
// miniipam and with the reference host-local.
func TestRoundTrip(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			minitest.ForEachVersion(t, func(t *testing.T, ver string) {
				t.Parallel()
				host := minitest.NewNS(t)
				n := newNetwork(t, ipam, "10.30.0.0/24")
				n.extra["mtu"] = 1450
				p := newPod(t)
				out := run(t, host, p.call("ADD", n.conf(t, ver, nil)))
				res := parseResult(t, ver, out)
				expectAttached(t, host, n, p, ver, res, 1450)
				if r := n.reservations(t); len(r) != 1 {
					t.Errorf("reservations %v, want one", r)
				}
				if canCheck(ver) {
					run(t, host, p.call("CHECK", n.conf(t, ver, out)))
				}
				for range 2 {
					run(t, host, p.call("DEL", n.conf(t, ver, out)))
					expectDetached(t, host, n, p)
				}
			})
		})
	}
}

// TestDelWithoutNetns: DEL after the pod's netns was deleted, and DEL with
// CNI_NETNS="" (containerd's second DEL, here the only one), release the
// address and leave no host end.
func TestDelWithoutNetns(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.31.0.0/24")
			conf := n.conf(t, "1.0.0", nil)

			// The netns is deleted before DEL: the kernel removes the veth
			// pair with it, in the background.
			gone := newPod(t)
			run(t, host, gone.call("ADD", conf))
			path := gone.ns.Path()
			if err := minitest.RemoveNS(gone.ns); err != nil {
				t.Fatal(err)
			}
			del := gone.call("DEL", conf)
			del.netns = path
			run(t, host, del)
			gone.ns = nil
			waitGone(t, host, bridge.HostVethName(gone.id, gone.if_))
			expectDetached(t, host, n, gone)

			// CNI_NETNS="" with the netns still alive: the veth is found by
			// its host-side name.
			live := newPod(t)
			run(t, host, live.call("ADD", conf))
			del = live.call("DEL", conf)
			del.netns = ""
			run(t, host, del)
			expectDetached(t, host, n, live)
			run(t, host, del) // and once more
		})
	}
}

// waitGone polls until link name has left host (the kernel destroys a
// deleted netns's links asynchronously).
func waitGone(t *testing.T, host ns.NetNS, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for slices.Contains(minitest.LinkNames(t, host), name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChains: minibridge's IPAM reused by the reference bridge plugin, and
// minibridge with the reference host-local, both ADD, CHECK and DEL.
func TestChains(t *testing.T) {
	tests := []struct{ plugin, ipam string }{
		{"bridge", "miniipam"},
		{"minibridge", "host-local"},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+"+"+tt.ipam, func(t *testing.T) {
			requireIPAM(t, tt.ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, tt.ipam, "10.32.0.0/24")
			n.typ = tt.plugin
			n.extra["isGateway"] = true
			n.extra["isDefaultGateway"] = true
			p := newPod(t)
			add := p.call("ADD", n.conf(t, "1.0.0", nil))
			add.plugin = tt.plugin
			out := run(t, host, add)
			res := parseResult(t, "1.0.0", out)
			if len(res.IPs) != 1 {
				t.Fatalf("ADD result IPs %v, want one", res.IPs)
			}
			if d := cmp.Diff([]string{res.IPs[0].Address.String()}, minitest.GlobalAddrs(t, p.ns, p.if_)); d != "" {
				t.Errorf("pod addresses (-result +pod):\n%s", d)
			}
			if r := n.reservations(t); !slices.Equal(r, []string{res.IPs[0].Address.IP.String()}) {
				t.Errorf("reservations %v, want %s", r, res.IPs[0].Address.IP)
			}
			ping(t, p.ns, res.IPs[0].Gateway.String())
			for _, cmd := range []string{"CHECK", "DEL", "DEL"} {
				c := p.call(cmd, n.conf(t, "1.0.0", out))
				c.plugin = tt.plugin
				run(t, host, c)
			}
			if got := minitest.LinkNames(t, p.ns); !slices.Equal(got, []string{"lo"}) {
				t.Errorf("pod links after DEL %v, want only lo", got)
			}
			if r := n.reservations(t); len(r) != 0 {
				t.Errorf("reservations left: %v", r)
			}
		})
	}
}

// TestPing: two pods on one bridge reach each other and the gateway.
func TestPing(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.33.0.0/24")
			conf := n.conf(t, "1.0.0", nil)
			a, b := newPod(t), newPod(t)
			ra := parseResult(t, "1.0.0", run(t, host, a.call("ADD", conf)))
			rb := parseResult(t, "1.0.0", run(t, host, b.call("ADD", conf)))
			ping(t, a.ns, rb.IPs[0].Address.IP.String())
			ping(t, b.ns, ra.IPs[0].Address.IP.String())
			ping(t, a.ns, ra.IPs[0].Gateway.String())
			ping(t, b.ns, rb.IPs[0].Gateway.String())
			run(t, host, a.call("DEL", conf))
			run(t, host, b.call("DEL", conf))
		})
	}
}

// TestDualStack: an IPv4 and an IPv6 address, both default routes, the
// bridge reachable over both; forwarding on for both, accept_ra=0.
func TestDualStack(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.34.0.0/24", "fd00:34::/64")
			conf := n.conf(t, "1.0.0", nil)
			p := newPod(t)
			out := run(t, host, p.call("ADD", conf))
			res := parseResult(t, "1.0.0", out)
			expectAttached(t, host, n, p, "1.0.0", res, bridge.DefaultMTU)
			for _, ipc := range res.IPs {
				ping(t, p.ns, ipc.Gateway.String())
			}
			minitest.Do(t, host, func() error {
				for f, want := range map[string]string{
					"/proc/sys/net/ipv4/ip_forward":                     "1",
					"/proc/sys/net/ipv6/conf/all/forwarding":            "1",
					"/proc/sys/net/ipv6/conf/" + n.br + "/accept_ra":    "0",
					"/proc/sys/net/ipv6/conf/" + n.br + "/disable_ipv6": "0",
				} {
					if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != want {
						t.Errorf("%s = %q (%v), want %s", f, b, err, want)
					}
				}
				return nil
			})
			run(t, host, p.call("CHECK", n.conf(t, "1.0.0", out)))
			run(t, host, p.call("DEL", conf))
			expectDetached(t, host, n, p)
		})
	}
}

// TestConcurrentAdds: 50 ADDs at once on a node with no bridge yet all
// succeed with distinct addresses, one bridge, one gateway address; then
// 50 concurrent DELs release everything.
func TestConcurrentAdds(t *testing.T) {
	const pods = 50
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.35.0.0/24")
			conf := n.conf(t, "1.0.0", nil)
			ps := make([]*pod, pods)
			for i := range ps {
				ps[i] = newPod(t)
			}
			type outcome struct {
				out    []byte
				cniErr *types.Error
				err    error
			}
			all := func(cmd string) []outcome {
				outs := make([]outcome, pods)
				start := make(chan struct{})
				done := make(chan int)
				for i, p := range ps {
					go func() {
						<-start
						o := &outs[i]
						o.out, o.cniErr, o.err = execIn(host, p.call(cmd, conf))
						done <- i
					}()
				}
				close(start)
				for range ps {
					<-done
				}
				return outs
			}

			seen := map[string]bool{}
			for i, o := range all("ADD") {
				if o.err != nil || o.cniErr != nil {
					t.Fatalf("ADD %d: %v %v", i, o.err, o.cniErr)
				}
				res := parseResult(t, "1.0.0", o.out)
				ip := res.IPs[0].Address.IP.String()
				if seen[ip] {
					t.Errorf("address %s given twice", ip)
				}
				seen[ip] = true
			}
			var bridges, ports int
			br := link(t, host, n.br)
			minitest.Do(t, host, func() error {
				links, err := netlinksafe.LinkList()
				for _, l := range links {
					if l.Type() == "bridge" {
						bridges++
					}
					if l.Attrs().MasterIndex == br.Attrs().Index {
						ports++
					}
				}
				return err
			})
			if bridges != 1 || ports != pods {
				t.Errorf("%d bridges with %d ports, want 1 with %d", bridges, ports, pods)
			}
			if got := minitest.GlobalAddrs(t, host, n.br); len(got) != 1 {
				t.Errorf("bridge addresses %v, want one gateway", got)
			}
			if r := n.reservations(t); len(r) != pods {
				t.Errorf("%d reservations, want %d", len(r), pods)
			}

			for i, o := range all("DEL") {
				if o.err != nil || o.cniErr != nil {
					t.Errorf("DEL %d: %v %v", i, o.err, o.cniErr)
				}
			}
			if got := minitest.LinkNames(t, host); !slices.Equal(got, []string{"lo", n.br}) && !slices.Equal(got, []string{n.br, "lo"}) {
				t.Errorf("host links after DEL: %v", got)
			}
			if r := n.reservations(t); len(r) != 0 {
				t.Errorf("reservations left: %v", r)
			}
		})
	}
}

// TestForceAddress: with forceAddress the old gateway is replaced.
func TestForceAddress(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	n := newNetwork(t, "host-local", "10.37.0.0/24")
	n.extra["forceAddress"] = true
	ipCmd(t, host, "link", "add", n.br, "type", "bridge")
	ipCmd(t, host, "addr", "add", "10.99.9.1/24", "dev", n.br)
	p := newPod(t)
	res := parseResult(t, "1.0.0", run(t, host, p.call("ADD", n.conf(t, "1.0.0", nil))))
	if got, want := minitest.GlobalAddrs(t, host, n.br), []string{res.IPs[0].Gateway.String() + "/24"}; !slices.Equal(got, want) {
		t.Errorf("bridge addresses %v, want %v", got, want)
	}
	ping(t, p.ns, res.IPs[0].Gateway.String())
	run(t, host, p.call("DEL", n.conf(t, "1.0.0", nil)))
}

// TestVersionStatusGC: VERSION lists every version; STATUS and GC are
// delegated to the IPAM (GC releases the reservation of an attachment the
// runtime no longer lists).
func TestVersionStatusGC(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			out := run(t, host, call{cmd: "VERSION", stdin: []byte(`{"cniVersion":"1.1.0"}`)})
			var vi struct {
				Supported []string `json:"supportedVersions"`
			}
			if err := json.Unmarshal(out, &vi); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(minitest.Versions, vi.Supported); d != "" {
				t.Errorf("supported versions (-want +got):\n%s", d)
			}

			n := newNetwork(t, ipam, "10.38.0.0/24")
			conf := n.conf(t, "1.1.0", nil)
			run(t, host, call{cmd: "STATUS", stdin: conf})

			keep, stale := newPod(t), newPod(t)
			run(t, host, keep.call("ADD", conf))
			run(t, host, stale.call("ADD", conf))
			var m map[string]any
			if err := json.Unmarshal(conf, &m); err != nil {
				t.Fatal(err)
			}
			m["cni.dev/valid-attachments"] = []map[string]string{{"containerID": keep.id, "ifname": keep.if_}}
			gc, _ := json.Marshal(m)
			run(t, host, call{cmd: "GC", stdin: gc})
			if r := n.reservations(t); len(r) != 1 {
				t.Errorf("reservations after GC %v, want only the live attachment's", r)
			}
			run(t, host, keep.call("DEL", conf))
			run(t, host, stale.call("DEL", conf))
		})
	}
}

// ipCmd runs ip(8) in n.
func ipCmd(t *testing.T, n ns.NetNS, args ...string) {
	t.Helper()
	minitest.Do(t, n, func() error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
}

// TestOptions: isGateway, isDefaultGateway, an IPAM default route,
// hairpinMode and promiscMode as they show in the kernel and the result.
func TestOptions(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*network)
		bridgeGW bool // the bridge holds the gateway
		routes   int  // default routes in the result and the pod
		hairpin  bool // on the host end
		promisc  bool // on the bridge
	}{
		{"defaults", func(*network) {}, true, 1, true, false},
		{"isGateway false", func(n *network) { n.extra["isGateway"] = false }, false, 1, true, false},
		{"isDefaultGateway false", func(n *network) { n.extra["isDefaultGateway"] = false }, true, 0, true, false},
		{"IPAM default route, no duplicate", func(n *network) {
			n.ipamExtra["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
		}, true, 1, true, false},
		{"hairpinMode false", func(n *network) { n.extra["hairpinMode"] = false }, true, 1, false, false},
		{"promiscMode", func(n *network) { n.extra["promiscMode"] = true }, true, 1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			minitest.RequireRoot(t)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, "host-local", "10.39.0.0/24")
			tt.edit(n)
			p := newPod(t)
			conf := n.conf(t, "1.0.0", nil)
			res := parseResult(t, "1.0.0", run(t, host, p.call("ADD", conf)))
			gw := res.IPs[0].Gateway.String()
			var wantBridge []string
			if tt.bridgeGW {
				wantBridge = []string{gw + "/24"}
			}
			if d := cmp.Diff(wantBridge, minitest.GlobalAddrs(t, host, n.br)); d != "" {
				t.Errorf("bridge addresses (-want +got):\n%s", d)
			}
			var defaults int
			for _, r := range res.Routes {
				if ones, _ := r.Dst.Mask.Size(); ones == 0 {
					defaults++
				}
			}
			podGWs := defaultGWs(t, p.ns)
			if defaults != tt.routes || len(podGWs) != tt.routes || (tt.routes == 1 && podGWs[0] != gw) {
				t.Errorf("%d default routes in the result, pod's via %v; want %d via %s", defaults, podGWs, tt.routes, gw)
			}
			var info netlink.Protinfo
			minitest.Do(t, host, func() (err error) {
				info, err = netlinksafe.LinkGetProtinfo(link(t, host, bridge.HostVethName(p.id, p.if_)))
				return err
			})
			if info.Hairpin != tt.hairpin {
				t.Errorf("hairpin %v, want %v", info.Hairpin, tt.hairpin)
			}
			if got := link(t, host, n.br).Attrs().Promisc != 0; got != tt.promisc {
				t.Errorf("bridge promiscuous %v, want %v", got, tt.promisc)
			}
			run(t, host, p.call("CHECK", n.conf(t, "1.0.0", mustJSON(t, res))))
			run(t, host, p.call("DEL", conf))
			expectDetached(t, host, n, p)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLogFile: with logFile set, ADD and DEL log there, tagged.
func TestLogFile(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	n := newNetwork(t, "host-local", "10.40.0.0/24")
	logFile := filepath.Join(t.TempDir(), "minibridge.log")
	n.extra["logFile"] = logFile
	p := newPod(t)
	conf := n.conf(t, "1.0.0", nil)
	run(t, host, p.call("ADD", conf))
	run(t, host, p.call("DEL", conf))
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"msg=attached", "msg=detached", "containerID=" + p.id, "plugin=minibridge", "cmd=ADD", "cmd=DEL"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log lacks %q:\n%s", want, b)
		}
	}
}

// BenchmarkAddDel: one ADD and one DEL of the real binary per iteration,
// on an existing bridge, as the runtime runs them.
func BenchmarkAddDel(b *testing.B) {
	for _, ipam := range ipams {
		b.Run("ipam="+ipam, func(b *testing.B) {
			minitest.RequireRoot(b)
			host, podNS := minitest.NewNS(b), minitest.NewNS(b)
			n := &network{typ: "minibridge", name: minitest.Name("net"), br: minitest.Name("mbt"), ipam: ipam,
				dataDir: b.TempDir(), subnets: []string{"10.41.0.0/24"}}
			conf := n.conf(b, "1.0.0", nil)
			for i := 0; b.Loop(); i++ {
				p := &pod{ns: podNS, id: fmt.Sprintf("bench%d", i), if_: "eth0"}
				for _, cmd := range []string{"ADD", "DEL"} {
					if _, cniErr, err := execIn(host, p.call(cmd, conf)); err != nil || cniErr != nil {
						b.Fatalf("%s: %v %v", cmd, err, cniErr)
					}
				}
			}
		})
	}
}

// TestMiniipamInProcess: with ipam.type miniipam, minibridge runs miniipam's
// allocator itself. It attaches with no miniipam binary in CNI_PATH; the
// reservation is in miniipam's store, where the miniipam binary (same store,
// same lock) finds it as this attachment's and can release it.
func TestMiniipamInProcess(t *testing.T) {
	requireIPAM(t, "miniipam")
	t.Parallel()
	host := minitest.NewNS(t)
	n := newNetwork(t, "miniipam", "10.36.0.0/24")
	p := newPod(t)
	noBinaries := "CNI_PATH=" + t.TempDir()

	add := p.call("ADD", n.conf(t, "1.0.0", nil))
	add.env = append(add.env, noBinaries)
	out := run(t, host, add)
	res := parseResult(t, "1.0.0", out)
	expectAttached(t, host, n, p, "1.0.0", res, 1500) // no uplink in host: 1500
	if r := n.reservations(t); len(r) != 1 || r[0] != res.IPs[0].Address.IP.String() {
		t.Fatalf("reservations %v, want %s", r, res.IPs[0].Address.IP)
	}

	again := p.call("ADD", n.conf(t, "1.0.0", nil))
	again.plugin = "miniipam"
	ipamRes := parseResult(t, "1.0.0", run(t, host, again))
	if got, want := ipamRes.IPs[0].Address.String(), res.IPs[0].Address.String(); got != want {
		t.Errorf("miniipam binary re-ADD gave %s, want the in-process reservation %s", got, want)
	}
	del := p.call("DEL", n.conf(t, "1.0.0", nil))
	del.plugin = "miniipam"
	run(t, host, del)
	if r := n.reservations(t); len(r) != 0 {
		t.Errorf("after the miniipam binary's DEL: reservations %v", r)
	}

	del = p.call("DEL", n.conf(t, "1.0.0", out))
	del.env = append(del.env, noBinaries)
	run(t, host, del)
	expectDetached(t, host, n, p)
}
