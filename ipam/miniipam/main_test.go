package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini/minitest"
)

// binDir holds miniipam, host-local (the reference, built at go.mod's
// version) and miniipam-crash (miniipam built with its crash points).
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "miniipam-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := minitest.BuildPlugins(dir, "miniipam", "host-local"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-trimpath", "-tags", "crashpoints", "-o", filepath.Join(dir, "miniipam-crash"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building miniipam-crash: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		return m.Run()
	}())
}

// noNetns is a CNI_NETNS that does not exist: an IPAM plugin never enters
// the netns, and PluginMain's own-netns check ignores a path it cannot open.
const noNetns = "/var/run/netns/miniipam-test-none"

// call is one plugin invocation.
type call struct {
	bin     string // plugin binary name in binDir (default miniipam)
	cmd     string // CNI_COMMAND
	id      string // CNI_CONTAINERID
	ifname  string // CNI_IFNAME (default eth0)
	args    string // CNI_ARGS
	stdin   string
	env     map[string]string // overrides; an empty value unsets
	extraEV []string          // extra environment (e.g. MINICNI_CRASHPOINT)
}

func (c call) command() *exec.Cmd {
	bin := c.bin
	if bin == "" {
		bin = "miniipam"
	}
	if c.ifname == "" {
		c.ifname = "eth0"
	}
	vars := map[string]string{
		"CNI_COMMAND": c.cmd, "CNI_CONTAINERID": c.id, "CNI_IFNAME": c.ifname,
		"CNI_NETNS": noNetns, "CNI_PATH": binDir, "CNI_ARGS": c.args,
	}
	for k, v := range c.env {
		vars[k] = v
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.Command(filepath.Join(binDir, bin))
	cmd.Env = append(env, c.extraEV...)
	cmd.Stdin = strings.NewReader(c.stdin)
	return cmd
}

// outcome is what a plugin run produced.
type outcome struct {
	stdout, stderr []byte
	exit           int
}

// cniError decodes stdout as a CNI error (nil when it is not one).
func (o outcome) cniError() *types.Error {
	var e types.Error
	if err := json.Unmarshal(o.stdout, &e); err != nil || e.Code == 0 {
		return nil
	}
	return &e
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d, stdout %s, stderr %s", o.exit, o.stdout, o.stderr)
}

func runPlugin(t *testing.T, c call) outcome {
	t.Helper()
	cmd := c.command()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := outcome{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", cmd.Path, err)
	}
	return o
}

// mustOK runs c and fails the test unless it exits 0.
func mustOK(t *testing.T, c call) outcome {
	t.Helper()
	o := runPlugin(t, c)
	if o.exit != 0 {
		t.Fatalf("%s %s %s: %s", c.bin, c.cmd, c.id, o)
	}
	return o
}

// wantError checks that o is a CNI error with code on stdout and exit 1.
func wantError(t *testing.T, what string, o outcome, code uint) {
	t.Helper()
	e := o.cniError()
	if o.exit != 1 || e == nil || e.Code != code {
		t.Fatalf("%s: %s; want exit 1 and CNI error %d", what, o, code)
	}
}

// netConf returns a network config for miniipam (or host-local) with the
// given ipam body (without type and dataDir) and extra top-level keys.
func netConf(version, typ, dataDir, ipam string, extra ...string) string {
	ipam = strings.TrimSpace(ipam)
	ipam = fmt.Sprintf(`{"type":%q,"dataDir":%q,`, typ, dataDir) + strings.TrimPrefix(ipam, "{")
	s := fmt.Sprintf(`{"cniVersion":%q,"name":"net","type":"minibridge","ipam":%s`, version, ipam)
	for _, x := range extra {
		s += "," + x
	}
	return s + "}"
}

// storeFiles maps every file of a network's directory to its content.
func storeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

// addrOf returns the first address (without prefix) of an ADD's stdout for
// versions 0.3.0 and later.
func addrOf(t *testing.T, stdout []byte) string {
	t.Helper()
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(stdout, &r); err != nil || len(r.IPs) == 0 {
		t.Fatalf("no address in %s (%v)", stdout, err)
	}
	return strings.Split(r.IPs[0].Address, "/")[0]
}
