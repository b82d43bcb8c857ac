package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

const dualStack = `{"ranges":[[{"subnet":"10.20.0.0/24"}],[{"subnet":"fd20::/120"}]],
	"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}`

// TestVerbsEveryVersion runs ADD, CHECK, GC, STATUS and DEL through the
// binary in every CNI version: the result's shape differs (0.1.0/0.2.0 ip4
// and ip6 objects, 0.3.x "version" per address, 1.x without), CHECK exists
// from 0.4.0, GC and STATUS from 1.1.0.
func TestVerbsEveryVersion(t *testing.T) {
	minitest.ForEachVersion(t, func(t *testing.T, ver string) {
		dataDir := t.TempDir()
		dir := filepath.Join(dataDir, "net")
		conf := netConf(ver, "miniipam", dataDir, dualStack)

		add := mustOK(t, call{cmd: "ADD", id: "c1", stdin: conf})
		want := &current.Result{
			CNIVersion: current.ImplementedSpecVersion,
			IPs: []*current.IPConfig{
				{Address: mustCIDR(t, "10.20.0.2/24"), Gateway: net.ParseIP("10.20.0.1")},
				{Address: mustCIDR(t, "fd20::2/120"), Gateway: net.ParseIP("fd20::1")},
			},
			Routes: []*types.Route{{Dst: mustCIDR(t, "0.0.0.0/0")}, {Dst: mustCIDR(t, "::/0")}},
		}
		checkResult(t, ver, add.stdout, want)
		if got := storeFiles(t, dir)["10.20.0.2"]; got != "c1\r\neth0" {
			t.Errorf("reservation 10.20.0.2 holds %q", got)
		}

		// ADD again: the same result.
		again := mustOK(t, call{cmd: "ADD", id: "c1", stdin: conf})
		checkResult(t, ver, again.stdout, want)

		// CHECK with the ADD's result as prevResult.
		checkConf := netConf(ver, "miniipam", dataDir, dualStack, `"prevResult":`+string(add.stdout))
		wrongConf := netConf(ver, "miniipam", dataDir, dualStack,
			`"prevResult":`+strings.ReplaceAll(string(add.stdout), "10.20.0.2", "10.20.0.9"))
		if ok, _ := cniversion.GreaterThanOrEqualTo(ver, "0.4.0"); ok {
			if o := mustOK(t, call{cmd: "CHECK", id: "c1", stdin: checkConf}); len(o.stdout) != 0 {
				t.Errorf("CHECK printed %s", o.stdout)
			}
			wantError(t, "CHECK with a wrong prevResult", runPlugin(t, call{cmd: "CHECK", id: "c1", stdin: wrongConf}), libmini.CodeCheckFailed)
			wantError(t, "CHECK of an unknown container", runPlugin(t, call{cmd: "CHECK", id: "c2", stdin: checkConf}), libmini.CodeCheckFailed)
		} else {
			wantError(t, "CHECK before 0.4.0", runPlugin(t, call{cmd: "CHECK", id: "c1", stdin: checkConf}), libmini.CodeIncompatibleVersion)
		}

		// GC and STATUS.
		mustOK(t, call{cmd: "ADD", id: "c2", stdin: conf})
		gcConf := netConf(ver, "miniipam", dataDir, dualStack, `"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]`)
		if ver == "1.1.0" {
			mustOK(t, call{cmd: "STATUS", stdin: conf})
			mustOK(t, call{cmd: "GC", stdin: gcConf})
			files := storeFiles(t, dir)
			if _, ok := files["10.20.0.3"]; ok {
				t.Error("GC kept c2's reservation")
			}
			if _, ok := files["10.20.0.2"]; !ok {
				t.Error("GC released c1's reservation")
			}
		} else {
			wantError(t, "STATUS before 1.1.0", runPlugin(t, call{cmd: "STATUS", stdin: conf}), libmini.CodeIncompatibleVersion)
			wantError(t, "GC before 1.1.0", runPlugin(t, call{cmd: "GC", stdin: gcConf}), libmini.CodeIncompatibleVersion)
			mustOK(t, call{cmd: "DEL", id: "c2", stdin: conf})
		}

		// DEL, twice; then nothing of c1 is left.
		for range 2 {
			if o := mustOK(t, call{cmd: "DEL", id: "c1", stdin: conf}); len(o.stdout) != 0 {
				t.Errorf("DEL printed %s", o.stdout)
			}
		}
		for name, content := range storeFiles(t, dir) {
			if strings.HasPrefix(content, "c1") || strings.HasPrefix(content, "c2") {
				t.Errorf("%s still reserved after DEL/GC: %q", name, content)
			}
		}
	})
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	if v4 := ip.To4(); v4 != nil {
		n.IP = v4
	}
	return *n
}

