package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/integration/internal/containerd"
	"github.com/minicni/minicni/integration/internal/ociimage"
	"github.com/minicni/minicni/libmini/minitest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// passed and failed count the checks, for the closing line.
var passed, failed atomic.Int32

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv("MINICNI_E2E") == "1" {
		fmt.Printf("e2e: %d passed, %d failed\n", passed.Load(), failed.Load())
	}
	os.Exit(code)
}

// check runs one step of the walkthrough with its own deadline, counts it,
// and stops the (sub)test when it fails; the teardown registered so far
// still runs.
func check(t *testing.T, name string, limit time.Duration, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := f(ctx); err != nil {
		failed.Add(1)
		t.Fatalf("FAIL %s (%v): %v", name, time.Since(start).Round(time.Millisecond), err)
	}
	passed.Add(1)
	t.Logf("ok %s: %v", name, time.Since(start).Round(time.Millisecond))
}

// The cluster-wide tools besides the Kubernetes binaries.
var tools = []string{"etcd", "ip", "nsenter", "unshare", "mount", "umount", "iptables-save", "busybox", "sysctl"}

// TestE2E is the original walkthrough against real Kubernetes: step 1 on
// one node, step 2 on two, step 3 with a third node on another underlay
// subnet, reached over VXLAN. Run by `make e2e` (hack/e2e.sh), which builds
// what it needs; skipped unless MINICNI_E2E=1.
func TestE2E(t *testing.T) {
	if os.Getenv("MINICNI_E2E") != "1" {
		t.Skip("MINICNI_E2E=1 not set (make e2e runs it)")
	}
	minitest.RequireRoot(t)
	bin := os.Getenv("MINICNI_E2E_BIN")
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl",
		"minicni-image.oci.tar", "cni/minicni-installer"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("MINICNI_E2E_BIN=%q lacks %s (hack/e2e.sh builds it): %v", bin, b, err)
		}
	}
	if msg := containerd.MissingTools(); msg != "" {
		t.Fatal(msg)
	}
	for _, b := range tools {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is missing: %v", b, err)
		}
	}
	// The reference make image printed (hack/e2e.sh sets it).
	image := os.Getenv("MINICNI_E2E_IMAGE")
	if image == "" {
		t.Fatal("MINICNI_E2E_IMAGE (the image reference make image printed) is not set; hack/e2e.sh sets it")
	}
	manifest, err := os.ReadFile(filepath.Join("..", "..", "installer", "manifests", "minicni.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	// A short directory: containerd's sockets live under it.
	dir, err := os.MkdirTemp("", "mce2e")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir, bin: bin, image: image, cleanups: &cleanupList{}}
	c.cleanups.add("test directory", func() error { return os.RemoveAll(dir) })
	sysctls := readSysctls()
	c.cleanups.add("kubelet's sysctls", func() error { return restoreSysctls(sysctls) })
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(t)
		}
		if err := c.cleanups.run(t.Logf); err != nil {
			failed.Add(1)
			t.Errorf("FAIL teardown: %v", err)
		} else {
			passed.Add(1)
			t.Logf("ok teardown")
		}
	})

	// make image's archive is imported as it is, as README.md says
	// (ctr -n k8s.io images import), and the manifest names the reference
	// make image printed.
	images := []string{filepath.Join(dir, "pause.oci.tar"), filepath.Join(dir, "busybox.oci.tar"),
		filepath.Join(bin, "minicni-image.oci.tar")}
	check(t, "build the pause and busybox images", 2*time.Minute, func(context.Context) error {
		if err := ociimage.BuildPause(dir, images[0]); err != nil {
			return err
		}
		return ociimage.BuildBusybox("/bin/busybox", images[1])
	})

	var n1 *node
	check(t, "underlay and node 1's namespaces", 30*time.Second, func(ctx context.Context) error {
		if err := c.underlay(ctx); err != nil {
			return err
		}
		n1, err = c.addNode(ctx, 1)
		return err
	})
	check(t, "control plane up (etcd, apiserver, controller-manager, scheduler)", 2*time.Minute, func(ctx context.Context) error {
		return c.controlPlane(ctx, n1)
	})
	check(t, "node 1: containerd up, images imported", time.Minute, func(ctx context.Context) error {
		return c.startRuntime(ctx, n1, images)
	})
	check(t, "node 1: kubelet registered", 2*time.Minute, func(ctx context.Context) error {
		return c.startKubelet(ctx, n1)
	})

	ds, err := renderManifest(string(manifest), image, n1.ip)
	if err != nil {
		t.Fatal(err)
	}
	ok := t.Run("one node", func(t *testing.T) { oneNode(t, c, n1, ds) })
	if !ok {
		t.Fatal("one node failed: two nodes not tried")
	}
	var n2 *node
	if !t.Run("two nodes", func(t *testing.T) { n2 = twoNodes(t, c, n1, ds, images) }) {
		t.Fatal("two nodes failed: another subnet not tried")
	}
	t.Run("another subnet", func(t *testing.T) { otherSubnet(t, c, n1, n2, images) })
}

