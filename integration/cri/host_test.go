package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/route"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// containerd's CRI runs the chain in the root network namespace: the pods'
// host side (bridge, veths, miniroute's and portmap's iptables rules,
// ip_forward) is this machine's. host is that namespace as the test found
// it, so the cleanup removes exactly what the test added and nothing else.

// bridgeName is the test's own bridge; the product's default, minicni0, is
// left alone in case minicni is installed on this machine.
const bridgeName = "mcri0"

// subnetCandidates are the pod subnets the test may use, the first that
// overlaps no route and no address of the root namespace.
var subnetCandidates = []string{"10.244.213.0/24", "172.31.213.0/24", "10.213.244.0/24", "192.168.213.0/24"}

// iptables chain prefixes the chain creates in the root namespace: miniroute's
// node-level chains and portmap's (CNI-HOSTPORT-*, CNI-DN-<hash> per pod).
var chainPrefixes = []string{"MINICNI-", "CNI-"}

// stampDir is where the miniroute binary keeps its nf_tables stamps
// (stamps.DefaultDir).
const stampDir = stamps.DefaultDir

// outsideDirs are the directories outside the test's own that the run
// creates when they are missing, children first: miniroute's stamp dir,
// libcni's cache dir (containerd 1.6 offers no setting for it) and the
// directory of the shims' sockets (containerd 1.6's shim puts them under
// /run/containerd/s whatever the state dir). The cleanup removes those the
// test created, when empty: each file in them is removed by its owner (the
// second DEL, the shim's exit), or by the cleanup for the test's own.
var outsideDirs = []string{stampDir, filepath.Dir(stampDir), cniCacheDir, filepath.Dir(cniCacheDir), "/run/containerd/s", "/run/containerd"}

type host struct {
	subnet  *net.IPNet
	gateway net.IP
	// before the test
	ipForward string
	chains    map[string]map[string]bool // table -> chain -> existed
	stamp     string                     // this namespace's stamp files' prefix
	newDirs   []string                   // outsideDirs missing before the test
	// cgroupParent is the pods' cgroup parent, removed after.
	cgroupParent string
	// sandboxes returns the test's pod sandbox IDs, for libcni's cache files.
	sandboxes func() []string
}

// newHost picks the subnet, records the root namespace's state and registers
// the cleanup. A bridge left by an earlier run that crashed is removed first.
func newHost(t *testing.T, sandboxes func() []string) *host {
	t.Helper()
	h := &host{chains: map[string]map[string]bool{}, sandboxes: sandboxes,
		cgroupParent: fmt.Sprintf("/minicni-cri-%d", os.Getpid())}
	if l, err := netlinksafe.LinkByName(bridgeName); err == nil {
		t.Logf("removing bridge %s left by an earlier run", bridgeName)
		removeBridge(l)
	}
	var err error
	if h.subnet, err = pickSubnet(); err != nil {
		t.Fatal(err)
	}
	h.gateway = append(net.IP{}, h.subnet.IP.To4()...)
	h.gateway[3]++
	if h.ipForward, err = sysctl.Sysctl("net/ipv4/ip_forward"); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"filter", "nat"} {
		if h.chains[table], err = chains(table); err != nil {
			t.Fatal(err)
		}
	}
	cookie, err := netnsCookie()
	if err != nil {
		t.Fatal(err)
	}
	h.stamp = filepath.Join(stampDir, fmt.Sprintf("%016x-", cookie))
	if stamps, _ := filepath.Glob(h.stamp + "*"); len(stamps) > 0 {
		h.stamp = "" // not ours to remove
	}
	for _, d := range outsideDirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			h.newDirs = append(h.newDirs, d)
		}
	}
	t.Cleanup(func() {
		for _, err := range h.cleanup() {
			t.Errorf("cleanup of the root network namespace: %v", err)
		}
	})
	return h
}

