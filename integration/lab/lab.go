// Package lab builds a simulated minicni cluster on one machine out of
// network namespaces: an underlay (one segment, or two joined by a router
// namespace), one namespace per node (where the CNI chain runs, as kubelet
// runs it on a host), pods as namespaces attached by the chain through
// libcni, and an "outside" host reachable only through the nodes. The
// integration tests and the minicni-lab command share it, so what the demo
// shows is what the tests check.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// Options describe a lab. Zero values take the defaults noted.
type Options struct {
	// Name prefixes every namespace the lab creates (at most 8 bytes), so
	// several labs can run at once and Down finds everything by prefix.
	Name string
	// Nodes is the number of simulated nodes (default 1).
	Nodes int
	// BinDir is CNI_PATH: minicni's plugins and any reference plugin the
	// conflist names.
	BinDir string
	// Conflist is the chain template, e.g. conflist/10-minicni.conflist. Each
	// node gets a copy with its own subnet, dataDir and, with StaticRoutes,
	// miniroute routes to the other nodes.
	Conflist []byte
	// StateDir holds per-node IPAM data and libcni caches (default: a new
	// temporary directory, removed by Down).
	StateDir string
	// ClusterCIDR is split into one /24 per node (default 172.18.0.0/16).
	ClusterCIDR string
	// Underlay is the node network; node i is .11+i, outside host .200
	// (default 10.99.0.0/24). It exists only inside the lab's namespaces.
	Underlay string
	// Topology is Flat (the default: every node and the outside host on
	// Underlay) or Routed: two segments, Underlay and Underlay2, joined by
	// a router namespace holding .1 on each; the first half of the nodes
	// (rounded up) and the outside host are on Underlay, the others on
	// Underlay2 (node i still .11+i), and every host has a default route
	// via the router.
	Topology string
	// Underlay2 is the Routed topology's second segment (default
	// 10.99.1.0/24).
	Underlay2 string
	// Overlay, when set, is the agents' --overlay (auto, vxlan, none);
	// empty leaves the agent's default (auto). With the agents and an
	// overlay that may be used, a node's conflist gets the MTU the
	// installer would write into it (overlay.PodMTU) when the template's
	// is automatic, as `minicni-installer install` does on a real node.
	Overlay string
	// StaticRoutes programs the routes between nodes through miniroute's
	// static "routes" key.
	StaticRoutes bool
	// Agent, when set, is the minicni-installer binary: one agent per node,
	// fed a nodes file, programs the routes between nodes (as on a real
	// cluster, where it reads Node objects).
	Agent string
	// Logf receives progress lines (nil: silent).
	Logf func(format string, args ...any)
}

// Lab is a running simulated cluster.
type Lab struct {
	Opts     Options
	Underlay *Host // the namespace holding the segments' bridges
	Router   *Host // Routed: the router between the segments (IP: its address on the first)
	Outside  *Host // a host outside the cluster, on the (first) underlay segment
	Nodes    []*Node
	ownState bool
	mu       sync.Mutex // guards Pods of every node, for concurrent AddPod/DelPod
}

// Host is a network namespace with one address on the underlay.
type Host struct {
	Name string // netns name under /run/netns
	IP   net.IP
}

// Path is the namespace's bind-mount path.
func (h *Host) Path() string { return filepath.Join(NetnsDir, h.Name) }

// Do runs f with the calling goroutine's thread inside the host's namespace.
// Processes started from f (plugins, ping) inherit it.
func (h *Host) Do(f func() error) error {
	n, err := ns.GetNS(h.Path())
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Do(func(ns.NetNS) error { return f() })
}

// Node is a simulated Kubernetes node.
type Node struct {
	Host
	Index    int
	Segment  int        // underlay segment: 0 (Underlay) or 1 (Underlay2)
	Subnet   *net.IPNet // the segment's subnet, holding IP
	PodCIDR  *net.IPNet
	Gateway  net.IP // first address of PodCIDR, held by the bridge
	Conflist *libcni.NetworkConfigList
	CNI      *libcni.CNIConfig
	Pods     []*Pod
}