// renderManifest is installer/manifests/minicni.yaml with both image:
// lines set to image, the reference make image printed (what README.md
// says to do), cluster-cidr set to the controller-manager's two cluster
// CIDRs (the cluster is dual-stack) and, since no kube-proxy runs here to serve the kubernetes
// Service, the agent pointed at the apiserver's address through the
// in-cluster variables.
func renderManifest(m, image, apiserver string) (string, error) {
	imageLine := regexp.MustCompile(`(?m)^([ \t]+image: )\S+`)
	if n := len(imageLine.FindAllString(m, -1)); n != 2 {
		return "", fmt.Errorf("the manifest has %d image: lines, want 2 (install and agent)", n)
	}
	m = imageLine.ReplaceAllString(m, "${1}"+image)
	cidrLine := regexp.MustCompile(`(?m)^(  cluster-cidr: )"[^"]*"$`)
	if n := len(cidrLine.FindAllString(m, -1)); n != 1 {
		return "", fmt.Errorf("the manifest has %d cluster-cidr: lines, want 1", n)
	}
	m = cidrLine.ReplaceAllString(m, `${1}"`+clusterCIDR+","+clusterCIDR6+`"`)
	env := "          env: &env\n"
	if !strings.Contains(m, env) {
		return "", fmt.Errorf("the manifest has no %q", env)
	}
	return strings.Replace(m, env, env+
		"            - {name: KUBERNETES_SERVICE_HOST, value: \""+apiserver+"\"}\n"+
		"            - {name: KUBERNETES_SERVICE_PORT, value: \""+apiPort+"\"}\n", 1), nil
}

