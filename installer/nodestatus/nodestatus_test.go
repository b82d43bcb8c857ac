package nodestatus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/nodestatus"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/vishvananda/netlink"
)

// binDir holds the plugins and the minicni binary, built once.
var binDir string

func TestMain(m *testing.M) {
	minitest.MainWithPlugins(m, &binDir, "minibridge", "miniipam", "miniroute", "minicni")
}

const network = "stnet"

// node is a simulated node: its own network namespace, conf dir, bin dir
// (the CNI_PATH of the plugins, which holds the minicni binary too: it is
// listed as the runtime would see it), libcni cache and IPAM store.
type node struct {
	ns                      ns.NetNS
	conf, cache, data, boot string
	cni                     *libcni.CNIConfig
	list                    *libcni.NetworkConfigList
}

func newNode(t *testing.T) *node {
	t.Helper()
	minitest.RequireRoot(t)
	n := &node{ns: minitest.NewNS(t), conf: t.TempDir(), cache: t.TempDir(), data: t.TempDir(), boot: t.TempDir()}
	conflist := fmt.Sprintf(`{"cniVersion":"1.0.0","cniVersions":["1.0.0","1.1.0"],"name":%q,"plugins":[
	  {"type":"minibridge","bridge":"stbr0","isGateway":true,"isDefaultGateway":true,
	   "ipam":{"type":"miniipam","dataDir":%q,"ranges":[[{"subnet":"10.123.7.0/28"}]]}},
	  {"type":"miniroute","clusterCIDR":["10.123.0.0/16"],"masquerade":true}]}`, network, n.data)
	path := filepath.Join(n.conf, "10-minicni.conflist")
	if err := os.WriteFile(path, []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes([]byte(conflist))
	if err != nil {
		t.Fatal(err)
	}
	n.list = list
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{binDir}, n.cache, nil)
	return n
}

// pod is one attachment made by a real chain ADD through libcni.
type pod struct {
	id, ip, veth string
	ns           ns.NetNS
}

func (n *node) add(t *testing.T, id string) pod {
	t.Helper()
	p := pod{id: id, ns: minitest.NewNS(t), veth: bridge.HostVethName(id, "eth0")}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: p.ns.Path(), IfName: "eth0"}
	minitest.Do(t, n.ns, func() error {
		res, err := n.cni.AddNetworkList(context.Background(), n.list, rt)
		if err != nil {
			return err
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			return err
		}
		p.ip = r.IPs[0].Address.IP.String()
		return nil
	})
	return p
}

func (n *node) opt() nodestatus.Options {
	return nodestatus.Options{ConfDir: n.conf, BinDir: binDir, CacheDir: n.cache}
}

func (n *node) collect(t *testing.T, opt nodestatus.Options) *nodestatus.Report {
	t.Helper()
	var rep *nodestatus.Report
	minitest.Do(t, n.ns, func() error {
		rep = nodestatus.Collect(context.Background(), opt)
		return nil
	})
	return rep
}