// Pod is a pod sandbox: a namespace attached by the chain.
type Pod struct {
	Host
	Node        *Node
	ContainerID string
	IfName      string
	Result      *current.Result
	rt          *libcni.RuntimeConf
}

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/run/netns"

// The topologies.
const (
	Flat   = "flat"
	Routed = "routed"
)

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = "172.18.0.0/16"
	}
	if o.Underlay == "" {
		o.Underlay = "10.99.0.0/24"
	}
	if o.Topology == "" {
		o.Topology = Flat
	}
	if o.Topology != Flat && o.Topology != Routed {
		return fmt.Errorf("topology %q: want %s or %s", o.Topology, Flat, Routed)
	}
	if o.Underlay2 == "" {
		o.Underlay2 = "10.99.1.0/24"
	}
	if o.Topology == Routed && o.StaticRoutes {
		return fmt.Errorf("the %s topology needs the agents: a static route via a node on another segment is not on-link", Routed)
	}
	if o.Name == "" || len(o.Name) > 8 || strings.ContainsAny(o.Name, "/ ") {
		return fmt.Errorf("lab name %q must be 1-8 bytes without '/' or spaces", o.Name)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// nth returns the i-th /24 of a cluster CIDR (IPv4 only).
func nth24(cluster *net.IPNet, i int) *net.IPNet {
	ip := cluster.IP.To4()
	base := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8
	base += uint32(i) << 8
	return &net.IPNet{IP: net.IPv4(byte(base>>24), byte(base>>16), byte(base>>8), 0).To4(), Mask: net.CIDRMask(24, 32)}
}

func hostIP(n *net.IPNet, host int) net.IP {
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(host)).To4()
}