// podManifest is a busybox pod pinned to a node; with hostPort > 0 it runs
// httpd on 8080 answering its own name, published on hostPort.
func podManifest(name, nodeName string, hostPort int) string {
	cmd := `["sleep", "3600"]`
	ports := ""
	if hostPort > 0 {
		cmd = fmt.Sprintf(`["sh", "-c", "echo %s > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]`, name)
		ports = fmt.Sprintf("\n    ports: [{containerPort: 8080, hostPort: %d}]", hostPort)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default, labels: {app: minicni-e2e}}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: %s%s
`, name, nodeName, ociimage.BusyboxRef, cmd, ports)
}

// waitNetworkReady waits until the DaemonSet's pod on each node is ready
// and each node Ready with two podCIDRs, an IPv4 and an IPv6 one, both in
// the conflist the install step wrote from them; it returns the IPv4
// podCIDRs, and leaves the IPv6 ones in c.podCIDR6.
func waitNetworkReady(ctx context.Context, c *cluster, nodes ...*node) (map[string]*net.IPNet, error) {
	cidrs := map[string]*net.IPNet{}
	c.podCIDR6 = map[string]*net.IPNet{}
	err := poll(ctx, 500*time.Millisecond, func() (bool, string, error) {
		for _, n := range nodes {
			if err := n.kubelet.alive(); err != nil {
				return false, "", err
			}
			out, err := c.kubectl(ctx, "get", "node", n.name, "-o",
				`jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.podCIDRs[*]}`)
			if err != nil {
				return false, err.Error(), nil
			}
			f := strings.Fields(out)
			if len(f) != 3 || f[0] != "True" {
				return false, fmt.Sprintf("node %s: Ready and podCIDRs: %q", n.name, out), nil
			}
			for _, s := range f[1:] {
				_, cidr, err := net.ParseCIDR(s)
				if err != nil {
					return false, "", fmt.Errorf("node %s podCIDR %q: %v", n.name, s, err)
				}
				if cidr.IP.To4() != nil {
					cidrs[n.name] = cidr
				} else {
					c.podCIDR6[n.name] = cidr
				}
			}
			if cidrs[n.name] == nil || c.podCIDR6[n.name] == nil {
				return false, "", fmt.Errorf("node %s: podCIDRs %v, want an IPv4 and an IPv6 one", n.name, f[1:])
			}
			b, err := os.ReadFile(n.private("/etc/cni/net.d") + "/10-minicni.conflist")
			if err != nil {
				return false, err.Error(), nil
			}
			for _, cidr := range []*net.IPNet{cidrs[n.name], c.podCIDR6[n.name]} {
				if !strings.Contains(string(b), `"`+cidr.String()+`"`) {
					return false, "", fmt.Errorf("node %s: conflist does not hold its podCIDR %s:\n%s", n.name, cidr, b)
				}
			}
		}
		out, err := c.kubectl(ctx, "-n", "kube-system", "get", "daemonset", "minicni", "-o",
			"jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}")
		if err != nil || out != fmt.Sprintf("%d/%d", len(nodes), len(nodes)) {
			return false, fmt.Sprintf("daemonset ready %q %v", out, err), nil
		}
		return true, "", nil
	})
	return cidrs, err
}

// runPods creates the pods and waits for them to be ready; it returns
// their addresses.
func runPods(ctx context.Context, c *cluster, pods map[string]string) (map[string]net.IP, error) {
	var all []string
	for name, m := range pods {
		if err := c.apply(ctx, m); err != nil {
			return nil, err
		}
		all = append(all, "pod/"+name)
	}
	if _, err := c.kubectl(ctx, append([]string{"wait", "--for=condition=Ready", "--timeout=100s"}, all...)...); err != nil {
		desc, _ := c.kubectl(ctx, append([]string{"describe"}, all...)...)
		return nil, fmt.Errorf("%v\n%s", err, desc)
	}
	ips := map[string]net.IP{}
	for name := range pods {
		out, err := c.kubectl(ctx, "get", "pod", name, "-o", "jsonpath={.status.podIP}")
		if err != nil {
			return nil, err
		}
		ip := net.ParseIP(strings.TrimSpace(out))
		if ip == nil {
			return nil, fmt.Errorf("pod %s: no address (%q)", name, out)
		}
		ips[name] = ip
	}
	return ips, nil
}

// ping pings to from pod with kubectl exec.
func ping(ctx context.Context, c *cluster, pod string, to net.IP) error {
	_, err := c.kubectl(ctx, "exec", pod, "--", "ping", "-c", "2", "-W", "3", to.String())
	return err
}

// fetchOnNode GETs / from addr with a connection made in the node's
// network namespace (the socket belongs to the namespace it was created
// in; Debian's static busybox wget crashes on this machine).
func fetchOnNode(n *node, addr string) (string, error) {
	netns, err := ns.GetNS("/run/netns/" + n.ns)
	if err != nil {
		return "", err
	}
	defer netns.Close()
	var conn net.Conn
	if err := netns.Do(func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET http://%s/: %s", addr, resp.Status)
	}
	return string(b), err
}

// deletePods deletes the pods and waits until they are gone.
func deletePods(ctx context.Context, c *cluster, names ...string) error {
	args := []string{"delete", "pod", "--wait=true", "--timeout=60s"}
	_, err := c.kubectl(ctx, append(args, names...)...)
	return err
}

// reservations lists the node's miniipam reservations (files named after
// addresses under its private /var/lib/cni/networks/minicni).
func reservations(n *node) []string {
	ents, _ := os.ReadDir(n.private("/var/lib/cni") + "/networks/minicni")
	var ips []string
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// nodeExec runs a command on the node (its network and mount namespaces).
func nodeExec(ctx context.Context, n *node, args ...string) (string, error) {
	return run(ctx, "nsenter", append(n.enter(), args...)...)
}

// oneNode is step 1 of the walkthrough on node 1.
func oneNode(t *testing.T, c *cluster, n1 *node, ds string) {
	var cidr *net.IPNet
	check(t, "apply the DaemonSet; install writes the conflist from the podCIDR; node Ready", 3*time.Minute, func(ctx context.Context) error {
		if err := c.apply(ctx, ds); err != nil {
			return err
		}
		cidrs, err := waitNetworkReady(ctx, c, n1)
		cidr = cidrs[n1.name]
		return err
	})
	const hostPort = 30080
	var ips map[string]net.IP
	check(t, "two pods (busybox, httpd with a hostPort) get addresses in the podCIDR", 2*time.Minute, func(ctx context.Context) error {
		var err error
		ips, err = runPods(ctx, c, map[string]string{
			"sleeper": podManifest("sleeper", n1.name, 0),
			"web":     podManifest("web", n1.name, hostPort),
		})
		if err != nil {
			return err
		}
		for name, ip := range ips {
			if !cidr.Contains(ip) {
				return fmt.Errorf("pod %s got %s, outside the node's podCIDR %s", name, ip, cidr)
			}
		}
		if ips["sleeper"].Equal(ips["web"]) {
			return fmt.Errorf("both pods got %s", ips["web"])
		}
		// An IPv4 and an IPv6 address per pod.
		if got := len(reservations(n1)); got != 4 {
			return fmt.Errorf("%d miniipam reservations on the node, want 4: %v", got, reservations(n1))
		}
		return nil
	})
	check(t, "kubectl exec: ping pod to pod and pod to node", time.Minute, func(ctx context.Context) error {
		for _, p := range []struct {
			from string
			to   net.IP
		}{{"sleeper", ips["web"]}, {"web", ips["sleeper"]}, {"sleeper", net.ParseIP(n1.ip)}} {
			if err := ping(ctx, c, p.from, p.to); err != nil {
				return err
			}
		}
		return nil
	})
	check(t, "IPv6: both pods have an address in the IPv6 podCIDR; kubectl exec: ping pod to pod and pod to node; the node pings the pod in both families", time.Minute, func(ctx context.Context) error {
		ips6, err := podIPs6(ctx, c, map[string]*node{"sleeper": n1, "web": n1})
		if err != nil {
			return err
		}
		for _, p := range []struct {
			from string
			to   net.IP
		}{{"sleeper", ips6["web"]}, {"web", ips6["sleeper"]}, {"sleeper", net.ParseIP(n1.ip6)}} {
			if err := ping(ctx, c, p.from, p.to); err != nil {
				return err
			}
		}
		for _, to := range []net.IP{ips["sleeper"], ips6["sleeper"]} {
			if err := nodePing(ctx, n1, to); err != nil {
				return err
			}
		}
		return nil
	})
	check(t, "the hostPort reaches the HTTP pod", time.Minute, func(ctx context.Context) error {
		return poll(ctx, time.Second, func() (bool, string, error) {
			out, err := fetchOnNode(n1, net.JoinHostPort(n1.ip, fmt.Sprint(hostPort)))
			if err != nil {
				return false, err.Error(), nil
			}
			if strings.TrimSpace(out) != "web" {
				return false, "", fmt.Errorf("hostPort answered %q, want %q", out, "web")
			}
			return true, "", nil
		})
	})
	check(t, "deleting the pods releases their addresses", 2*time.Minute, func(ctx context.Context) error {
		if err := deletePods(ctx, c, "sleeper", "web"); err != nil {
			return err
		}
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			r := reservations(n1)
			return len(r) == 0, fmt.Sprintf("reservations left: %v", r), nil
		})
	})
	check(t, "delete the DaemonSet and uninstall: no minicni state left on the node", 2*time.Minute, func(ctx context.Context) error {
		if err := uninstall(ctx, c, n1); err != nil {
			return err
		}
		return leftovers(ctx, n1)
	})
}

// uninstall deletes the DaemonSet, waits for its pods to go, removes the
// pod sandboxes left on the nodes (those of deleted pods, stopped) and runs
// `minicni-installer uninstall --remove-binaries` on each. The sandboxes go
// first, while the chain is still installed, as the kubelet's garbage
// collection would remove them given time: containerd runs DEL again when
// it removes a sandbox (CNI_NETNS empty) and, with no conflist left, fails
// with "cni plugin not initialized" and keeps the sandbox.
func uninstall(ctx context.Context, c *cluster, nodes ...*node) error {
	if _, err := c.kubectl(ctx, "-n", "kube-system", "delete", "daemonset", "minicni", "--wait=true", "--timeout=60s"); err != nil {
		return err
	}
	if err := poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		out, err := c.kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=minicni", "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", "agent pods: " + out, nil
	}); err != nil {
		return err
	}
	for _, n := range nodes {
		pods, err := n.ctrd.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return fmt.Errorf("%s: list pod sandboxes: %w", n.name, err)
		}
		for _, p := range pods.GetItems() {
			if _, err := n.ctrd.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
				return fmt.Errorf("%s: remove pod sandbox %s (%s, %s): %w", n.name, p.Id, p.GetMetadata().GetName(), p.State, err)
			}
		}
		if _, err := nodeExec(ctx, n, filepath.Join(c.bin, "cni", "minicni-installer"), "uninstall",
			"--remove-binaries", "--from="+filepath.Join(c.bin, "cni")); err != nil {
			return err
		}
	}
	return nil
}

// leftovers lists the minicni state left on a node after uninstall.
func leftovers(ctx context.Context, n *node) error {
	var left []string
	for _, f := range []string{"/etc/cni/net.d/10-minicni.conflist", "/opt/cni/bin/minibridge", "/opt/cni/bin/miniipam",
		"/opt/cni/bin/miniroute", "/opt/cni/bin/portmap", "/opt/cni/bin/loopback"} {
		if _, err := os.Stat(n.private(filepath.Dir(f)) + "/" + filepath.Base(f)); err == nil {
			left = append(left, f)
		}
	}
	if r := reservations(n); len(r) > 0 {
		left = append(left, fmt.Sprintf("reservations %v", r))
	}
	for _, cmd := range [][]string{{"iptables-save"}, {"ip6tables-save"}} {
		out, err := nodeExec(ctx, n, cmd...)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "MINICNI") {
				left = append(left, cmd[0]+": "+l)
			}
		}
	}
	out, err := run(ctx, "ip", "-n", n.ns, "-o", "link", "show", "type", "vxlan")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		left = append(left, "VXLAN devices: "+s)
	}
	for _, fam := range []string{"-4", "-6"} {
		out, err := run(ctx, "ip", fam, "-n", n.ns, "route", "show", "proto", "109")
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(out); s != "" {
			left = append(left, "routes: "+s)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("left on %s: %s", n.name, strings.Join(left, "; "))
	}
	return nil
}

// twoNodes is step 2: node 2 joins, the DaemonSet runs on both, the agents
// route between the pod subnets, and the four pings pass.
func twoNodes(t *testing.T, c *cluster, n1 *node, ds string, images []string) *node {
	var n2 *node
	check(t, "node 2: namespaces, containerd, kubelet registered", 3*time.Minute, func(ctx context.Context) error {
		var err error
		if n2, err = c.addNode(ctx, 2); err != nil {
			return err
		}
		if err := c.startRuntime(ctx, n2, images); err != nil {
			return err
		}
		return c.startKubelet(ctx, n2)
	})
	var cidrs map[string]*net.IPNet
	check(t, "DaemonSet on both nodes, each Ready with its own podCIDR", 3*time.Minute, func(ctx context.Context) error {
		if err := c.apply(ctx, ds); err != nil {
			return err
		}
		var err error
		if cidrs, err = waitNetworkReady(ctx, c, n1, n2); err != nil {
			return err
		}
		if cidrs[n1.name].String() == cidrs[n2.name].String() {
			return fmt.Errorf("both nodes have podCIDR %s", cidrs[n1.name])
		}
		return nil
	})
	check(t, "agents route each node's pod subnet via the other node", time.Minute, func(ctx context.Context) error {
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			for _, p := range [][2]*node{{n1, n2}, {n2, n1}} {
				out, err := run(ctx, "ip", "-n", p[0].ns, "route", "show", cidrs[p[1].name].String())
				if err != nil {
					return false, "", err
				}
				if !strings.Contains(out, "via "+p[1].ip) {
					return false, fmt.Sprintf("%s: route to %s: %q", p[0].name, cidrs[p[1].name], out), nil
				}
			}
			return true, "", nil
		})
	})
	check(t, "agents route each node's IPv6 pod subnet via the other node's IPv6 address", time.Minute, func(ctx context.Context) error {
		return routeVia6(ctx, c, [2]*node{n1, n2}, [2]*node{n2, n1})
	})
	var ips map[string]net.IP
	check(t, "pods a1, b1 on node 1 and a2 on node 2", 2*time.Minute, func(ctx context.Context) error {
		var err error
		ips, err = runPods(ctx, c, map[string]string{
			"a1": podManifest("a1", n1.name, 0),
			"b1": podManifest("b1", n1.name, 0),
			"a2": podManifest("a2", n2.name, 0),
		})
		if err != nil {
			return err
		}
		for name, n := range map[string]*node{"a1": n1, "b1": n1, "a2": n2} {
			if !cidrs[n.name].Contains(ips[name]) {
				return fmt.Errorf("pod %s got %s, outside %s's podCIDR %s", name, ips[name], n.name, cidrs[n.name])
			}
		}
		return nil
	})
	for _, p := range []struct {
		what, from string
		to         net.IP
	}{
		{"pod → own host", "a1", net.ParseIP(n1.ip)},
		{"pod → other host", "a1", net.ParseIP(n2.ip)},
		{"pod → pod on the same node", "a1", ips["b1"]},
		{"pod → pod across nodes", "a1", ips["a2"]},
		{"pod → pod across nodes (back)", "a2", ips["a1"]},
		{"pod → own host (node 2)", "a2", net.ParseIP(n2.ip)},
		{"pod → other host (node 2)", "a2", net.ParseIP(n1.ip)},
	} {
		check(t, fmt.Sprintf("kubectl exec: %s (%s → %s)", p.what, p.from, p.to), 30*time.Second, func(ctx context.Context) error {
			return ping(ctx, c, p.from, p.to)
		})
	}
	var ips6 map[string]net.IP
	check(t, "IPv6: pods a1, b1, a2 have an address in their node's IPv6 podCIDR", 30*time.Second, func(ctx context.Context) error {
		var err error
		ips6, err = podIPs6(ctx, c, map[string]*node{"a1": n1, "b1": n1, "a2": n2})
		return err
	})
	runPings(t, c, []pingCase{
		{what: "kubectl exec, IPv6: pod → own host", from: "a1", to: net.ParseIP(n1.ip6)},
		{what: "kubectl exec, IPv6: pod → other host", from: "a1", to: net.ParseIP(n2.ip6)},
		{what: "kubectl exec, IPv6: pod → pod on the same node", from: "a1", to: ips6["b1"]},
		{what: "kubectl exec, IPv6: pod → pod across nodes", from: "a1", to: ips6["a2"]},
		{what: "kubectl exec, IPv6: pod → pod across nodes (back)", from: "a2", to: ips6["a1"]},
		{what: "kubectl exec, IPv6: pod → own host (node 2)", from: "a2", to: net.ParseIP(n2.ip6)},
		{what: "kubectl exec, IPv6: pod → other host (node 2)", from: "a2", to: net.ParseIP(n1.ip6)},
		{what: "node → pod on it", fromNode: n1, to: ips["a1"]},
		{what: "node → pod on it, IPv6", fromNode: n1, to: ips6["a1"]},
		{what: "node → pod on the other node", fromNode: n1, to: ips["a2"]},
		{what: "node → pod on the other node, IPv6", fromNode: n1, to: ips6["a2"]},
	}, nil, nil)
	check(t, "delete the pods: addresses released on both nodes", 2*time.Minute, func(ctx context.Context) error {
		if err := deletePods(ctx, c, "a1", "b1", "a2"); err != nil {
			return err
		}
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			r1, r2 := reservations(n1), reservations(n2)
			return len(r1)+len(r2) == 0, fmt.Sprintf("reservations left: %v %v", r1, r2), nil
		})
	})
	return n2
}

// otherSubnet is step 3: node 3 joins on the underlay's other subnet (no
// address of node 1 on a subnet it is attached to), the DaemonSet runs on
// it with the default overlay (auto): nodes 1 and 3 route each other's pod
// subnet through their VXLAN devices while nodes 1 and 2 keep their direct
// routes; the walkthrough's four pings between nodes 1 and 3 pass, the pod
// to pod ones leaving through the VXLAN device (the node's `ip route get`
// for the pod's packet); then the DaemonSet is deleted and uninstall leaves
// no VXLAN device and no route on any node.
func otherSubnet(t *testing.T, c *cluster, n1, n2 *node, images []string) {
	var n3 *node
	check(t, "node 3 on the other underlay subnet: namespaces, containerd, kubelet registered", 3*time.Minute, func(ctx context.Context) error {
		var err error
		if n3, err = c.addNode(ctx, otherSubnetNode); err != nil {
			return err
		}
		if err := c.startRuntime(ctx, n3, images); err != nil {
			return err
		}
		return c.startKubelet(ctx, n3)
	})
	var cidrs map[string]*net.IPNet
	check(t, "DaemonSet on node 3 too, Ready with its own podCIDR", 3*time.Minute, func(ctx context.Context) error {
		var err error
		cidrs, err = waitNetworkReady(ctx, c, n1, n2, n3)
		return err
	})
	check(t, "agents: nodes 1 and 3 route each other's pod subnet over VXLAN, nodes 1 and 2 directly", time.Minute, func(ctx context.Context) error {
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			for _, p := range [][2]*node{{n1, n3}, {n3, n1}, {n2, n3}, {n1, n2}} {
				from, to := p[0], p[1]
				dev, err := routeDev(ctx, from, inside(cidrs[to.name]))
				if err != nil {
					return false, err.Error(), nil
				}
				vx, err := isVXLAN(ctx, from, dev)
				if err != nil {
					return false, "", err
				}
				if want := subnet(nodeNum(from)) != subnet(nodeNum(to)); vx != want {
					return false, fmt.Sprintf("%s: route to %s (%s) through %s, VXLAN %v, want %v", from.name, cidrs[to.name], to.name, dev, vx, want), nil
				}
			}
			return true, "", nil
		})
	})
	var ips map[string]net.IP
	check(t, "pods a1, b1 on node 1 and a3 on node 3", 2*time.Minute, func(ctx context.Context) error {
		var err error
		ips, err = runPods(ctx, c, map[string]string{
			"a1": podManifest("a1", n1.name, 0),
			"b1": podManifest("b1", n1.name, 0),
			"a3": podManifest("a3", n3.name, 0),
		})
		if err != nil {
			return err
		}
		for name, n := range map[string]*node{"a1": n1, "b1": n1, "a3": n3} {
			if !cidrs[n.name].Contains(ips[name]) {
				return fmt.Errorf("pod %s got %s, outside %s's podCIDR %s", name, ips[name], n.name, cidrs[n.name])
			}
		}
		return nil
	})
	podNode := map[string]*node{"a1": n1, "a3": n3}
	for _, p := range []struct {
		what, from string
		to         net.IP
		vxlan      bool
	}{
		{"pod → own host", "a1", net.ParseIP(n1.ip), false},
		{"pod → other host", "a1", net.ParseIP(n3.ip), false},
		{"pod → pod on the same node", "a1", ips["b1"], false},
		{"pod → pod across subnets, over VXLAN", "a1", ips["a3"], true},
		{"pod → pod across subnets, over VXLAN (back)", "a3", ips["a1"], true},
		{"pod → own host (node 3)", "a3", net.ParseIP(n3.ip), false},
		{"pod → other host (node 3)", "a3", net.ParseIP(n1.ip), false},
	} {
		check(t, fmt.Sprintf("kubectl exec: %s (%s → %s)", p.what, p.from, p.to), 30*time.Second, func(ctx context.Context) error {
			if p.vxlan {
				n := podNode[p.from]
				dev, err := podRouteDev(ctx, n, ips[p.from], p.to)
				if err != nil {
					return err
				}
				if vx, err := isVXLAN(ctx, n, dev); err != nil || !vx {
					return fmt.Errorf("%s forwards %s → %s through %s, not a VXLAN device (%v)", n.name, ips[p.from], p.to, dev, err)
				}
			}
			return ping(ctx, c, p.from, p.to)
		})
	}
	var ips6 map[string]net.IP
	check(t, "IPv6: pods a1, b1, a3 have an address in their node's IPv6 podCIDR", 30*time.Second, func(ctx context.Context) error {
		var err error
		ips6, err = podIPs6(ctx, c, map[string]*node{"a1": n1, "b1": n1, "a3": n3})
		return err
	})
	runPings(t, c, []pingCase{
		{what: "kubectl exec, IPv6: pod → own host", from: "a1", to: net.ParseIP(n1.ip6)},
		{what: "kubectl exec, IPv6: pod → other host", from: "a1", to: net.ParseIP(n3.ip6)},
		{what: "kubectl exec, IPv6: pod → pod on the same node", from: "a1", to: ips6["b1"]},
		{what: "kubectl exec, IPv6: pod → pod across subnets, over VXLAN", from: "a1", to: ips6["a3"], vxlan: true},
		{what: "kubectl exec, IPv6: pod → pod across subnets, over VXLAN (back)", from: "a3", to: ips6["a1"], vxlan: true},
		{what: "kubectl exec, IPv6: pod → own host (node 3)", from: "a3", to: net.ParseIP(n3.ip6)},
		{what: "kubectl exec, IPv6: pod → other host (node 3)", from: "a3", to: net.ParseIP(n1.ip6)},
		{what: "node → pod on a node across subnets", fromNode: n1, to: ips["a3"]},
		{what: "node → pod on a node across subnets, IPv6", fromNode: n1, to: ips6["a3"]},
	}, ips6, podNode)
	check(t, "delete the pods: addresses released on both nodes", 2*time.Minute, func(ctx context.Context) error {
		if err := deletePods(ctx, c, "a1", "b1", "a3"); err != nil {
			return err
		}
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			r1, r3 := reservations(n1), reservations(n3)
			return len(r1)+len(r3) == 0, fmt.Sprintf("reservations left: %v %v", r1, r3), nil
		})
	})
	check(t, "delete the DaemonSet and uninstall on every node: no VXLAN device, no route, no minicni state left", 2*time.Minute, func(ctx context.Context) error {
		if err := uninstall(ctx, c, n1, n2, n3); err != nil {
			return err
		}
		for _, n := range []*node{n1, n2, n3} {
			if err := leftovers(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// nodeNum is the node's number (1-based), from its name.
func nodeNum(n *node) int {
	var i int
	_, _ = fmt.Sscanf(strings.TrimPrefix(n.name, nsPrefix), "n%d", &i)
	return i
}

// inside is an address of a pod subnet: its tenth.
func inside(cidr *net.IPNet) string {
	ip := slices.Clone(cidr.IP.To4())
	ip[3] += 10
	return ip.String()
}

// routeDev is the device of the node's route to dst (`ip route get`).
func routeDev(ctx context.Context, n *node, dst string) (string, error) {
	out, err := run(ctx, "ip", "-n", n.ns, "route", "get", dst)
	if err != nil {
		return "", err
	}
	return field(out, "dev")
}

// podRouteDev is the device a pod's packet to dst leaves its node through:
// the node's lookup for a packet from the pod's address arriving on the
// link of the node's route to the pod (the bridge), `ip route get DST from
// POD iif BRIDGE`.
func podRouteDev(ctx context.Context, n *node, pod, dst net.IP) (string, error) {
	iif, err := routeDev(ctx, n, pod.String())
	if err != nil {
		return "", err
	}
	out, err := run(ctx, "ip", "-n", n.ns, "route", "get", dst.String(), "from", pod.String(), "iif", iif)
	if err != nil {
		return "", err
	}
	return field(out, "dev")
}