// pickSubnet returns the first candidate that overlaps no route (any table,
// default routes aside) and no address of the root namespace.
func pickSubnet() (*net.IPNet, error) {
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	addrs, err := netlinksafe.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var used []*net.IPNet
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones > 0 {
				used = append(used, r.Dst)
			}
		}
	}
	for _, a := range addrs {
		used = append(used, a.IPNet)
	}
	for _, c := range subnetCandidates {
		_, n, _ := net.ParseCIDR(c)
		if !slices.ContainsFunc(used, func(u *net.IPNet) bool { return u.Contains(n.IP) || n.Contains(u.IP) }) {
			return n, nil
		}
	}
	return nil, fmt.Errorf("every candidate pod subnet %v overlaps a route or address of this machine", subnetCandidates)
}

// netnsCookie is the calling thread's network namespace cookie, which names
// miniroute's stamp files.
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

var chainLine = regexp.MustCompile(`(?m)^:(\S+) `)

// chains lists the chains of an IPv4 table whose names have one of
// chainPrefixes.
func chains(table string) (map[string]bool, error) {
	out, err := iptablesSave(table)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, s := range chainLine.FindAllStringSubmatch(out, -1) {
		if hasPrefix(s[1]) {
			m[s[1]] = true
		}
	}
	return m, nil
}

func hasPrefix(chain string) bool {
	return slices.ContainsFunc(chainPrefixes, func(p string) bool { return strings.HasPrefix(chain, p) })
}

func iptablesSave(table string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", table).Output()
	if err != nil {
		return "", fmt.Errorf("iptables-save -t %s: %w", table, err)
	}
	return string(out), nil
}

