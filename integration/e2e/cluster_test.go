package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minicni/minicni/integration/internal/containerd"
	"github.com/minicni/minicni/integration/internal/ociimage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The simulated cluster's addresses. They exist only inside the network
// namespaces the test creates: the underlay's namespace and the nodes'. The
// underlay has two subnets, one bridge each (br0, br1) in the underlay
// namespace, which holds each subnet's gateway address and forwards between
// them: the router between the subnets.
const (
	nsPrefix    = "mce2e-"
	underlayLen = 24
	clusterCIDR = "10.244.0.0/16" // the manifest's default cluster-cidr
	// clusterCIDR6 makes the cluster dual-stack: the controller-manager
	// gives every node a /64 of it besides its IPv4 /24 (ULA, used only in
	// the test's namespaces, as the underlay's IPv6 subnets fd00:97:<s>::/64).
	clusterCIDR6 = "fd00:10:244::/56"
	serviceCIDR  = "10.96.0.0/16"
	apiPort      = "6443"
)

// otherSubnetNode is the first node (1-based) on the underlay's second
// subnet: nodes 1 and 2 share 10.97.0.0/24, node 3 is on 10.97.1.0/24.
const otherSubnetNode = 3

// subnet is the underlay subnet (0 or 1) of node i (1-based).
func subnet(i int) int {
	if i >= otherSubnetNode {
		return 1
	}
	return 0
}

// nodeIP is node i's (1-based) underlay address.
func nodeIP(i int) string { return fmt.Sprintf("10.97.%d.%d", subnet(i), 10+i) }

// gatewayIP is underlay subnet s's gateway, held by the underlay namespace:
// the default route of the nodes on it.
func gatewayIP(s int) string { return fmt.Sprintf("10.97.%d.1", s) }

// nodeIP6 and gatewayIP6 are their IPv6 twins, on fd00:97:<s>::/64, in
// the canonical form ip prints (fd00:97::11).
func nodeIP6(i int) string {
	return net.ParseIP(fmt.Sprintf("fd00:97:%d::%d", subnet(i), 10+i)).String()
}
func gatewayIP6(s int) string { return net.ParseIP(fmt.Sprintf("fd00:97:%d::1", s)).String() }

// nodeMounts are the machine paths a node sees as its own: each node's
// mount namespace binds a private directory over each, so the manifest's
// hostPath volumes, containerd's and libcni's fixed paths (shim sockets,
// libcni's result cache), miniroute's stamp files (/run/minicni) and the
// kubelet's fixed ones (log dirs, the
// device plugin socket under /var/lib/kubelet whatever its --root-dir, the
// flexvolume dir) are per node and leave the machine's untouched.
var nodeMounts = []string{"/opt/cni/bin", "/etc/cni/net.d", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
	"/run/containerd", "/run/minicni", "/var/lib/kubelet", "/usr/libexec/kubernetes"}

// cluster is everything the test started; each piece registers its own
// teardown with the test's cleanup list.
type cluster struct {
	// podCIDR6 is each node's IPv6 podCIDR, by node name, as
	// waitNetworkReady last read it.
	podCIDR6 map[string]*net.IPNet
	dir, bin string
	image    string // minicni's image reference, as make image printed it
	pki      *pki
	admin    string // admin kubeconfig
	cleanups *cleanupList
	nodes    []*node
	// kubeletExtra is appended to every node's KubeletConfiguration
	// (TestConformance: the cluster DNS).
	kubeletExtra string
}

// node is a simulated node: a network namespace on the underlay, a mount
// namespace with private copies of nodeMounts, a containerd and a kubelet.
type node struct {
	name, ns, ip, dir, mntns string
	ip6                      string // its IPv6 underlay address
	utsns                    string // its UTS namespace: hostname = name
	ctrd                     *containerd.Daemon
	kubelet                  *proc
}

// enter is the nsenter options that put a process on the node.
func (n *node) enter() []string {
	return []string{"--net=/run/netns/" + n.ns, "--mount=" + n.mntns, "--uts=" + n.utsns}
}