// Up creates the lab: underlay, outside host, nodes with their conflists. On
// error everything created so far is removed.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func Up(ctx context.Context, o Options) (_ *Lab, retErr error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	_, cluster, err := net.ParseCIDR(o.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	cidrs := []string{o.Underlay}
	if o.Topology == Routed {
		cidrs = append(cidrs, o.Underlay2)
	}
	var segs []*net.IPNet
	for _, c := range cidrs {
		_, seg, err := net.ParseCIDR(c)
		if err != nil || seg.IP.To4() == nil {
			return nil, fmt.Errorf("underlay %q: want an IPv4 CIDR", c)
		}
		segs = append(segs, seg)
	}
	if len(segs) == 2 && (segs[0].Contains(segs[1].IP) || segs[1].Contains(segs[0].IP)) {
		return nil, fmt.Errorf("underlays %s and %s overlap", segs[0], segs[1])
	}
	l := &Lab{Opts: o}
	if l.Opts.StateDir == "" {
		if l.Opts.StateDir, err = os.MkdirTemp("", "minicni-lab-"+o.Name+"-"); err != nil {
			return nil, err
		}
		l.ownState = true
	}
	defer func() {
		if retErr != nil {
			_ = l.Down()
		}
	}()
	l.Underlay = &Host{Name: o.Name + "-ul"}
	if err := l.addNS(l.Underlay.Name); err != nil {
		return nil, err
	}
	for i := range segs {
		br := segBridge(i)
		if err := ipcmd("-n", l.Underlay.Name, "link", "add", br, "type", "bridge"); err != nil {
			return nil, err
		}
		if err := ipcmd("-n", l.Underlay.Name, "link", "set", br, "up"); err != nil {
			return nil, err
		}
	}
	var gw []net.IP // per segment: the router's address, every host's default route
	if o.Topology == Routed {
		if gw, err = l.addRouter(segs); err != nil {
			return nil, err
		}
	}
	l.Outside = &Host{Name: o.Name + "-out", IP: hostIP(segs[0], 200)}
	if err := l.attach(l.Outside, "out", 0, segs, gw); err != nil {
		return nil, err
	}
	for i := range o.Nodes {
		seg := 0
		if o.Topology == Routed && i >= (o.Nodes+1)/2 {
			seg = 1
		}
		n := &Node{Host: Host{Name: fmt.Sprintf("%s-n%d", o.Name, i), IP: hostIP(segs[seg], 11+i)}, Index: i,
			Segment: seg, Subnet: segs[seg]}
		n.PodCIDR = nth24(cluster, i)
		n.Gateway = hostIP(n.PodCIDR, 1)
		ones, _ := segs[seg].Mask.Size()
		o.Logf("node %s: underlay %s/%d, pod subnet %s", n.Name, n.IP, ones, n.PodCIDR)
		if err := l.attach(&n.Host, fmt.Sprintf("n%d", i), seg, segs, gw); err != nil {
			return nil, err
		}
		l.Nodes = append(l.Nodes, n)
	}
	for _, n := range l.Nodes {
		if err := l.configureNode(n); err != nil {
			return nil, err
		}
	}
	if o.Agent != "" {
		if err := l.startAgents(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// segBridge is the bridge of underlay segment i in the underlay namespace.
func segBridge(i int) string { return fmt.Sprintf("br%d", i) }

// addRouter creates the router namespace with eth<i> on segment i holding
// the segment's .1, forwarding between them, and returns those addresses.
func (l *Lab) addRouter(segs []*net.IPNet) ([]net.IP, error) {
	l.Router = &Host{Name: l.Opts.Name + "-rt", IP: hostIP(segs[0], 1)}
	if err := l.addNS(l.Router.Name); err != nil {
		return nil, err
	}
	var gw []net.IP
	for i, seg := range segs {
		addr := hostIP(seg, 1)
		gw = append(gw, addr)
		ones, _ := seg.Mask.Size()
		dev, port := fmt.Sprintf("eth%d", i), fmt.Sprintf("rt%d", i)
		for _, args := range [][]string{
			{"link", "add", "name", dev, "netns", l.Router.Name, "type", "veth", "peer", "name", port, "netns", l.Underlay.Name},
			{"-n", l.Underlay.Name, "link", "set", port, "master", segBridge(i), "up"},
			{"-n", l.Router.Name, "addr", "add", fmt.Sprintf("%s/%d", addr, ones), "dev", dev},
			{"-n", l.Router.Name, "link", "set", dev, "up"},
		} {
			if err := ipcmd(args...); err != nil {
				return nil, err
			}
		}
	}
	err := l.Router.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) //nolint:gosec // a sysctl: the mode is ignored
	})
	if err != nil {
		return nil, fmt.Errorf("forwarding in %s: %w", l.Router.Name, err)
	}
	l.Opts.Logf("router %s: %s on %s, %s on %s", l.Router.Name, gw[0], segs[0], gw[1], segs[1])
	return gw, nil
}

func (l *Lab) addNS(name string) error {
	if err := ipcmd("netns", "add", name); err != nil {
		return err
	}
	return ipcmd("-n", name, "link", "set", "lo", "up")
}

