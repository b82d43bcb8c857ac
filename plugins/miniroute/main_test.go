package main

import (
	"bytes"
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

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// These tests run the miniroute binary as a runtime does, always inside
// network namespaces they create: the binary and the iptables it runs
// inherit the namespace of the thread ns.Do locked.

var binDir string // the built miniroute, for CNI_PATH

func TestMain(m *testing.M) {
	minitest.MainWithPlugins(m, &binDir, "miniroute")
}

// call is one invocation of the binary.
type call struct {
	cmd   string
	stdin []byte
	netns string   // CNI_NETNS; "" for none
	env   []string // extra variables (PATH=…)
}

func (c call) command() *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "miniroute"))
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+c.cmd, "CNI_CONTAINERID=ctr-"+c.cmd, "CNI_IFNAME=eth0",
		"CNI_PATH="+binDir, "CNI_NETNS="+c.netns)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdin = bytes.NewReader(c.stdin)
	return cmd
}

// result is what the binary answered: stdout, and the CNI error it printed.
type result struct {
	stdout []byte
	err    *types.Error
	stderr string
}

func finish(t testing.TB, cmd *exec.Cmd, stdout, stderr *bytes.Buffer, runErr error) result {
	t.Helper()
	r := result{stdout: stdout.Bytes(), stderr: stderr.String()}
	if runErr != nil {
		r.err = &types.Error{}
		if err := json.Unmarshal(r.stdout, r.err); err != nil || r.err.Code == 0 {
			t.Fatalf("miniroute %v failed without a CNI error: %v\nstdout: %s\nstderr: %s", cmd.Env[len(cmd.Env)-5:], runErr, r.stdout, r.stderr)
		}
	}
	return r
}

// forgetStamps removes, when t ends and before n goes, the stamps and the
// iptables mode the binary wrote for n (in stamps.DefaultDir: the binary's
// own place).
func forgetStamps(t testing.TB, n ns.NetNS) {
	t.Cleanup(func() { _ = n.Do(func(ns.NetNS) error { return forgetState() }) })
}

// forgetState removes what the binary keeps for the calling thread's
// namespace: the stamps and the cached iptables mode.
func forgetState() error {
	return errors.Join(stamps.Default().Forget(), backend.ModeCache{Dir: stamps.DefaultDir}.Forget())
}

// run runs c inside n and waits for it.
func run(t testing.TB, n ns.NetNS, c call) result {
	t.Helper()
	forgetStamps(t, n)
	var r result
	err := n.Do(func(ns.NetNS) error {
		cmd := c.command()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		r = finish(t, cmd, &stdout, &stderr, cmd.Run())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSucceed(t testing.TB, r result, what string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v (code %d)\nstderr: %s", what, r.err, r.err.Code, r.stderr)
	}
}

// podResult is a typical interface plugin result: dual-stack unless v4only.
func podResult(v4only bool) *current.Result {
	idx := 1
	r := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "veth1234", Mac: "aa:bb:cc:dd:ee:01"}, {Name: "eth0", Mac: "aa:bb:cc:dd:ee:02", Sandbox: "/var/run/netns/pod"}},
		IPs: []*current.IPConfig{{Interface: &idx, Address: net.IPNet{IP: net.IPv4(172, 18, 0, 5).To4(), Mask: net.CIDRMask(24, 32)},
			Gateway: net.IPv4(172, 18, 0, 1).To4()}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: net.IPv4(172, 18, 0, 1).To4()}},
		DNS:    types.DNS{Nameservers: []string{"10.96.0.10"}, Search: []string{"svc.cluster.local"}},
	}
	if !v4only {
		r.IPs = append(r.IPs, &current.IPConfig{Interface: &idx, Address: net.IPNet{IP: net.ParseIP("fd00:172:18::5"), Mask: net.CIDRMask(64, 128)},
			Gateway: net.ParseIP("fd00:172:18::1")})
	}
	return r
}

const dualStack = `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/56"]`

// conf is a miniroute config in version ver with extra keys and, when res is
// not nil, res as prevResult in that version (as libcni converts it). It
// also returns that prevResult's JSON.
func conf(t testing.TB, ver, extra string, res *current.Result) (stdin, prev []byte) {
	t.Helper()
	s := fmt.Sprintf(`{"cniVersion":%q,"name":"minicni","type":"miniroute"%s`, ver, extra)
	if res != nil {
		r, err := res.GetAsVersion(ver)
		if err != nil {
			t.Fatal(err)
		}
		if prev, err = json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		s += `,"prevResult":` + string(prev)
	}
	return []byte(s + "}"), prev
}

