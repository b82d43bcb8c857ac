package cri

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/integration/internal/containerd"
	"github.com/minicni/minicni/integration/internal/ociimage"
	"github.com/minicni/minicni/libmini/minitest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerd2Dir is where hack/containerd2.sh puts containerd 2.x's
// binaries (bin/containerd2 of the repository); MINICNI_CONTAINERD2
// overrides it.
func containerd2Dir() string {
	if d := os.Getenv("MINICNI_CONTAINERD2"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin", "containerd2")
}

// chainPlugins are the binaries of conflist/10-minicni.conflist that
// libcni executes: minibridge runs miniipam in-process, so libcni never
// executes miniipam, but minibridge needs it in CNI_PATH.
var chainPlugins = []string{"minibridge", "miniroute", "portmap"}

// TestCRIContainerd2 is TestCRI's walk with containerd 2.x (built by
// hack/containerd2.sh from the version pinned in containerd2build), whose
// libcni (v1.3.1) runs the conflist at the highest of its cniVersions,
// 1.1.0, so it sends STATUS: the node's NetworkReady condition is the
// chain's STATUS. With miniipam's binary gone from the CNI bin dir the node
// reports minibridge's error and NetworkReady false, and recovers when the
// binary is back. Two pods get addresses and ping; containerd is SIGKILLed
// and restarted while they run, and their networking survives; stopping
// and removing them (two DELs, the second without a netns) leaves nothing;
// neither do containerd's processes and mounts. Every plugin call is
// recorded (a wrapper in the bin dir) and the census logged.
func TestCRIContainerd2(t *testing.T) {
	minitest.RequireRoot(t)
	c2 := containerd2Dir()
	if msg := containerd.MissingContainerd2(c2); msg != "" {
		minitest.Skip(t, "%s (make test builds it)", msg)
	}
	busybox := "/bin/busybox"

	// A short directory: containerd 2.x's shim socket dir (dir/s) must fit
	// in 42 bytes.
	dir, err := os.MkdirTemp("", "mcri2-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	binDir, realDir, confDir := filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-real"), filepath.Join(dir, "cni-conf")
	dataDir, pluginLog, verbLog := filepath.Join(dir, "ipam"), filepath.Join(dir, "cni.log"), filepath.Join(dir, "verbs.log")
	for _, d := range []string{binDir, realDir, confDir, dataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	pods := &podList{}
	h := newHost(t, pods.ids)
	t.Logf("pod subnet %s on bridge %s, gateway %s", h.subnet, bridgeName, h.gateway)

	plugins := []string{"minibridge", "miniipam", "miniroute", "loopback", "portmap"}
	pauseTar, busyboxTar := filepath.Join(dir, "pause.oci.tar"), filepath.Join(dir, "busybox.oci.tar")
	step(t, "build plugins and images", 90*time.Second, func(ctx context.Context) error {
		errs := make(chan error, 3)
		go func() {
			if err := minitest.BuildPlugins(realDir, plugins...); err != nil {
				errs <- err
				return
			}
			errs <- installRecorders(binDir, realDir, verbLog, plugins)
		}()
		go func() { errs <- ociimage.BuildPause(dir, pauseTar) }()
		go func() { errs <- ociimage.BuildBusybox(busybox, busyboxTar) }()
		for range 3 {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	})
	confBytes := renderConflist(t, h, dataDir, pluginLog)
	list, err := libcni.ConfListFromBytes(confBytes)
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "1.1.0" {
		t.Fatalf("libcni reads the conflist at cniVersion %q; its cniVersions must offer 1.1.0 (GC and STATUS)", list.CNIVersion)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-minicni.conflist"), confBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	d, err := containerd.Start(containerd.Options{Dir: dir, BinDir: binDir, ConfDir: confDir, Pause: ociimage.PauseRef, Containerd2: c2})
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("containerd log (end):\n%s", d.LogTail(60))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(pluginLog)
			t.Logf("plugins' log:\n%s", b)
			b, _ = os.ReadFile(verbLog)
			t.Logf("plugin calls:\n%s", b)
		}
	})
	step(t, "containerd 2.x ready (runtime and network)", 30*time.Second, d.WaitReady)
	step(t, "containerd is "+containerdVersion(t, c2), time.Second, func(context.Context) error { return nil })

	// One CRI Status call runs STATUS once on each plugin libcni executes,
	// and containerd sends none on its own.
	step(t, "CRI Status runs the chain's STATUS", 20*time.Second, func(ctx context.Context) error {
		before := verbCounts(verbLog)
		st, err := d.RT.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			return err
		}
		if c := containerd.Condition(st, runtimeapi.NetworkReady); !c.GetStatus() {
			return fmt.Errorf("NetworkReady %v: %s %s", c.GetStatus(), c.GetReason(), c.GetMessage())
		}
		after := verbCounts(verbLog)
		for _, p := range chainPlugins {
			if n := after[p+" STATUS"] - before[p+" STATUS"]; n != 1 {
				return fmt.Errorf("one CRI Status call ran %s's STATUS %d times, want 1", p, n)
			}
		}
		if n := after["loopback STATUS"]; n != 0 {
			return fmt.Errorf("loopback got STATUS %d times; containerd's loopback network is cniVersion 0.3.1", n)
		}
		time.Sleep(2 * time.Second)
		if quiet := verbCounts(verbLog); !maps.Equal(quiet, after) {
			return fmt.Errorf("with no CRI call for 2 s the plugins were still called: %v, then %v", after, quiet)
		}
		return nil
	})

	t.Run("no IPAM binary: NetworkReady false with minibridge's error", func(t *testing.T) {
		ipamBin := filepath.Join(binDir, "miniipam")
		wrapper, err := os.ReadFile(ipamBin)
		if err != nil {
			t.Fatal(err)
		}
		restore := func() error { return os.WriteFile(ipamBin, wrapper, 0o755) }
		t.Cleanup(func() { _ = restore() })
		if err := os.Remove(ipamBin); err != nil {
			t.Fatal(err)
		}
		// The chain's own answer, through libcni as containerd runs it.
		cni := &libcni.CNIConfig{Path: []string{binDir}}
		var want string
		step(t, "the chain's STATUS without miniipam in CNI_PATH", 20*time.Second, func(ctx context.Context) error {
			err := cni.GetStatusNetworkList(ctx, list)
			var te *types.Error
			if !errors.As(err, &te) || te.Code != 50 || !strings.Contains(err.Error(), "miniipam") {
				return fmt.Errorf("STATUS answered %v (%#v); want code 50 (not available) naming miniipam: minibridge's STATUS must fail when its IPAM binary is not in CNI_PATH, even though it runs miniipam in-process (issue 11)", err, te)
			}
			want = "Network plugin returns error: " + err.Error()
			return nil
		})
		step(t, "NetworkReady false with that message", 20*time.Second, func(ctx context.Context) error {
			c, err := d.WaitNetwork(ctx, func(c *runtimeapi.RuntimeCondition) bool { return c != nil && !c.Status })
			if err != nil {
				return err
			}
			if c.Message != want || c.Reason != "NetworkPluginNotReady" {
				return fmt.Errorf("NetworkReady false, reason %q, message %q; want NetworkPluginNotReady, %q", c.Reason, c.Message, want)
			}
			return nil
		})
		step(t, "miniipam back: NetworkReady true", 20*time.Second, func(ctx context.Context) error {
			if err := restore(); err != nil {
				return err
			}
			_, err := d.WaitNetwork(ctx, func(c *runtimeapi.RuntimeCondition) bool { return c.GetStatus() })
			return err
		})
	})
	// The rest needs miniipam back, whatever the subtest found.
	if _, err := os.Stat(filepath.Join(binDir, "miniipam")); err != nil {
		t.Fatalf("miniipam not restored: %v", err)
	}
	step(t, "containerd ready again", 30*time.Second, d.WaitReady)

	step(t, "import images", 30*time.Second, func(ctx context.Context) error {
		for _, a := range []string{pauseTar, busyboxTar} {
			if err := d.ImportImage(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	a, b := runPods(t, d, h, pods, dir, dataDir, pluginLog, freePort(t), "1.1.0")
	step(t, "ping pod to pod and pod to node", 30*time.Second, func(ctx context.Context) error {
		return pingAll(ctx, d, h, a, b)
	})

	step(t, "SIGKILL containerd: the pods still reach each other", 30*time.Second, func(ctx context.Context) error {
		if err := d.Kill(); err != nil {
			return err
		}
		for _, c := range [][2]*pod{{a, b}, {b, a}} {
			out, err := exec.CommandContext(ctx, "nsenter", "--net="+c[0].netns, "ping", "-c", "1", "-W", "2", c[1].ip.String()).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ping %s → %s with containerd dead: %v\n%s", c[0].name, c[1].name, err, out)
			}
		}
		return nil
	})
	step(t, "restart containerd: pods ready, networking intact", 60*time.Second, func(ctx context.Context) error {
		if err := d.Restart(); err != nil {
			return err
		}
		if err := d.WaitReady(ctx); err != nil {
			return err
		}
		for _, p := range []*pod{a, b} {
			st, err := d.RT.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
			if err != nil {
				return err
			}
			if s, ip := st.GetStatus().GetState(), st.GetStatus().GetNetwork().GetIp(); s != runtimeapi.PodSandboxState_SANDBOX_READY || ip != p.ip.String() {
				return fmt.Errorf("after the restart pod %s is %s with address %q, want ready with %s", p.name, s, ip, p.ip)
			}
			if adds := logLines(pluginLog, "plugin=minibridge", "cmd=ADD", "containerID="+p.id); len(adds) != 1 {
				return fmt.Errorf("minibridge logged %d ADDs for pod %s, want 1 (none on the restart)", len(adds), p.name)
			}
			if dels := logLines(pluginLog, "plugin=minibridge", "cmd=DEL", "containerID="+p.id); len(dels) != 0 {
				return fmt.Errorf("minibridge logged DELs for pod %s on the restart: %q", p.name, dels)
			}
		}
		return pingAll(ctx, d, h, a, b)
	})

	for _, p := range pods.all() {
		step(t, "stop and remove pod "+p.name, 30*time.Second, func(ctx context.Context) error {
			return stopAndRemove(ctx, d, h, p, dataDir, pluginLog)
		})
	}
	step(t, "nothing left of the pods", 10*time.Second, func(ctx context.Context) error {
		return checkNothingLeft(h, pods.all(), dataDir)
	})
	step(t, "what containerd 2.x sent", time.Second, func(context.Context) error {
		counts := verbCounts(verbLog)
		t.Logf("plugin calls (plugin verb: count):\n%s", formatCounts(counts))
		for _, p := range plugins {
			for _, v := range []string{"CHECK", "GC"} {
				if n := counts[p+" "+v]; n != 0 {
					return fmt.Errorf("containerd 2.x sent %s to %s %d times; go-cni has no %s call", v, p, n, v)
				}
			}
		}
		for _, p := range append([]string{"loopback"}, chainPlugins...) {
			if counts[p+" ADD"] != 2 || counts[p+" DEL"] != 4 {
				return fmt.Errorf("%s got %d ADDs and %d DELs, want 2 and 4 (two pods, two DELs each)", p, counts[p+" ADD"], counts[p+" DEL"])
			}
		}
		return nil
	})
	step(t, "stop containerd: no process, shim or mount left", 60*time.Second, func(context.Context) error {
		if err := d.Stop(); err != nil {
			return err
		}
		if left := d.Leftovers(); len(left) > 0 {
			return fmt.Errorf("left after containerd stopped:\n%s", strings.Join(left, "\n"))
		}
		return nil
	})
}

// installRecorders puts, for each plugin built in realDir, a wrapper of the
// same name in binDir that appends one line per call to verbLog (time,
// plugin, CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS), then execs the real
// binary with the same arguments, environment, stdin and stdout.
func installRecorders(binDir, realDir, verbLog string, plugins []string) error {
	for _, p := range plugins {
		script := fmt.Sprintf(`#!/bin/sh
# Records each call of %[1]s (TestCRIContainerd2), then runs it.
echo "$(date +%%s.%%N) %[1]s ${CNI_COMMAND:-none} ${CNI_CONTAINERID:--} netns=${CNI_NETNS:-}" >> '%[2]s'
exec '%[3]s' "$@"
`, p, verbLog, filepath.Join(realDir, p))
		if err := os.WriteFile(filepath.Join(binDir, p), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// verbCounts counts the recorded calls by "plugin VERB".
func verbCounts(verbLog string) map[string]int {
	b, _ := os.ReadFile(verbLog)
	counts := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			counts[f[1]+" "+f[2]]++
		}
	}
	return counts
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %d\n", k, m[k])
	}
	return b.String()
}

// containerdVersion is what the containerd binary says it is, for the log.
func containerdVersion(t *testing.T, dir string) string {
	out, err := exec.Command(filepath.Join(dir, "containerd"), "--version").Output()
	if err != nil {
		t.Fatalf("containerd --version: %v", err)
	}
	f := strings.Fields(string(out))
	return strings.Join(f[slices.Index(f, "containerd")+1:], " ")
}