// private is the node's copy of a machine path from nodeMounts.
func (n *node) private(path string) string { return filepath.Join(n.dir, "root", path) }

// cleanupList runs teardown steps in reverse order of registration and
// collects every failure.
type cleanupList struct {
	steps []func() error
	names []string
}

func (c *cleanupList) add(name string, f func() error) {
	c.names, c.steps = append(c.names, name), append(c.steps, f)
}

func (c *cleanupList) run(logf func(string, ...any)) error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		start := time.Now()
		if err := c.steps[i](); err != nil {
			errs = append(errs, fmt.Errorf("teardown %s: %w", c.names[i], err))
		}
		logf("teardown %s: %v", c.names[i], time.Since(start).Round(time.Millisecond))
	}
	c.steps, c.names = nil, nil
	return errors.Join(errs...)
}

// underlay creates the underlay: a namespace holding bridges br0 and br1,
// one per subnet, with the subnets' gateway addresses (IPv4 and IPv6, no
// duplicate address detection: see noDAD), forwarding between them.
func (c *cluster) underlay(ctx context.Context) error {
	ul := nsPrefix + "ul"
	_, _ = run(ctx, "ip", "netns", "del", ul) // a crashed run's
	if _, err := run(ctx, "ip", "netns", "add", ul); err != nil {
		return err
	}
	c.cleanups.add("underlay namespace", func() error {
		_, err := run(context.Background(), "ip", "netns", "del", ul)
		return err
	})
	cmds := [][]string{{"link", "set", "lo", "up"}}
	for s := range 2 {
		br := fmt.Sprintf("br%d", s)
		cmds = append(cmds, []string{"link", "add", br, "type", "bridge"},
			[]string{"netns", "exec", ul, "sysctl", "-qw", "net.ipv6.conf." + br + ".accept_dad=0"},
			[]string{"addr", "add", fmt.Sprintf("%s/%d", gatewayIP(s), underlayLen), "dev", br},
			[]string{"addr", "add", gatewayIP6(s) + "/64", "dev", br, "nodad"},
			[]string{"link", "set", br, "up"})
	}
	for _, args := range cmds {
		if args[0] != "netns" {
			args = append([]string{"-n", ul}, args...)
		}
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	_, err := run(ctx, "ip", "netns", "exec", ul, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return err
}

// controlPlane starts etcd, the apiserver, the controller-manager and the
// scheduler in node 1's network namespace (the control-plane node), and
// waits for the apiserver to be ready.
func (c *cluster) controlPlane(ctx context.Context, n1 *node) error {
	var err error
	if c.pki, err = newPKI(c.dir); err != nil {
		return err
	}
	p := c.pki
	issues := []struct {
		name, cn string
		orgs     []string
		hosts    []string
	}{
		{"apiserver", "kube-apiserver", nil, []string{"127.0.0.1", n1.ip, "10.96.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil},
		{"admin", "minicni-e2e-admin", []string{"system:masters"}, nil},
		{"controller-manager", "system:kube-controller-manager", nil, nil},
		{"scheduler", "system:kube-scheduler", nil, nil},
	}
	for _, i := range issues {
		if err := p.issue(i.name, i.cn, i.orgs, i.hosts...); err != nil {
			return err
		}
	}
	local := "https://127.0.0.1:" + apiPort
	if c.admin, err = p.kubeconfig("admin", local); err != nil {
		return err
	}
	cmConf, err := p.kubeconfig("controller-manager", local)
	if err != nil {
		return err
	}
	schedConf, err := p.kubeconfig("scheduler", local)
	if err != nil {
		return err
	}
	enter := []string{"--net=/run/netns/" + n1.ns}
	cp := filepath.Join(c.dir, "control-plane")
	if err := os.MkdirAll(cp, 0o700); err != nil {
		return err
	}
	etcd, err := startProc(cp, "etcd", enter, "etcd", "--name=e2e", "--data-dir="+filepath.Join(cp, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=e2e=http://127.0.0.1:2380")
	if err != nil {
		return err
	}
	c.cleanups.add("etcd", func() error { return etcd.stop(10 * time.Second) })
	api, err := startProc(cp, "kube-apiserver", enter, filepath.Join(c.bin, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=0.0.0.0", "--advertise-address="+n1.ip,
		"--secure-port="+apiPort, "--cert-dir="+filepath.Join(cp, "apiserver-certs"),
		"--tls-cert-file="+p.path("apiserver.crt"), "--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"),
		"--kubelet-client-certificate="+p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-key-file="+p.path("sa.pub"), "--service-account-signing-key-file="+p.path("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--profiling=false", "--v=1")
	if err != nil {
		return err
	}
	// Its graceful shutdown drains requests and watches: 1-7 s on a quiet
	// machine, once over 15 s on a loaded one (a fresh-clone run while
	// other tests ran), which then failed the teardown. A minute of grace
	// before SIGKILL keeps that from failing a run that passed.
	c.cleanups.add("kube-apiserver", func() error { return api.stop(time.Minute) })
	if err := poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := errors.Join(etcd.alive(), api.alive()); err != nil {
			return false, "", err
		}
		out, err := c.kubectl(ctx, "get", "--raw", "/readyz")
		return err == nil, out, nil
	}); err != nil {
		return fmt.Errorf("apiserver ready: %w\n%s", err, tail(api.log, 20))
	}
	cm, err := startProc(cp, "kube-controller-manager", enter, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+cmConf, "--authentication-kubeconfig="+cmConf, "--authorization-kubeconfig="+cmConf,
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--use-service-account-credentials=true", "--service-account-private-key-file="+p.path("sa.key"),
		"--root-ca-file="+p.path("ca.crt"), "--cluster-signing-cert-file="+p.path("ca.crt"),
		"--cluster-signing-key-file="+p.path("ca.key"),
		"--allocate-node-cidrs=true", "--cluster-cidr="+clusterCIDR+","+clusterCIDR6,
		"--node-cidr-mask-size-ipv4=24", "--node-cidr-mask-size-ipv6=64",
		"--service-cluster-ip-range="+serviceCIDR, "--flex-volume-plugin-dir="+filepath.Join(cp, "flexvolume"), "--v=1")
	if err != nil {
		return err
	}
	c.cleanups.add("kube-controller-manager", func() error { return cm.stop(10 * time.Second) })
	sched, err := startProc(cp, "kube-scheduler", enter, filepath.Join(c.bin, "kube-scheduler"),
		"--kubeconfig="+schedConf, "--authentication-kubeconfig="+schedConf, "--authorization-kubeconfig="+schedConf,
		"--bind-address=127.0.0.1", "--leader-elect=false", "--v=1")
	if err != nil {
		return err
	}
	c.cleanups.add("kube-scheduler", func() error { return sched.stop(10 * time.Second) })
	// The default service account of a namespace exists once the
	// controller-manager runs: pods need it.
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := errors.Join(cm.alive(), sched.alive()); err != nil {
			return false, "", err
		}
		out, err := c.kubectl(ctx, "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out, nil
	})
}

// kubectl runs kubectl as the admin from node 1's network namespace,
// where the apiserver listens.
func (c *cluster) kubectl(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--net=/run/netns/" + nsPrefix + "n1", filepath.Join(c.bin, "kubectl"),
		"--kubeconfig=" + c.admin, "--cache-dir=" + filepath.Join(c.dir, "kubectl-cache"), "--request-timeout=20s"}, args...)
	return run(ctx, "nsenter", full...)
}

// kubectlStdin is kubectl with a manifest on stdin.
func (c *cluster) apply(ctx context.Context, manifest string) error {
	path := filepath.Join(c.dir, fmt.Sprintf("manifest-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		return err
	}
	_, err := c.kubectl(ctx, "apply", "-f", path)
	return err
}

// addNode makes node i (1-based): its network namespace on the underlay,
// its mount namespace, containerd with the test images, and a kubelet
// registered as mce2e-n<i>.
func (c *cluster) addNode(ctx context.Context, i int) (*node, error) {
	n := &node{name: fmt.Sprintf("%sn%d", nsPrefix, i), ns: fmt.Sprintf("%sn%d", nsPrefix, i), ip: nodeIP(i), ip6: nodeIP6(i),
		dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i))}
	c.nodes = append(c.nodes, n)
	if err := c.nodeNetwork(ctx, n, i); err != nil {
		return n, err
	}
	if err := c.nodeMountNS(ctx, n); err != nil {
		return n, err
	}
	// Removed after containerd and the kubelet stop (cleanups run last
	// registered first): no process may be left in them.
	c.cleanups.add(n.name+" cgroups", func() error { return removeCgroupRoot(n.name) })
	_ = removeCgroupRoot(n.name) // an interrupted run's, when empty
	return n, makeCgroupRoot(n.name)
}

// nodeNetwork creates the node's network namespace with eth0 on its
// subnet's underlay bridge, its addresses and default routes via the
// subnet's gateways, IPv4 and IPv6. eth0 runs no duplicate address
// detection: a new link's tentative link-local address keeps the node from
// sending neighbour solicitations for packets it forwards for a second or
// two, which a real node's uplink has long finished.
func (c *cluster) nodeNetwork(ctx context.Context, n *node, i int) error {
	_, _ = run(ctx, "ip", "netns", "del", n.ns)
	if _, err := run(ctx, "ip", "netns", "add", n.ns); err != nil {
		return err
	}
	c.cleanups.add(n.name+" network namespace", func() error {
		_, err := run(context.Background(), "ip", "netns", "del", n.ns)
		return err
	})
	ul := nsPrefix + "ul"
	port := fmt.Sprintf("n%d", i)
	for _, args := range [][]string{
		{"-n", ul, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns},
		{"-n", ul, "link", "set", port, "master", fmt.Sprintf("br%d", subnet(i)), "up"},
		{"-n", n.ns, "link", "set", "lo", "up"},
		{"netns", "exec", n.ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"},
		{"-n", n.ns, "addr", "add", fmt.Sprintf("%s/%d", n.ip, underlayLen), "dev", "eth0"},
		{"-n", n.ns, "addr", "add", n.ip6 + "/64", "dev", "eth0", "nodad"},
		{"-n", n.ns, "link", "set", "eth0", "up"},
		{"-n", n.ns, "route", "add", "default", "via", gatewayIP(subnet(i))},
		{"-n", n.ns, "-6", "route", "add", "default", "via", gatewayIP6(subnet(i))},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// nodeMountNS creates the node's mount namespace (kept alive by a bind
// mount of its nsfs file, as `ip netns` does for network namespaces), a
// slave of the machine's so it sees the machine's mounts but the machine
// never sees its own, and binds the node's private directories over
// nodeMounts in it.
func (c *cluster) nodeMountNS(ctx context.Context, n *node) error {
	holder := filepath.Join(n.dir, "mnt")
	if err := os.MkdirAll(holder, 0o700); err != nil {
		return err
	}
	made, err := hostDirs(nodeMounts...)
	c.cleanups.add(n.name+" mount points made on the machine", func() error { return removeEmpty(made) })
	if err != nil {
		return err
	}
	if _, err := run(ctx, "mount", "--bind", holder, holder); err != nil {
		return err
	}
	c.cleanups.add(n.name+" mount namespace", func() error {
		var errs []error
		for _, f := range []string{n.mntns, n.utsns} {
			if f == "" {
				continue
			}
			if _, err := run(context.Background(), "umount", f); err != nil {
				errs = append(errs, err)
			}
		}
		if _, err := run(context.Background(), "umount", holder); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if _, err := run(ctx, "mount", "--make-private", holder); err != nil {
		return err
	}
	file := filepath.Join(holder, "ns")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return err
	}
	if _, err := run(ctx, "unshare", "--mount="+file, "--propagation=slave", "true"); err != nil {
		return err
	}
	n.mntns = file
	// A UTS namespace with the node's name as hostname: host-network pods
	// (their containers share containerd's) answer with the node's name,
	// as the Kubernetes e2e tests of host-network endpoints expect.
	uts := filepath.Join(holder, "uts")
	if err := os.WriteFile(uts, nil, 0o600); err != nil {
		return err
	}
	if _, err := run(ctx, "unshare", "--uts="+uts, "hostname", n.name); err != nil {
		return err
	}
	n.utsns = uts
	for _, m := range nodeMounts {
		src := n.private(m)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if _, err := run(ctx, "nsenter", "--mount="+file, "mount", "--bind", src, m); err != nil {
			return err
		}
	}
	return nil
}

// startRuntime starts the node's containerd (CNI dirs: the node's
// /etc/cni/net.d and /opt/cni/bin, written by the DaemonSet) and imports
// the pause, busybox and minicni images.
func (c *cluster) startRuntime(ctx context.Context, n *node, images []string) error {
	dir := filepath.Join(n.dir, "containerd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d, err := containerd.Start(containerd.Options{Dir: dir, BinDir: "/opt/cni/bin", ConfDir: "/etc/cni/net.d",
		Pause: ociimage.PauseRef, Nsenter: n.enter()})
	n.ctrd = d
	c.cleanups.add(n.name+" containerd", func() error {
		if d == nil {
			return nil
		}
		return d.Stop()
	})
	if err != nil {
		return err
	}
	if err := d.WaitServing(ctx); err != nil {
		return err
	}
	for _, img := range images {
		if err := d.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	// The reference make image printed resolves in the CRI as the kubelet
	// will ask for it.
	st, err := d.Img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: c.image}})
	if err != nil {
		return err
	}
	if st.GetImage() == nil {
		return fmt.Errorf("containerd's CRI has no image %s after importing %s", c.image, images[len(images)-1])
	}
	return nil
}

// kubeletConfig is the node's KubeletConfiguration: cgroupfs under the
// node's own cgroup root, no oom_score_adj lowering (root here lacks
// CAP_SYS_RESOURCE), eviction and image GC thresholds low enough that a
// busy build machine never evicts the test's pods or deletes its images,
// and every path private to the node.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /{{.Name}}
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
address: {{.IP}}
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: {{.CA}}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://{{.Sock}}
podLogsDir: /var/log/pods
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
resolvConf: /etc/resolv.conf
`

// startKubelet issues the node's client certificate (system:node:<name> in
// system:nodes, as the Node authorizer requires) and starts its kubelet.
func (c *cluster) startKubelet(ctx context.Context, n *node) error {
	if err := c.pki.issue(n.name, "system:node:"+n.name, []string{"system:nodes"}); err != nil {
		return err
	}
	kc, err := c.pki.kubeconfig(n.name, "https://"+nodeIP(1)+":"+apiPort)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.dir, "kubelet")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := strings.NewReplacer("{{.Name}}", n.name, "{{.IP}}", n.ip, "{{.CA}}", c.pki.path("ca.crt"),
		"{{.Sock}}", n.ctrd.Sock).Replace(kubeletConfig) + c.kubeletExtra
	cfgPath := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	k, err := startProc(n.dir, "kubelet", n.enter(), filepath.Join(c.bin, "kubelet"),
		"--config="+cfgPath, "--kubeconfig="+kc, "--root-dir="+dir, "--cert-dir="+filepath.Join(dir, "pki"),
		"--hostname-override="+n.name, "--node-ip="+n.ip+","+n.ip6, "--v=1")
	if err != nil {
		return err
	}
	n.kubelet = k
	c.cleanups.add(n.name+" kubelet", func() error { return k.stop(15 * time.Second) })
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := k.alive(); err != nil {
			return false, "", err
		}
		out, err := c.kubectl(ctx, "get", "node", n.name, "-o", "name")
		return err == nil, out, nil
	})
}