// run runs `minicni status -o json` with args in the node's namespace and
// parses its output back.
func (n *node) run(t *testing.T, args ...string) (*nodestatus.Report, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := 0
	minitest.Do(t, n.ns, func() error {
		cmd := exec.Command(filepath.Join(binDir, "minicni"), append([]string{"status", "-o", "json",
			"--conf-dir", n.conf, "--bin-dir", binDir, "--cache-dir", n.cache}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
			return nil
		}
		return err
	})
	var rep nodestatus.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("minicni status output is not a report: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return &rep, code
}

// TestCleanNode: two pods attached by the chain; the report lists them,
// finds nothing wrong, exits 0, and says the same as JSON from the binary.
func TestCleanNode(t *testing.T) {
	n := newNode(t)
	p1, p2 := n.add(t, "clean-one"), n.add(t, "clean-two")
	rep := n.collect(t, n.opt())
	if len(rep.Problems) != 0 || len(rep.Orphans) != 0 || rep.ExitCode() != nodestatus.ExitOK {
		t.Fatalf("clean node: problems %+v, orphans %+v, exit %d", rep.Problems, rep.Orphans, rep.ExitCode())
	}
	c := rep.Conflist
	if !c.Minicni || !c.Valid || c.Name != network || c.Path != filepath.Join(n.conf, "10-minicni.conflist") {
		t.Errorf("conflist section: %+v", c)
	}
	for _, name := range []string{"minibridge", "miniipam", "miniroute"} {
		i := slices.IndexFunc(rep.Binaries, func(b nodestatus.Binary) bool { return b.Name == name })
		if i < 0 || !rep.Binaries[i].Minicni || rep.Binaries[i].Version == "" || !slices.Contains(rep.Binaries[i].CNIVersions, "1.1.0") {
			t.Errorf("binary %s: %+v", name, rep.Binaries)
		}
	}
	if b := rep.Bridge; b == nil || !b.Exists || !b.Up || b.Ports != 2 || !slices.Equal(b.Addresses, []string{"10.123.7.1/28"}) || b.MTU == 0 {
		t.Errorf("bridge section: %+v", rep.Bridge)
	}
	a := rep.Addresses
	if a == nil || len(a.Pools) != 1 || a.Pools[0].Size != 13 || a.Pools[0].Used != 2 || a.Pools[0].Free != 11 {
		t.Fatalf("addresses section: %+v", a)
	}
	var got []string
	for _, r := range a.Reservations {
		got = append(got, fmt.Sprintf("%s %s %s veth=%t cache=%t", r.IP, r.ContainerID, r.Veth, r.HasVeth, r.HasCache))
	}
	want := []string{
		fmt.Sprintf("%s clean-one %s veth=true cache=true", p1.ip, p1.veth),
		fmt.Sprintf("%s clean-two %s veth=true cache=true", p2.ip, p2.veth),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reservations (-want +got):\n%s", diff)
	}
	m := rep.Miniroute
	if m == nil || len(m.Families) != 2 {
		t.Fatalf("miniroute section: %+v", m)
	}
	for _, mr := range m.Families[0].Modes {
		if has := len(mr.Rules) > 0; has != (mr.Mode == m.NodeMode) {
			t.Errorf("IPv4 rules in %s (node's mode %s): %q", mr.Mode, m.NodeMode, mr.Rules)
		}
	}

	var table bytes.Buffer
	if err := nodestatus.WriteTable(&table, rep, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CONFLIST\n", "BINARIES", "BRIDGE\n  stbr0  up: yes", "ADDRESSES", "  " + p1.ip + "  clean-one", "MINIROUTE",
		"ROUTES", "\nno problem found\n"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	bin, code := n.run(t)
	if code != nodestatus.ExitOK {
		t.Errorf("minicni status exited %d, want 0: %+v", code, bin.Problems)
	}
	// The binary's report, parsed back, says what Collect said (up to the
	// binaries' about lines, which carry nothing variable).
	if diff := cmp.Diff(rep, bin); diff != "" {
		t.Errorf("JSON from minicni status differs from Collect (-Collect +binary):\n%s", diff)
	}
}

// broken is the node of TestOrphans: one pod per kind of orphan, made by
// breaking what a real ADD set up.
type broken struct {
	*node
	healthy, oldRes, newRes, noRes, cacheOnly, gone, noVeth, earlier pod
	bootID, stat                                                     string
}

func delLink(t *testing.T, n ns.NetNS, name string) {
	t.Helper()
	minitest.Do(t, n, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
}

func (n *node) cacheFile(p pod) string {
	return filepath.Join(n.cache, "results", network+"-"+p.id+"-eth0")
}

func (n *node) resFile(p pod) string { return filepath.Join(n.data, network, p.ip) }

func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(-d)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func newBroken(t *testing.T) *broken {
	n := &broken{node: newNode(t)}
	n.healthy = n.add(t, "healthy")
	n.oldRes, n.newRes = n.add(t, "old-res"), n.add(t, "new-res")
	n.noRes, n.cacheOnly = n.add(t, "no-res"), n.add(t, "cache-only")
	n.gone, n.noVeth, n.earlier = n.add(t, "netns-gone"), n.add(t, "no-veth"), n.add(t, "earlier")

	// A reservation with neither veth nor cache entry, older than the grace
	// period (10 minutes); another one just made.
	for _, p := range []pod{n.oldRes, n.newRes} {
		delLink(t, n.ns, p.veth)
		rm(t, n.cacheFile(p))
	}
	age(t, n.resFile(n.oldRes), 20*time.Minute)
	// A veth without reservation.
	rm(t, n.resFile(n.noRes))
	// A cache entry with neither veth nor reservation.
	delLink(t, n.ns, n.cacheOnly.veth)
	rm(t, n.resFile(n.cacheOnly))
	// A veth whose pod namespace is gone (its path removed; the namespace
	// lives on while something holds it, here this test).
	hold, err := os.Open(n.gone.ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hold.Close() })
	if err := minitest.RemoveNS(n.gone.ns); err != nil {
		t.Fatal(err)
	}
	// A veth gone under a live attachment.
	delLink(t, n.ns, n.noVeth.veth)
	// A reservation from before this boot: a boot ID that is not the one
	// the store recorded, a boot 30 minutes ago, a reservation of 2 hours.
	n.bootID, n.stat = filepath.Join(n.boot, "boot_id"), filepath.Join(n.boot, "stat")
	if err := os.WriteFile(n.bootID, []byte("00000000-0000-0000-0000-000000000001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	btime := fmt.Sprintf("cpu 1 2 3\nbtime %d\n", time.Now().Add(-30*time.Minute).Unix())
	if err := os.WriteFile(n.stat, []byte(btime), 0o644); err != nil {
		t.Fatal(err)
	}
	age(t, n.resFile(n.earlier), 2*time.Hour)
	delLink(t, n.ns, n.earlier.veth) // a reboot takes the links, not libcni's cache
	return n
}

func (n *broken) opt() nodestatus.Options {
	o := n.node.opt()
	o.BootIDPath, o.StatPath = n.bootID, n.stat
	return o
}

func (n *broken) args() []string { return []string{"--boot-id-file", n.bootID, "--proc-stat", n.stat} }

// orphans renders a report's orphans for comparison.
func orphans(rep *nodestatus.Report) []string {
	var out []string
	for _, o := range rep.Orphans {
		out = append(out, fmt.Sprintf("%s ip=%s veth=%s container=%s fixable=%t", o.Kind, o.IP, o.Veth, o.ContainerID, o.Fixable))
	}
	slices.Sort(out)
	return out
}

func (n *broken) wantOrphans(fixed bool) []string {
	want := []string{
		fmt.Sprintf("reservation ip=%s veth= container=new-res fixable=false", n.newRes.ip),
		fmt.Sprintf("veth ip= veth=%s container=no-res fixable=false", n.noRes.veth),
		"cache ip= veth= container=cache-only fixable=false",
		fmt.Sprintf("no-veth ip=%s veth= container=no-veth fixable=false", n.noVeth.ip),
	}
	if fixed {
		// The veth is removed; its reservation and cache entry are the
		// runtime's to release.
		want = append(want, fmt.Sprintf("no-veth ip=%s veth= container=netns-gone fixable=false", n.gone.ip),
			"cache ip= veth= container=earlier fixable=false")
	} else {
		want = append(want,
			fmt.Sprintf("reservation ip=%s veth= container=old-res fixable=true", n.oldRes.ip),
			fmt.Sprintf("netns-gone ip= veth=%s container=netns-gone fixable=true", n.gone.veth),
			fmt.Sprintf("earlier-boot ip=%s veth= container=earlier fixable=true", n.earlier.ip))
	}
	slices.Sort(want)
	return want
}

// state is what status must not change: the node's links, addresses,
// routes and iptables, the IPAM store, the cache and the conf dir.
// IPv6 link-local addresses and their routes are left out: the kernel adds
// them on its own once duplicate address detection ends, which under load
// can be during the test.
func (n *broken) state(t *testing.T) []string {
	s := minitest.Snapshot(t, n.ns, true)
	all := slices.Concat(s.Links, s.Addrs, s.Routes, s.IPTables, minitest.Files(t, n.data), minitest.Files(t, n.cache), minitest.Files(t, n.conf))
	return slices.DeleteFunc(all, func(line string) bool { return strings.Contains(line, "fe80:") })
}

// TestOrphans: each kind of orphan, made on purpose, is reported with a
// problem line; looking changes nothing; --fix removes exactly the
// provable ones and says so.
func TestOrphans(t *testing.T) {
	n := newBroken(t)
	before := n.state(t)

	rep := n.collect(t, n.opt())
	if diff := cmp.Diff(n.wantOrphans(false), orphans(rep)); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
	if len(rep.Problems) != len(rep.Orphans) || rep.ExitCode() != nodestatus.ExitProblem {
		t.Errorf("want one problem per orphan and exit 1; got exit %d, problems:\n%+v", rep.ExitCode(), rep.Problems)
	}
	// The agent's /metrics counts (Orphans) are the report's, and this
	// node has every kind.
	var counts map[string]int
	minitest.Do(t, n.ns, func() error {
		var err error
		counts, err = nodestatus.Orphans(n.opt())
		return err
	})
	want := map[string]int{}
	for _, o := range rep.Orphans {
		want[o.Kind]++
	}
	for _, k := range nodestatus.Kinds {
		if want[k] == 0 {
			t.Errorf("no orphan of kind %s made", k)
		}
	}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("Orphans counts (-report +Orphans):\n%s", diff)
	}
	for _, p := range rep.Problems {
		if p.Do == "" || strings.Contains(p.Do, "\n") || strings.Contains(p.What, "\n") {
			t.Errorf("problem without a one-line what-to-do: %+v", p)
		}
	}
	var table bytes.Buffer
	if err := nodestatus.WriteTable(&table, rep, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Logf("the table:\n%s", table.String())
	if want := fmt.Sprintf("PROBLEMS (%d)\n", len(rep.Problems)); !strings.Contains(table.String(), want) ||
		strings.Count(table.String(), "\n  do: ") != len(rep.Problems) {
		t.Errorf("table lacks %q or a do: line per problem", want)
	}
	bin, code := n.run(t, n.args()...)
	if code != nodestatus.ExitProblem {
		t.Errorf("minicni status exited %d, want 1", code)
	}
	if diff := cmp.Diff(n.wantOrphans(false), orphans(bin)); diff != "" {
		t.Errorf("orphans from minicni status -o json (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, n.state(t)); diff != "" {
		t.Fatalf("status without --fix changed the node (-before +after):\n%s", diff)
	}

	reservations := minitest.Reservations(t, n.data, network)
	links := minitest.LinkNames(t, n.ns)
	fixed, code := n.run(t, append(n.args(), "--fix")...)
	if code != nodestatus.ExitProblem {
		t.Errorf("minicni status --fix exited %d, want 1 (unprovable orphans are left)", code)
	}
	if diff := cmp.Diff(n.wantOrphans(true), orphans(fixed)); diff != "" {
		t.Errorf("orphans after --fix (-want +got):\n%s", diff)
	}
	wantFixed := []string{
		fmt.Sprintf("released %s of container earlier: reserved before this boot", n.earlier.ip),
		fmt.Sprintf("released %s of container old-res (eth0): neither host veth nor libcni cache entry", n.oldRes.ip),
		fmt.Sprintf("removed host veth %s of container netns-gone (eth0): its network namespace %s is gone", n.gone.veth, n.gone.ns.Path()),
	}
	slices.Sort(wantFixed)
	gotFixed := slices.Sorted(slices.Values(fixed.Fixed))
	if diff := cmp.Diff(wantFixed, gotFixed); diff != "" {
		t.Errorf("--fix said (-want +got):\n%s", diff)
	}
	wantRes := slices.DeleteFunc(reservations, func(ip string) bool { return ip == n.earlier.ip || ip == n.oldRes.ip })
	if diff := cmp.Diff(wantRes, minitest.Reservations(t, n.data, network)); diff != "" {
		t.Errorf("reservations after --fix (-want +got):\n%s", diff)
	}
	wantLinks := slices.DeleteFunc(links, func(l string) bool { return l == n.gone.veth })
	if diff := cmp.Diff(wantLinks, minitest.LinkNames(t, n.ns)); diff != "" {
		t.Errorf("links after --fix (-want +got):\n%s", diff)
	}
}

// iptables runs an iptables command line in n.
func iptables(t *testing.T, n ns.NetNS, line string) {
	t.Helper()
	minitest.Do(t, n, func() error {
		args, err := rules.Tokenize(line)
		if err != nil {
			return err
		}
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", line, err, out)
		}
		return nil
	})
}

func sections(rep *nodestatus.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.Section+": "+p.What)
	}
	return out
}

// TestRulesInOtherMode: the kubelet's hint chain says the node's mode;
// minicni's rules found in the other mode are flagged, and the problem's
// commands remove them.
func TestRulesInOtherMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []string // run after a pod's ADD wrote the rules (in nf_tables, Debian's default)
		other string   // the mode flagged
		want  []string // miniroute's problems, with %s for the reason
		// after: the problems left once the flagged rules are removed
		after []string
	}{{
		name: "nf_tables node, stray legacy rules",
		setup: []string{
			"iptables-nft -t mangle -N KUBE-IPTABLES-HINT",
			"iptables-legacy -t nat -N MINICNI-POSTROUTING",
			`iptables-legacy -t nat -A POSTROUTING -m comment --comment "minicni: masquerade pod traffic leaving the cluster" -j MINICNI-POSTROUTING`,
			"iptables-legacy -t nat -A MINICNI-POSTROUTING -s 10.123.7.0/28 -j MASQUERADE",
		},
		other: "legacy",
		want: []string{"miniroute: minicni's IPv4 rules are in legacy, but the node uses nf_tables (the kubelet's KUBE-IPTABLES-HINT chain is in nf_tables (iptables-nft-save)): " +
			"the kernel runs them, the node's tools do not show them"},
	}, {
		name:  "legacy node, rules written in nf_tables",
		setup: []string{"iptables-legacy -t mangle -N KUBE-IPTABLES-HINT"},
		other: "nf_tables",
		want: []string{
			"miniroute: minicni's IPv4 rules are in nf_tables, but the node uses legacy (the kubelet's KUBE-IPTABLES-HINT chain is in legacy (iptables-legacy-save)): " +
				"the kernel runs them, the node's tools do not show them",
			"miniroute: pods are attached but minicni's IPv4 rules are not in legacy: pods cannot leave the node",
		},
		after: []string{"miniroute: pods are attached but minicni's IPv4 rules are not in legacy: pods cannot leave the node"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			n.add(t, "mode-pod")
			for _, line := range tc.setup {
				iptables(t, n.ns, line)
			}
			rep := n.collect(t, n.opt())
			if diff := cmp.Diff(tc.want, sections(rep)); diff != "" {
				t.Fatalf("problems (-want +got):\n%s", diff)
			}
			var flagged, remove []string
			for _, mr := range rep.Miniroute.Families[0].Modes {
				if mr.Mode == tc.other {
					flagged, remove = mr.Rules, mr.Remove
				}
			}
			if len(flagged) == 0 || len(remove) == 0 || !strings.Contains(rep.Problems[0].Do, strings.Join(remove, "; ")) {
				t.Fatalf("IPv4 rules in %s and the commands removing them not listed, or not in the problem: %+v\n%s", tc.other, rep.Miniroute, rep.Problems[0].Do)
			}
			for _, cmd := range remove {
				iptables(t, n.ns, cmd)
			}
			rep = n.collect(t, n.opt())
			if diff := cmp.Diff(tc.after, sections(rep)); diff != "" {
				t.Errorf("problems once the commands ran (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPeers: with the node list, the peers the agent cannot route, the
// invalid ones and the routes missing from the kernel are problems; a
// route with minicni's protocol is listed.
func TestPeers(t *testing.T) {
	n := newNode(t)
	minitest.Do(t, n.ns, func() error {
		d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "underlay0"}, PeerName: "underlay0p"}
		if err := netlink.LinkAdd(d); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(d); err != nil {
			return err
		}
		a, _ := netlink.ParseAddr("10.77.0.1/24")
		return netlink.AddrAdd(d, a)
	})
	file := filepath.Join(t.TempDir(), "nodes.json")
	list := `[{"name":"n0","internalIPs":["10.77.0.1"],"podCIDRs":["10.123.7.0/24"]},
	  {"name":"n1","internalIPs":["10.77.0.2"],"podCIDRs":["10.123.8.0/24"]},
	  {"name":"n2","internalIPs":["10.78.0.5"],"podCIDRs":["10.123.9.0/24"]},
	  {"name":"n3","internalIPs":["10.77.0.3"],"podCIDRs":["not-a-cidr"]}]`
	if err := os.WriteFile(file, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	src := nodes.NewFile(file)
	if err := src.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	opt := n.opt()
	opt.Nodes, opt.Self, opt.Overlay = src, "n0", overlay.None

	rep := n.collect(t, opt)
	got := sections(rep)
	want := []string{
		"routes: node n2 cannot be routed: ",
		"routes: node n3 is ignored: ",
		"routes: route 10.123.8.0/24 via 10.77.0.2 to node n1 is not in the kernel: pods there are unreachable",
	}
	if len(got) != len(want) {
		t.Fatalf("problems: want %d like %q, got %q", len(want), want, got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: want %q…, got %q", i, want[i], got[i])
		}
	}
	if rep.ExitCode() != nodestatus.ExitProblem || !rep.Routes.Checked || len(rep.Routes.Kernel) != 0 {
		t.Errorf("exit %d, routes %+v", rep.ExitCode(), rep.Routes)
	}

	minitest.Do(t, n.ns, func() error {
		_, dst, _ := net.ParseCIDR("10.123.8.0/24")
		l, err := netlink.LinkByName("underlay0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("10.77.0.2"), LinkIndex: l.Attrs().Index, Protocol: 109})
	})
	rep = n.collect(t, opt)
	if len(rep.Problems) != 2 || !slices.Equal(rep.Routes.Kernel, []string{"10.123.8.0/24 via 10.77.0.2 dev underlay0"}) || len(rep.Routes.Missing) != 0 {
		t.Errorf("with the route: problems %q, routes %+v", sections(rep), rep.Routes)
	}
}

// TestConflistProblems: what the conflist and binaries sections flag.
func TestConflistProblems(t *testing.T) {
	other := `{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge","bridge":"cni0"}]}`
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, n *node, opt *nodestatus.Options)
		want  func(n *node) []string // each problem's start
		valid bool
	}{{
		name:  "minicni's",
		edit:  func(*testing.T, *node, *nodestatus.Options) {},
		valid: true,
	}, {
		name: "no configuration",
		edit: func(t *testing.T, n *node, _ *nodestatus.Options) {
			rm(t, filepath.Join(n.conf, "10-minicni.conflist"))
		},
		want: func(n *node) []string { return []string{"conflist: no CNI configuration in " + n.conf + ": "} },
	}, {
		name: "another sorts first",
		edit: func(t *testing.T, n *node, _ *nodestatus.Options) {
			if err := os.WriteFile(filepath.Join(n.conf, "05-other.conflist"), []byte(other), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: func(n *node) []string {
			return []string{fmt.Sprintf(`conflist: the runtime uses %s (network "other"), not minicni's `, filepath.Join(n.conf, "05-other.conflist"))}
		},
	}, {
		name: "refused by minibridge",
		edit: func(t *testing.T, n *node, _ *nodestatus.Options) {
			path := filepath.Join(n.conf, "10-minicni.conflist")
			data, _ := os.ReadFile(path)
			data = bytes.Replace(data, []byte(`"bridge":"stbr0"`), []byte(`"bridge":"stbr0","mtu":-5`), 1)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: func(n *node) []string {
			return []string{"conflist: " + filepath.Join(n.conf, "10-minicni.conflist") + " is refused by a plugin: "}
		},
	}, {
		name: "binaries missing",
		edit: func(t *testing.T, _ *node, opt *nodestatus.Options) { opt.BinDir = t.TempDir() },
		want: func(*node) []string {
			return []string{"binaries: minibridge, named in the conflist, is not an executable in ",
				"binaries: miniipam, named in the conflist, is not an executable in ",
				"binaries: miniroute, named in the conflist, is not an executable in "}
		},
		valid: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			opt := n.opt()
			tc.edit(t, n, &opt)
			rep := n.collect(t, opt)
			got := sections(rep)
			var want []string
			if tc.want != nil {
				want = tc.want(n)
			}
			if len(got) != len(want) {
				t.Fatalf("problems: want %d like %q, got %q", len(want), want, got)
			}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("problem %d: want %q…, got %q", i, want[i], got[i])
				}
			}
			if rep.Conflist.Valid != tc.valid {
				t.Errorf("valid = %t, want %t (%s)", rep.Conflist.Valid, tc.valid, rep.Conflist.Error)
			}
			wantExit := nodestatus.ExitProblem
			if len(want) == 0 {
				wantExit = nodestatus.ExitOK
			}
			if rep.ExitCode() != wantExit {
				t.Errorf("exit %d, want %d", rep.ExitCode(), wantExit)
			}
		})
	}
}

// TestFixChecksAgain: Fix proves each removal again at the moment it makes
// it: a report naming a live pod's reservation and veth as orphans (a
// stale or forged report) removes nothing.
func TestFixChecksAgain(t *testing.T) {
	n := newNode(t)
	p := n.add(t, "alive")
	rep := &nodestatus.Report{Orphans: []nodestatus.Orphan{
		{Kind: nodestatus.KindReservation, IP: p.ip, ContainerID: p.id, IfName: "eth0", Fixable: true},
		{Kind: nodestatus.KindNetnsGone, Veth: p.veth, ContainerID: p.id, IfName: "eth0", NetNS: p.ns.Path(), Fixable: true},
	}}
	reservations, links := minitest.Reservations(t, n.data, network), minitest.LinkNames(t, n.ns)
	var fixed []string
	minitest.Do(t, n.ns, func() error {
		var err error
		fixed, err = nodestatus.Fix(context.Background(), n.opt(), rep)
		return err
	})
	if len(fixed) != 0 {
		t.Errorf("Fix removed %q from a live pod", fixed)
	}
	if diff := cmp.Diff(reservations, minitest.Reservations(t, n.data, network)); diff != "" {
		t.Errorf("reservations (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(links, minitest.LinkNames(t, n.ns)); diff != "" {
		t.Errorf("links (-before +after):\n%s", diff)
	}
}