// field is the word after key in ip's output.
func field(out, key string) (string, error) {
	f := strings.Fields(out)
	for i := range len(f) - 1 {
		if f[i] == key {
			return f[i+1], nil
		}
	}
	return "", fmt.Errorf("no %q in %q", key, strings.TrimSpace(out))
}

// isVXLAN says whether the node's link dev is a VXLAN device.
func isVXLAN(ctx context.Context, n *node, dev string) (bool, error) {
	out, err := run(ctx, "ip", "-n", n.ns, "-d", "-o", "link", "show", "dev", dev)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, " vxlan id "), nil
}

// dumpLogs shows the cluster's pods and the end of every daemon's and
// pod's log when the test failed, and copies the logs to
// $MINICNI_E2E_LOGS when set.
func (c *cluster) dumpLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.admin != "" {
		out, err := c.kubectl(ctx, "get", "nodes,pods", "-A", "-o", "wide")
		t.Logf("--- kubectl get nodes,pods -A: %v\n%s", err, out)
		out, err = c.kubectl(ctx, "describe", "pods", "-A")
		t.Logf("--- kubectl describe pods -A: %v\n%s", err, out)
	}
	keep := os.Getenv("MINICNI_E2E_LOGS")
	_ = filepath.WalkDir(c.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		t.Logf("--- %s (end):\n%s", p, tail(p, 25))
		if keep != "" {
			if b, err := os.ReadFile(p); err == nil {
				dst := filepath.Join(keep, strings.TrimPrefix(p, c.dir))
				_ = os.MkdirAll(filepath.Dir(dst), 0o755)
				_ = os.WriteFile(dst, b, 0o644)
			}
		}
		return nil
	})
}