// checkResult compares an ADD's stdout with want converted to ver, and
// checks the version's shape by hand too.
func checkResult(t *testing.T, ver string, stdout []byte, want *current.Result) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("ADD output is not JSON: %v\n%s", err, stdout)
	}
	if got["cniVersion"] != ver {
		t.Errorf("result cniVersion %v, want %s", got["cniVersion"], ver)
	}
	conv, err := want.GetAsVersion(ver)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(conv)
	if err != nil {
		t.Fatal(err)
	}
	var wantMap map[string]any
	if err := json.Unmarshal(wantJSON, &wantMap); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantMap, got); d != "" {
		t.Errorf("ADD result in %s (-want +got):\n%s", ver, d)
	}
	old, _ := cniversion.GreaterThanOrEqualTo(ver, "0.3.0")
	one, _ := cniversion.GreaterThanOrEqualTo(ver, "1.0.0")
	switch {
	case !old:
		if got["ip4"] == nil || got["ip6"] == nil || got["ips"] != nil {
			t.Errorf("%s result should have ip4 and ip6: %s", ver, stdout)
		}
	default:
		ips, _ := got["ips"].([]any)
		if len(ips) != 2 {
			t.Fatalf("%s result should have two ips: %s", ver, stdout)
		}
		_, hasVersion := ips[0].(map[string]any)["version"]
		if hasVersion == one {
			t.Errorf("%s result: per-address version present=%v: %s", ver, hasVersion, stdout)
		}
	}
	if !strings.Contains(string(stdout), "10.20.0.2") || !strings.Contains(string(stdout), "fd20::2") {
		t.Errorf("%s result lacks the addresses: %s", ver, stdout)
	}
}

// TestStaticRequestProcess asks for a static address through CNI_ARGS (with
// the keys containerd adds) and through runtimeConfig.ips.
func TestStaticRequestProcess(t *testing.T) {
	dataDir := t.TempDir()
	conf := netConf("1.0.0", "miniipam", dataDir, dualStack)
	args := "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IP=10.20.0.77"
	o := mustOK(t, call{cmd: "ADD", id: "c1", args: args, stdin: conf})
	if a := addrOf(t, o.stdout); a != "10.20.0.77" {
		t.Errorf("CNI_ARGS IP=10.20.0.77 gave %s", a)
	}
	mustOK(t, call{cmd: "ADD", id: "c1", args: args, stdin: conf}) // same owner: success
	wantError(t, "another container asking for 10.20.0.77", runPlugin(t, call{cmd: "ADD", id: "c2", args: args, stdin: conf}), libmini.CodeAddressTaken)
	rc := netConf("1.0.0", "miniipam", dataDir, dualStack, `"runtimeConfig":{"ips":["fd20::77/120"]}`)
	o = mustOK(t, call{cmd: "ADD", id: "c3", stdin: rc})
	if !strings.Contains(string(o.stdout), `"fd20::77/120"`) {
		t.Errorf("runtimeConfig.ips fd20::77 gave %s", o.stdout)
	}
}
