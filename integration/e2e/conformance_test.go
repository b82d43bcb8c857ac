package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minicni/minicni/integration/internal/ociimage"
	"github.com/minicni/minicni/libmini/minitest"
)

// The names the e2e framework asks for, given the registry override file
// (KUBE_TEST_REPO_LIST) conformanceRepoList: the upstream registries mapped
// to minicni.test, a domain that cannot exist, so nothing is ever pulled.
const (
	conformanceRepoList = "promoterE2eRegistry: minicni.test/e2e-test-images\ngcRegistry: minicni.test\n"
	agnhostRef          = "minicni.test/e2e-test-images/agnhost:2.56" // test/utils/image/manifest.go, v1.34.4
	e2ePauseRef         = "minicni.test/pause:3.10.1"
)

// TestConformance runs Kubernetes' own sig-network e2e tests (e2e.test
// from k8s.io/kubernetes at the version of the cluster) against minicni on
// the make e2e cluster with two nodes and a kube-proxy per node. Run by
// `make conformance` (hack/conformance.sh), which builds e2e.test, agnhost
// and kube-proxy into $MINICNI_CONFORMANCE_BIN and passes the ginkgo focus
// and skip expressions; skipped unless MINICNI_CONFORMANCE=1.
func TestConformance(t *testing.T) {
	if os.Getenv("MINICNI_CONFORMANCE") != "1" {
		t.Skip("MINICNI_CONFORMANCE=1 not set (make conformance runs it)")
	}
	minitest.RequireRoot(t)
	bin, cbin := os.Getenv("MINICNI_E2E_BIN"), os.Getenv("MINICNI_CONFORMANCE_BIN")
	for _, b := range []string{filepath.Join(bin, "kubelet"), filepath.Join(bin, "minicni-image.oci.tar"),
		filepath.Join(cbin, "e2e.test"), filepath.Join(cbin, "agnhost"), filepath.Join(cbin, "localhost.crt"), filepath.Join(cbin, "kube-proxy"),
		filepath.Join(cbin, "coredns")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%v (hack/conformance.sh builds it)", err)
		}
	}
	image := os.Getenv("MINICNI_E2E_IMAGE")
	// One ginkgo regular expression a line.
	focus, skip := lines(os.Getenv("MINICNI_CONFORMANCE_FOCUS")), lines(os.Getenv("MINICNI_CONFORMANCE_SKIP"))
	if len(focus) == 0 {
		t.Fatal("MINICNI_CONFORMANCE_FOCUS (ginkgo focus expressions, one a line) is not set; hack/conformance.sh sets it")
	}
	manifest, err := os.ReadFile(filepath.Join("..", "..", "installer", "manifests", "minicni.yaml"))
	if err != nil {
		t.Fatal(err)
	}
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
			t.Errorf("FAIL teardown: %v", err)
		} else {
			t.Logf("ok teardown")
		}
	})

	images := []string{filepath.Join(dir, "pause.oci.tar"), filepath.Join(dir, "e2e-pause.oci.tar"),
		filepath.Join(dir, "agnhost.oci.tar"), filepath.Join(bin, "minicni-image.oci.tar")}
	step(t, "build the pause and agnhost images", 3*time.Minute, func(context.Context) error {
		if err := ociimage.BuildPause(dir, images[0]); err != nil {
			return err
		}
		if err := ociimage.BuildPauseAs(dir, images[1], e2ePauseRef); err != nil {
			return err
		}
		return ociimage.BuildAgnhost(cbin, "/bin/busybox", images[2], agnhostRef)
	})
	var nodes []*node
	step(t, "underlay, control plane, cluster DNS, two nodes registered", 5*time.Minute, func(ctx context.Context) error {
		if err := c.underlay(ctx); err != nil {
			return err
		}
		n1, err := c.addNode(ctx, 1)
		if err != nil {
			return err
		}
		if err := c.controlPlane(ctx, n1); err != nil {
			return err
		}
		if err := c.startDNS(ctx, n1, filepath.Join(cbin, "coredns")); err != nil {
			return err
		}
		nodes = append(nodes, n1)
		n2, err := c.addNode(ctx, 2)
		if err != nil {
			return err
		}
		nodes = append(nodes, n2)
		for _, n := range nodes {
			if err := c.startRuntime(ctx, n, images); err != nil {
				return err
			}
			if err := c.startKubelet(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	step(t, "the DaemonSet installs the chain; both nodes Ready", 3*time.Minute, func(ctx context.Context) error {
		ds, err := renderManifest(string(manifest), image, nodes[0].ip)
		if err != nil {
			return err
		}
		if err := c.apply(ctx, ds); err != nil {
			return err
		}
		_, err = waitNetworkReady(ctx, c, nodes...)
		return err
	})
	step(t, "kube-proxy (iptables mode) on each node", 2*time.Minute, func(ctx context.Context) error {
		for _, n := range nodes {
			if err := c.startKubeProxy(ctx, n, filepath.Join(cbin, "kube-proxy")); err != nil {
				return err
			}
		}
		return nil
	})

	report := filepath.Join(dir, "ginkgo-report.json")
	repoList := filepath.Join(dir, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(conformanceRepoList), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--net=/run/netns/" + nodes[0].ns, filepath.Join(cbin, "e2e.test"),
		"--kubeconfig=" + c.admin, "--provider=skeleton", "--kubectl-path=" + filepath.Join(bin, "kubectl"),
		"--report-dir=" + filepath.Join(dir, "report"), "--ginkgo.json-report=" + report,
		"--ginkgo.no-color", "--ginkgo.v", "--ginkgo.timeout=80m"}
	for _, f := range focus {
		args = append(args, "--ginkgo.focus="+f)
	}
	for _, s := range skip {
		args = append(args, "--ginkgo.skip="+s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoList)
	logf, err := os.Create(filepath.Join(dir, "e2e.test.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout = io.MultiWriter(os.Stdout, logf)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	runtime.LockOSThread() // Pdeathsig fires when the forking thread exits
	runErr := cmd.Run()
	runtime.UnlockOSThread()
	t.Logf("e2e.test: %v, %v", runErr, time.Since(start).Round(time.Second))
	ran, err := readGinkgoReport(report)
	if err != nil {
		t.Fatalf("ginkgo report: %v (e2e.test: %v)", err, runErr)
	}
	var passedN, failedN int
	for _, s := range ran {
		t.Logf("%s: %s (%v)", s.State, s.Name, s.Duration.Round(time.Second))
		if s.State == "passed" {
			passedN++
		} else {
			failedN++
		}
	}
	fmt.Printf("%d passed, %d failed\n", passedN, failedN)
	if runErr != nil || failedN > 0 || passedN == 0 {
		t.Errorf("e2e.test: %v; %d passed, %d failed", runErr, passedN, failedN)
	}
}

// step runs one setup step with its own deadline and stops the test when it
// fails (the teardown registered so far still runs).
func step(t *testing.T, name string, limit time.Duration, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := f(ctx); err != nil {
		t.Fatalf("FAIL %s (%v): %v", name, time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("ok %s: %v", name, time.Since(start).Round(time.Millisecond))
}

// startKubeProxy issues kube-proxy's client certificate (system:kube-proxy,
// which the default system:node-proxier binding authorizes) and starts it
// on the node, in iptables mode, leaving the machine-wide conntrack
// settings alone (conntrack-max and the TCP timeouts are global or would
// be changed for every namespace), and waits for its healthz.
func (c *cluster) startKubeProxy(ctx context.Context, n *node, kubeProxy string) error {
	name := n.name + "-kube-proxy"
	if err := c.pki.issue(name, "system:kube-proxy", nil); err != nil {
		return err
	}
	kc, err := c.pki.kubeconfig(name, "https://"+nodeIP(1)+":"+apiPort)
	if err != nil {
		return err
	}
	p, err := startProc(n.dir, "kube-proxy", n.enter(), kubeProxy,
		"--kubeconfig="+kc, "--hostname-override="+n.name, "--proxy-mode=iptables",
		"--cluster-cidr="+clusterCIDR+","+clusterCIDR6, "--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256", "--v=1")
	if err != nil {
		return err
	}
	c.cleanups.add(n.name+" kube-proxy", func() error { return p.stop(15 * time.Second) })
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := p.alive(); err != nil {
			return false, "", err
		}
		out, err := nodeExec(ctx, n, "iptables-save", "-t", "nat")
		if err != nil {
			return false, "", err
		}
		return strings.Contains(out, "KUBE-SERVICES") && strings.Contains(out, "KUBE-SVC-"), "no KUBE-SVC chain yet (kubernetes Service)", nil
	})
}

// specResult is one spec of the ginkgo JSON report that ran.
type specResult struct {
	Name, State string
	Duration    time.Duration
}

// readGinkgoReport lists the specs e2e.test ran (not skipped, not pending)
// from ginkgo's JSON report, sorted by name.
func readGinkgoReport(path string) ([]specResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeType            string
			LeafNodeText            string
			State                   string
			RunTime                 time.Duration
		}
	}
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, err
	}
	var out []specResult
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" || s.State == "skipped" || s.State == "pending" {
				continue
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			out = append(out, specResult{Name: name, State: s.State, Duration: s.RunTime})
		}
	}
	slices.SortFunc(out, func(a, b specResult) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// lines are the non-empty lines of s, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// startDNS runs CoreDNS (its kubernetes plugin: Services and pods of
// cluster.local, nothing forwarded) beside the control plane in node 1's
// network namespace, on node 1's address, as the admin; every kubelet
// names that address as the cluster DNS. The Services conformance tests
// reach a Service by its name as well as by its address.
func (c *cluster) startDNS(ctx context.Context, n1 *node, coredns string) error {
	cp := filepath.Join(c.dir, "control-plane")
	corefile := filepath.Join(cp, "Corefile")
	conf := fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
    }
}
`, n1.ip, c.admin)
	if err := os.WriteFile(corefile, []byte(conf), 0o600); err != nil {
		return err
	}
	p, err := startProc(cp, "coredns", []string{"--net=/run/netns/" + n1.ns}, coredns, "-conf", corefile)
	if err != nil {
		return err
	}
	c.cleanups.add("coredns", func() error { return p.stop(10 * time.Second) })
	c.kubeletExtra = fmt.Sprintf("clusterDNS: [%s]\nclusterDomain: cluster.local\n", n1.ip)
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		if err := p.alive(); err != nil {
			return false, "", err
		}
		out, err := run(ctx, "nsenter", "--net=/run/netns/"+n1.ns, "busybox", "nslookup", "kubernetes.default.svc.cluster.local", n1.ip)
		return err == nil && strings.Contains(out, "10.96.0.1"), out, nil
	})
}