// newChains is what the test added: chains of ours that did not exist before.
func (h *host) newChains(table string) ([]string, error) {
	now, err := chains(table)
	if err != nil {
		return nil, err
	}
	var out []string
	for c := range now {
		if !h.chains[table][c] {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

var jumpTarget = regexp.MustCompile(`\s-j\s+(\S+)`)

// removeChains deletes chains and every rule jumping to them, in one
// iptables-restore per table.
func removeChains(table string, doomed []string) error {
	if len(doomed) == 0 {
		return nil
	}
	save, err := iptablesSave(table)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(save, "\n") {
		rest, ok := strings.CutPrefix(l, "-A ")
		if !ok {
			continue
		}
		chain, _, _ := strings.Cut(rest, " ")
		m := jumpTarget.FindStringSubmatch(l)
		if m != nil && slices.Contains(doomed, m[1]) && !slices.Contains(doomed, chain) {
			lines = append(lines, "-D "+rest)
		}
	}
	for _, c := range doomed {
		lines = append(lines, "-F "+c)
	}
	for _, c := range doomed {
		lines = append(lines, "-X "+c)
	}
	return iptablesRestore(fmt.Sprintf("*%s\n%s\nCOMMIT\n", table, strings.Join(lines, "\n")))
}

// removeRulesMentioning deletes the rules of our chains that mention s (the
// test's subnet), for chains that existed before the test.
func removeRulesMentioning(table, s string) error {
	save, err := iptablesSave(table)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(save, "\n") {
		if rest, ok := strings.CutPrefix(l, "-A "); ok && hasPrefix(rest) && strings.Contains(rest, s) {
			lines = append(lines, "-D "+rest)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return iptablesRestore(fmt.Sprintf("*%s\n%s\nCOMMIT\n", table, strings.Join(lines, "\n")))
}

func iptablesRestore(input string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iptables-restore", "-w", "5", "--noflush")
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %v: %s\ninput:\n%s", err, out, input)
	}
	return nil
}

// removeBridge deletes the bridge and the veths still attached to it.
func removeBridge(br netlink.Link) []error {
	var errs []error
	links, err := netlinksafe.LinkList()
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
			}
		}
	}
	if err := netlink.LinkDel(br); err != nil && !errors.Is(err, unix.ENODEV) {
		errs = append(errs, fmt.Errorf("delete bridge %s: %w", br.Attrs().Name, err))
	}
	return errs
}

// cleanup undoes the test's changes to the root namespace: the bridge and
// its veths, the iptables chains and rules the test's chain created, the
// conntrack entries of the test's subnet, ip_forward, miniroute's stamps, libcni's cache files of the test's pods
// and the pods' cgroup parent. It runs after containerd has stopped.
func (h *host) cleanup() []error {
	var errs []error
	if l, err := netlinksafe.LinkByName(bridgeName); err == nil {
		errs = append(errs, removeBridge(l)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, table := range []string{"filter", "nat"} {
		if h.chains[table][rules.ForwardChain] || h.chains[table][rules.PostroutingChain] {
			// minicni runs on this machine: keep its chains, drop our rules.
			if err := removeRulesMentioning(table, h.subnet.String()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !h.chains["filter"][rules.ForwardChain] && !h.chains["nat"][rules.PostroutingChain] {
		_ = stamps.Default().Forget(rules.IPv4) // they say the rules were verified
		if err := route.Cleanup(ctx, backend.New(rules.IPv4)); err != nil {
			errs = append(errs, fmt.Errorf("miniroute chains: %w", err))
		}
	}
	for _, table := range []string{"filter", "nat"} {
		doomed, err := h.newChains(table)
		if err == nil {
			err = removeChains(table, doomed)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if left, err := h.newChains(table); err == nil && len(left) > 0 {
			errs = append(errs, fmt.Errorf("table %s still has chains the test created: %v", table, left))
		}
	}
	// Connections the test made (pings, the hostPort fetches) linger in
	// conntrack for minutes; drop those of the test's subnet.
	f := &netlink.ConntrackFilter{}
	if err := f.AddIPNet(netlink.ConntrackReplyAnyIP, h.subnet); err == nil {
		if _, err := netlinksafe.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
			errs = append(errs, fmt.Errorf("conntrack entries of %s: %w", h.subnet, err))
		}
	}
	if now, err := sysctl.Sysctl("net/ipv4/ip_forward"); err == nil && now != h.ipForward {
		if _, err := sysctl.Sysctl("net/ipv4/ip_forward", h.ipForward); err != nil {
			errs = append(errs, fmt.Errorf("restore ip_forward=%s: %w", h.ipForward, err))
		}
	}
	if h.stamp != "" {
		stamps, _ := filepath.Glob(h.stamp + "*")
		for _, s := range stamps {
			if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, removeCNICache(h.sandboxes())...)
	errs = append(errs, removeCgroup(h.cgroupParent)...)
	for _, d := range h.newDirs {
		_ = os.Remove(d) // only when empty: parallel tests may stamp their own namespaces there
	}
	return errs
}

// cniCacheDir is where containerd 1.6's libcni caches each attachment's
// config and result (libcni's default).
const cniCacheDir = "/var/lib/cni/results"

// removeCNICache removes libcni's cache files of the test's sandboxes. The
// second DEL removes them; they remain only when a test failed before it.
func removeCNICache(ids []string) []error {
	var errs []error
	ents, _ := os.ReadDir(cniCacheDir)
	for _, e := range ents {
		for _, id := range ids {
			if strings.Contains(e.Name(), id) {
				if err := os.Remove(filepath.Join(cniCacheDir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errs
}

// removeCgroup removes the pods' cgroup parent from every hierarchy,
// deepest directories first (runc removes the containers' own cgroups;
// these remain only after a failure).
func removeCgroup(parent string) []error {
	var errs []error
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, hier := range append(hierarchies, "/sys/fs/cgroup") {
		root := filepath.Join(hier, parent)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errs
}

// rulesMentioning returns the IPv4 rules (filter and nat) holding any of ss.
func rulesMentioning(ss ...string) ([]string, error) {
	var out []string
	for _, table := range []string{"filter", "nat"} {
		save, err := iptablesSave(table)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(save, "\n") {
			if strings.HasPrefix(l, "-A ") && slices.ContainsFunc(ss, func(s string) bool { return strings.Contains(l, s) }) {
				out = append(out, table+": "+l)
			}
		}
	}
	return out, nil
}

// vethsOn lists the links enslaved to the bridge.
func vethsOn(bridge string) ([]string, error) {
	br, err := netlinksafe.LinkByName(bridge)
	if err != nil {
		return nil, err
	}
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// fileExists reports whether path exists, for the netns and reservations.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