// saved is iptables-save of both families in n, without comments and
// counters: what the test compares.
func saved(t testing.TB, n ns.NetNS) string {
	t.Helper()
	var out strings.Builder
	err := n.Do(func(ns.NetNS) error {
		for _, c := range []string{"iptables-save", "ip6tables-save"} {
			b, err := exec.Command(c).Output()
			if err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					fmt.Fprintf(&out, "%s %s\n", c, l)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// TestEveryVersion: in every CNI version, ADD prints the prevResult it was
// given, CHECK (0.4.0+) passes, STATUS and GC (1.1.0) succeed, DEL succeeds;
// ADD without a prevResult is CodeNoPrevResult.
func TestEveryVersion(t *testing.T) {
	minitest.ForEachVersion(t, func(t *testing.T, ver string) {
		node, pod := minitest.NewNS(t), minitest.NewNS(t)
		stdin, prev := conf(t, ver, dualStack, podResult(false))
		r := run(t, node, call{cmd: "ADD", stdin: stdin, netns: pod.Path()})
		mustSucceed(t, r, "ADD")
		if d := cmp.Diff(jsonValue(t, prev), jsonValue(t, r.stdout)); d != "" {
			t.Errorf("ADD output differs from prevResult (-prev +out):\n%s", d)
		}
		if !strings.Contains(saved(t, node), "ip6tables-save -A MINICNI-POSTROUTING -s fd00:172:18::/64") {
			t.Errorf("no IPv6 masquerade rule after ADD:\n%s", saved(t, node))
		}
		if ver >= "0.4.0" {
			mustSucceed(t, run(t, node, call{cmd: "CHECK", stdin: stdin, netns: pod.Path()}), "CHECK")
		}
		if ver == "1.1.0" {
			mustSucceed(t, run(t, node, call{cmd: "STATUS", stdin: stdin}), "STATUS")
			gc := []byte(strings.Replace(string(stdin), `"name"`, `"cni.dev/valid-attachments":[],"name"`, 1))
			mustSucceed(t, run(t, node, call{cmd: "GC", stdin: gc}), "GC")
		}
		if r := run(t, node, call{cmd: "DEL", stdin: stdin, netns: pod.Path()}); r.err != nil || len(r.stdout) != 0 {
			t.Errorf("DEL: %v, stdout %q", r.err, r.stdout)
		}
		noPrev, _ := conf(t, ver, dualStack, nil)
		r = run(t, node, call{cmd: "ADD", stdin: noPrev, netns: pod.Path()})
		if r.err == nil || r.err.Code != libmini.CodeNoPrevResult {
			t.Errorf("ADD without prevResult: %v, want code %d", r.err, libmini.CodeNoPrevResult)
		}
	})
}

// TestDelAlwaysSucceeds: nothing DEL is given, or finds, makes it fail.
func TestDelAlwaysSucceeds(t *testing.T) {
	node := minitest.NewNS(t)
	withPrev, _ := conf(t, "1.0.0", dualStack, podResult(false))
	noPrev, _ := conf(t, "1.0.0", dualStack, nil)
	badConf, _ := conf(t, "1.0.0", `,"clusterCIDR":["nonsense"],"routes":[{"dst":"x"}]`, podResult(true))
	tests := []struct {
		name  string
		stdin []byte
		netns string
	}{
		{"rules never created", withPrev, "/var/run/netns/gone"},
		{"no prevResult", noPrev, "/var/run/netns/gone"},
		{"no netns", withPrev, ""},
		{"invalid config", badConf, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 {
				if r := run(t, node, call{cmd: "DEL", stdin: tt.stdin, netns: tt.netns}); r.err != nil || len(r.stdout) != 0 {
					t.Errorf("DEL: %v, stdout %q", r.err, r.stdout)
				}
			}
		})
	}
	if s := saved(t, node); strings.Contains(s, "MINICNI") {
		t.Errorf("DEL created rules:\n%s", s)
	}
}

// TestConcurrentProcesses: 30 ADDs at once in one namespace all succeed,
// leave exactly the rules one ADD leaves, and exactly one of them writes
// each family (the others find the rules in place, before or under the
// lock).
func TestConcurrentProcesses(t *testing.T) {
	const n = 30
	node, ref := minitest.NewNS(t), minitest.NewNS(t)
	logFile := filepath.Join(t.TempDir(), "miniroute.log")
	stdin, _ := conf(t, "1.0.0", dualStack+`,"logFile":`+fmt.Sprintf("%q", logFile), podResult(false))
	mustSucceed(t, run(t, ref, call{cmd: "ADD", stdin: stdin, netns: "/var/run/netns/none"}), "reference ADD")
	want := saved(t, ref)
	if err := os.Remove(logFile); err != nil {
		t.Fatal(err)
	}

	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	procs := make([]*proc, n)
	start := time.Now()
	forgetStamps(t, node)
	err := node.Do(func(ns.NetNS) error {
		for i := range procs {
			p := &proc{cmd: call{cmd: "ADD", stdin: stdin, netns: "/var/run/netns/none"}.command()}
			p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
			if err := p.cmd.Start(); err != nil {
				return err
			}
			procs[i] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range procs {
		if r := finish(t, p.cmd, &p.stdout, &p.stderr, p.cmd.Wait()); r.err != nil {
			t.Errorf("ADD #%d: %v\n%s", i, r.err, r.stderr)
		}
	}
	t.Logf("%d concurrent ADDs took %v", n, time.Since(start))
	if got := saved(t, node); got != want {
		t.Errorf("rules after %d concurrent ADDs differ from one ADD's:\n%s", n, cmp.Diff(want, got))
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"IPv4", "IPv6"} {
		c := 0
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, `msg="ensured iptables rules"`) && strings.HasSuffix(l, " family="+fam) {
				c++
			}
		}
		if c != 1 {
			t.Errorf("%d processes wrote %s rules, want 1; log:\n%s", c, fam, log)
		}
	}
}

// shim puts logging wrappers for the iptables binaries first in PATH: each
// exec appends its name to a log. It returns the PATH setting and a function
// that returns the calls since the last one.
func shim(t *testing.T, fail map[string]string) (path string, calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	for _, name := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		real, err := exec.LookPath(name)
		if err != nil {
			minitest.Skip(t, "%s not installed", name)
		}
		body := fmt.Sprintf("echo %s >> %s\nexec %s \"$@\"\n", name, log, real)
		if msg, ok := fail[name]; ok {
			body = fmt.Sprintf("echo %q >&2\nexit 1\n", msg)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH"), func() []string {
		b, _ := os.ReadFile(log)
		_ = os.Remove(log)
		return strings.Fields(string(b))
	}
}

// TestFastPathExecCount counts the iptables processes an ADD starts when the
// rules are already in place (the README quotes it):
// `go test -run TestFastPathExecCount -v ./plugins/miniroute`.
func TestFastPathExecCount(t *testing.T) {
	for _, tt := range []struct {
		name        string
		extra       string
		v4only      bool
		first, next []string
	}{
		{"IPv4", `,"clusterCIDR":"172.18.0.0/16"`, true,
			[]string{"iptables-save", "iptables-save", "iptables-restore", "iptables-save"}, []string{"iptables-save"}},
		{"dual-stack", dualStack, false,
			[]string{"iptables-save", "iptables-save", "iptables-restore", "iptables-save",
				"ip6tables-save", "ip6tables-save", "ip6tables-restore", "ip6tables-save"}, []string{"iptables-save", "ip6tables-save"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node := minitest.NewNS(t)
			path, calls := shim(t, nil)
			stdin, _ := conf(t, "1.0.0", tt.extra, podResult(tt.v4only))
			c := call{cmd: "ADD", stdin: stdin, netns: "/var/run/netns/none", env: []string{path}}
			mustSucceed(t, run(t, node, c), "first ADD")
			if got := calls(); !slices.Equal(got, tt.first) {
				t.Errorf("first ADD ran %q, want %q", got, tt.first)
			}
			const adds = 10
			var all []string
			for range adds {
				mustSucceed(t, run(t, node, c), "ADD")
				got := calls()
				if !slices.Equal(got, tt.next) {
					t.Errorf("ADD with the rules in place ran %q, want %q", got, tt.next)
				}
				all = append(all, got...)
			}
			t.Logf("%s: first ADD %d iptables execs, then %.1f per ADD (%v)", tt.name, len(tt.first), float64(len(all))/adds, tt.next)
		})
	}
}

// TestStatusWhenIPTablesFails: STATUS is CodeNotAvailable with iptables'
// own words when the kernel refuses (simulated by a failing iptables-save).
func TestStatusWhenIPTablesFails(t *testing.T) {
	node := minitest.NewNS(t)
	const why = "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Protocol not supported"
	path, _ := shim(t, map[string]string{"iptables-save": why})
	stdin, _ := conf(t, "1.1.0", `,"clusterCIDR":"172.18.0.0/16"`, nil)
	r := run(t, node, call{cmd: "STATUS", stdin: stdin, env: []string{path}})
	if r.err == nil || r.err.Code != libmini.CodeNotAvailable || !strings.Contains(r.err.Msg, "Protocol not supported") {
		t.Errorf("STATUS = %v, want code %d with the reason", r.err, libmini.CodeNotAvailable)
	}
	stdin, _ = conf(t, "1.1.0", `,"clusterCIDR":"172.18.0.0/16"`, podResult(true))
	r = run(t, node, call{cmd: "ADD", stdin: stdin, netns: "/var/run/netns/none", env: []string{path}})
	if r.err == nil || r.err.Code != libmini.CodeFirewall || !strings.Contains(r.err.Msg, "Protocol not supported") {
		t.Errorf("ADD = %v, want code %d with the reason", r.err, libmini.CodeFirewall)
	}
}