// attach creates h's namespace and joins it to underlay segment seg as
// eth0, with a default route via gw[seg] when there is a router.
func (l *Lab) attach(h *Host, port string, seg int, segs []*net.IPNet, gw []net.IP) error {
	if err := l.addNS(h.Name); err != nil {
		return err
	}
	if err := ipcmd("link", "add", "name", "eth0", "netns", h.Name, "type", "veth", "peer", "name", port, "netns", l.Underlay.Name); err != nil {
		return err
	}
	ones, _ := segs[seg].Mask.Size()
	cmds := [][]string{
		{"-n", l.Underlay.Name, "link", "set", port, "master", segBridge(seg), "up"},
		{"-n", h.Name, "addr", "add", fmt.Sprintf("%s/%d", h.IP, ones), "dev", "eth0"},
		{"-n", h.Name, "link", "set", "eth0", "up"},
	}
	if gw != nil {
		cmds = append(cmds, []string{"-n", h.Name, "route", "add", "default", "via", gw[seg].String()})
	}
	for _, args := range cmds {
		if err := ipcmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// configureNode renders the node's conflist and its libcni handle.
func (l *Lab) configureNode(n *Node) error {
	dir := filepath.Join(l.Opts.StateDir, n.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var others []route
	for _, o := range l.Nodes {
		if o != n {
			others = append(others, route{Dst: o.PodCIDR.String(), Via: o.IP.String()})
		}
	}
	var static []route
	if l.Opts.StaticRoutes {
		static = others
	}
	var autoMTU int
	if l.Opts.Agent != "" && l.Opts.Overlay != string(overlay.None) {
		err := n.Do(func() error {
			h, err := netlinksafe.NewHandle()
			if err != nil {
				return err
			}
			defer h.Close()
			autoMTU, err = overlay.PodMTU(h, []netip.Addr{netip.AddrFrom4([4]byte(n.IP.To4()))})
			return err
		})
		if err != nil {
			return fmt.Errorf("node %s: overlay MTU: %w", n.Name, err)
		}
	}
	b, err := Render(l.Opts.Conflist, n.PodCIDR.String(), l.Opts.ClusterCIDR, filepath.Join(dir, "ipam"), static, autoMTU)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chain.conflist"), b, 0o600); err != nil {
		return err
	}
	if n.Conflist, err = libcni.ConfListFromBytes(b); err != nil {
		return fmt.Errorf("node %s conflist: %w", n.Name, err)
	}
	n.CNI = libcni.NewCNIConfigWithCacheDir([]string{l.Opts.BinDir}, filepath.Join(dir, "cache"), nil)
	return nil
}

type route struct {
	Dst string `json:"dst"`
	Via string `json:"via"`
}

// Render fills a conflist template for one node: every plugin with an ipam
// section allocates its IPv4 addresses from podCIDR, keeps its data in
// dataDir and, when autoMTU is not 0 and its mtu is automatic (0 or
// absent), gets autoMTU; miniroute's IPv4 cluster CIDR becomes clusterCIDR
// and, when static is not empty, it gets those routes to the other nodes.
// IPv6 ranges and every other key are kept as the template has them.
func Render(template []byte, podCIDR, clusterCIDR, dataDir string, static []route, autoMTU int) ([]byte, error) {
	var list map[string]any
	if err := json.Unmarshal(template, &list); err != nil {
		return nil, fmt.Errorf("conflist template: %w", err)
	}
	plugins, _ := list["plugins"].([]any)
	for _, p := range plugins {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if ipam, ok := pm["ipam"].(map[string]any); ok {
			ranges := []any{[]any{map[string]any{"subnet": podCIDR}}}
			if old, ok := ipam["ranges"].([]any); ok {
				for _, set := range old {
					if !isV4Set(set) {
						ranges = append(ranges, set)
					}
				}
			}
			ipam["ranges"] = ranges
			delete(ipam, "subnet")
			ipam["dataDir"] = dataDir
			if mtu, _ := pm["mtu"].(float64); autoMTU != 0 && mtu == 0 {
				pm["mtu"] = autoMTU
			}
		}
		if pm["type"] == "miniroute" {
			cidrs := []any{clusterCIDR}
			if old, ok := pm["clusterCIDR"].([]any); ok {
				for _, c := range old {
					if s, _ := c.(string); strings.Contains(s, ":") {
						cidrs = append(cidrs, s)
					}
				}
			}
			pm["clusterCIDR"] = cidrs
			if len(static) > 0 {
				pm["routes"] = static
			}
		}
	}
	return json.MarshalIndent(list, "", "  ")
}

// isV4Set reports whether a range set's first range has an IPv4 subnet.
func isV4Set(set any) bool {
	rs, _ := set.([]any)
	if len(rs) == 0 {
		return false
	}
	r, _ := rs[0].(map[string]any)
	s, _ := r["subnet"].(string)
	return !strings.Contains(s, ":")
}

// AddPod creates a pod namespace on n and runs the chain's ADD for it, as a
// runtime does: libcni, from inside the node's namespace. It is safe to call
// concurrently, as a runtime runs many ADDs at once. capArgs are passed as
// runtime capability arguments (e.g. portMappings).
func (l *Lab) AddPod(ctx context.Context, n *Node, name string, capArgs map[string]any) (*Pod, error) {
	p, err := l.NewPod(n, name, capArgs)
	if err != nil {
		return nil, err
	}
	if err := l.Attach(ctx, p); err != nil {
		_ = ipcmd("netns", "del", p.Name)
		return nil, err
	}
	return p, nil
}

// NewPod creates a pod's namespace on n without attaching it.
func (l *Lab) NewPod(n *Node, name string, capArgs map[string]any) (*Pod, error) {
	p := &Pod{Host: Host{Name: fmt.Sprintf("%s-%s", n.Name, name)}, Node: n, IfName: "eth0"}
	p.ContainerID = fmt.Sprintf("lab-%s-%s", l.Opts.Name, p.Name)
	if err := l.addNS(p.Name); err != nil {
		return nil, err
	}
	p.rt = &libcni.RuntimeConf{
		ContainerID:    p.ContainerID,
		NetNS:          p.Path(),
		IfName:         p.IfName,
		Args:           [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "lab"}, {"K8S_POD_NAME", name}},
		CapabilityArgs: capArgs,
	}
	return p, nil
}

// Attach runs the chain's ADD for a pod made by NewPod and records its result.
func (l *Lab) Attach(ctx context.Context, p *Pod) error {
	n := p.Node
	var res types.Result
	err := n.Do(func() error {
		var err error
		res, err = n.CNI.AddNetworkList(ctx, n.Conflist, p.rt)
		return err
	})
	if err != nil {
		return fmt.Errorf("ADD %s: %w", p.Name, err)
	}
	if p.Result, err = current.NewResultFromResult(res); err != nil {
		return err
	}
	for _, ipc := range p.Result.IPs {
		if ipc.Address.IP.To4() != nil {
			p.IP = ipc.Address.IP.To4()
			break
		}
	}
	if p.IP == nil && len(p.Result.IPs) > 0 {
		p.IP = p.Result.IPs[0].Address.IP
	}
	l.mu.Lock()
	n.Pods = append(n.Pods, p)
	l.mu.Unlock()
	l.Opts.Logf("pod %s on %s: %s", p.Name, n.Name, p.IP)
	return nil
}

// CheckPod runs the chain's CHECK for p.
func (l *Lab) CheckPod(ctx context.Context, p *Pod) error {
	return p.Node.Do(func() error { return p.Node.CNI.CheckNetworkList(ctx, p.Node.Conflist, p.rt) })
}

// DelPod runs the chain's DEL for p and removes its namespace. With
// netnsFirst, the namespace goes first and DEL gets an empty CNI_NETNS, as
// when a runtime cleans up after the sandbox is gone.
func (l *Lab) DelPod(ctx context.Context, p *Pod, netnsFirst bool) error {
	if netnsFirst {
		if err := ipcmd("netns", "del", p.Name); err != nil {
			return err
		}
	}
	if err := l.Detach(ctx, p, netnsFirst); err != nil {
		return err
	}
	if !netnsFirst {
		if err := ipcmd("netns", "del", p.Name); err != nil {
			return err
		}
	}
	l.forget(p)
	return nil
}

// forget drops p from its node's pod list.
func (l *Lab) forget(p *Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, q := range p.Node.Pods {
		if q == p {
			p.Node.Pods = append(p.Node.Pods[:i], p.Node.Pods[i+1:]...)
			return
		}
	}
}

// Down removes every namespace whose name starts with the lab's prefix (so it
// also cleans up after a crashed run) and the state directory when the lab
// made it. Rules, routes and links inside the namespaces go with them.
func (l *Lab) Down() error {
	errs := []error{DownByName(l.Opts.Name)}
	if l.ownState {
		errs = append(errs, os.RemoveAll(l.Opts.StateDir))
	}
	return errors.Join(errs...)
}

// DownByName stops the lab's agents and removes every lab namespace named
// prefix-*.
func DownByName(prefix string) error {
	if err := killAgents(prefix); err != nil {
		return err
	}
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			// miniroute's stamp and iptables mode files would outlive the namespace.
			if n, err := ns.GetNS(filepath.Join(NetnsDir, e.Name())); err == nil {
				_ = n.Do(func(ns.NetNS) error {
					return errors.Join(stamps.Default().Forget(), backend.ModeCache{Dir: stamps.DefaultDir}.Forget())
				})
				n.Close()
			}
			if err := ipcmd("netns", "del", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func ipcmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
