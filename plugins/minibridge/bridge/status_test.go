package bridge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// statusIPAMs are fake IPAM plugins whose STATUS fails: one with its own
// 50, one with another code.
var statusIPAMs = map[string]string{
	"ipam-down":   `{"cniVersion":"1.1.0","code":50,"msg":"pool daemon unreachable","details":"dial unix /run/pool.sock: connection refused"}`,
	"ipam-broken": `{"cniVersion":"1.1.0","code":7,"msg":"bad ranges","details":"ranges[0] is empty"}`,
}

// statusBinDir makes this test's CNI_PATH holding bins: "host-local" (the
// reference, built by TestMain), "miniipam" (a stand-in file: minibridge
// runs miniipam in-process and only looks for the binary), a name of
// statusIPAMs, or "miniipam:0644" for a miniipam that is not executable.
func statusBinDir(t *testing.T, bins ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range bins {
		name, mode, _ := strings.Cut(b, ":")
		perm := os.FileMode(0o755)
		if mode == "0644" {
			perm = 0o644
		}
		var err error
		switch {
		case name == "host-local":
			err = os.Link(filepath.Join(cniPath, name), filepath.Join(dir, name))
		case statusIPAMs[name] != "":
			script := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = STATUS ] || exit 0\necho '%s'\nexit 1\n", statusIPAMs[name])
			err = os.WriteFile(filepath.Join(dir, name), []byte(script), perm)
		default:
			err = os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 0\n"), perm)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestStatus drives Status in a node netns for each way it can fail and
// the healthy cases: the code, the causes msg names, and that STATUS
// changes nothing on the node.
func TestStatus(t *testing.T) {
	const subnet, gw = "10.23.0.0/24", "10.23.0.1/24"
	tests := []struct {
		name    string
		ipam    string   // ipam.type (default miniipam)
		subnet  string   // default subnet
		extra   string   // extra top-level keys, each followed by a comma
		bins    []string // CNI_PATH's content, see statusBinDir
		pod     bool     // attach a pod first (in-process miniipam)
		prepare func(t *testing.T, f *fixture)
		code    uint // 0: healthy
		mention []string
	}{
		{name: "healthy, no bridge yet", bins: []string{"miniipam"}},
		{name: "healthy, pod attached", bins: []string{"miniipam"}, pod: true},
		{name: "healthy, host-local", ipam: "host-local", bins: []string{"host-local"}},
		{name: "healthy, isGateway off, pod attached", extra: `"isGateway":false,`, bins: []string{"miniipam"}, pod: true},
		{name: "bridge down, no pod", bins: []string{"miniipam"}, prepare: func(t *testing.T, f *fixture) {
			ipCmd(t, f.host, "link", "add", f.bridge, "type", "bridge")
		}},
		{name: "bridge up without gateway, no pod", bins: []string{"miniipam"}, prepare: func(t *testing.T, f *fixture) {
			ipCmd(t, f.host, "link", "add", f.bridge, "type", "bridge")
			ipCmd(t, f.host, "link", "set", f.bridge, "up")
		}},
		{name: "forceAddress replaces a foreign address", extra: `"forceAddress":true,`, bins: []string{"miniipam"},
			prepare: func(t *testing.T, f *fixture) {
				ipCmd(t, f.host, "link", "add", f.bridge, "type", "bridge")
				ipCmd(t, f.host, "addr", "add", "10.99.7.1/24", "dev", f.bridge)
			}},

		{name: "miniipam binary missing (in-process)", code: libmini.CodeNotAvailable,
			mention: []string{"IPAM plugin miniipam", "CNI_PATH"}},
		{name: "host-local binary missing", ipam: "host-local", code: libmini.CodeNotAvailable,
			mention: []string{"IPAM plugin host-local", "CNI_PATH"}},
		{name: "IPAM binary not executable", bins: []string{"miniipam:0644"}, code: libmini.CodeNotAvailable,
			mention: []string{"miniipam", "not executable"}},
		{name: "in-process store read-only", bins: []string{"miniipam"}, code: libmini.CodeNotAvailable,
			prepare: func(t *testing.T, f *fixture) { minitest.ReadOnly(t, f.dataDir) },
			mention: []string{"IPAM miniipam", "cannot be written", "read-only file system"}},
		{name: "in-process pool full", subnet: "10.23.0.0/30", bins: []string{"miniipam"}, pod: true, code: libmini.CodeNotAvailable,
			mention: []string{"IPAM miniipam", "no free address"}},
		{name: "host-local store not writable", ipam: "host-local", bins: []string{"host-local"}, code: libmini.CodeNotAvailable,
			prepare: func(t *testing.T, f *fixture) { minitest.DenyWrites(t, f.dataDir) },
			mention: []string{"IPAM store", "host-local", "cannot be written"}},
		{name: "delegated IPAM answers 50", ipam: "ipam-down", bins: []string{"ipam-down"}, code: libmini.CodeNotAvailable,
			mention: []string{"ipam-down", "pool daemon unreachable", "connection refused"}},
		{name: "delegated IPAM fails otherwise", ipam: "ipam-broken", bins: []string{"ipam-broken"}, code: libmini.CodeNotAvailable,
			mention: []string{"ipam-broken", "failed its STATUS", "bad ranges", "code 7"}},
		{name: "bridge name is a veth", bins: []string{"miniipam"}, code: libmini.CodeNotAvailable,
			prepare: func(t *testing.T, f *fixture) {
				ipCmd(t, f.host, "link", "add", f.bridge, "type", "veth", "peer", "name", f.bridge+"p")
			},
			mention: []string{"not a bridge"}},
		{name: "bridge holds a foreign address", bins: []string{"miniipam"}, code: libmini.CodeNotAvailable,
			prepare: func(t *testing.T, f *fixture) {
				ipCmd(t, f.host, "link", "add", f.bridge, "type", "bridge")
				ipCmd(t, f.host, "addr", "add", "10.99.7.1/24", "dev", f.bridge)
			},
			mention: []string{"10.99.7.1/24", gw, "forceAddress"}},

		{name: "bridge down with a pod", bins: []string{"miniipam"}, pod: true, code: libmini.CodeLimitedAvailable,
			prepare: func(t *testing.T, f *fixture) { ipCmd(t, f.host, "link", "set", f.bridge, "down") },
			mention: []string{"is down", "1 port"}},
		{name: "gateway lost with a pod", bins: []string{"miniipam"}, pod: true, code: libmini.CodeLimitedAvailable,
			prepare: func(t *testing.T, f *fixture) { ipCmd(t, f.host, "addr", "del", gw, "dev", f.bridge) },
			mention: []string{"lost its gateway address " + gw, "1 port"}},
		{name: "IPAM missing and bridge down with a pod", pod: true, code: libmini.CodeLimitedAvailable,
			prepare: func(t *testing.T, f *fixture) { ipCmd(t, f.host, "link", "set", f.bridge, "down") },
			mention: []string{"IPAM plugin miniipam", "is down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.ipam == "" {
				tt.ipam = InProcessIPAM
			}
			if tt.subnet == "" {
				tt.subnet = subnet
			}
			stdin := []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"type":"minibridge","bridge":%q,%s"ipam":{"type":%q,"dataDir":%q,"ranges":[[{"subnet":%q}]]}}`,
				f.net, f.bridge, tt.extra, tt.ipam, f.dataDir, tt.subnet))
			conf, err := LoadConf(stdin)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.pod {
				pod := minitest.NewNS(t)
				a := args(t, "ctr-status", pod.Path(), "eth0", stdin)
				minitest.Do(t, f.host, func() error { _, err := Add(ctx, conf, a, Node{}); return err })
				t.Cleanup(func() { _ = f.host.Do(func(ns.NetNS) error { return Del(ctx, conf, a, Node{}) }) })
			}
			if tt.prepare != nil {
				tt.prepare(t, f)
			}
			dir := statusBinDir(t, tt.bins...)
			a := args(t, "", "", "", stdin)
			t.Setenv("CNI_PATH", dir)
			a.Path = dir

			links := minitest.LinkNames(t, f.host)
			var addrs []string
			if strings.Contains(strings.Join(links, " "), f.bridge) {
				addrs = minitest.GlobalAddrs(t, f.host, f.bridge)
			}
			store := minitest.DirNames(t, f.dataDir)

			_ = f.host.Do(func(ns.NetNS) error { err = Status(ctx, conf, a, Node{}); return nil })
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
			} else {
				wantCode(t, err, tt.code, tt.mention...)
				t.Logf("code %d: %s", err.(*types.Error).Code, err)
				if e := err.(*types.Error); e.Details == "" {
					t.Errorf("no details in %v", e)
				}
				if strings.Contains(tt.name, "binary missing") && !strings.Contains(err.(*types.Error).Details, dir) {
					t.Errorf("details %q do not carry CNI_PATH %s", err.(*types.Error).Details, dir)
				}
			}
			if d := cmp.Diff(links, minitest.LinkNames(t, f.host)); d != "" {
				t.Errorf("Status changed the node's links (-before +after):\n%s", d)
			}
			if addrs != nil {
				if d := cmp.Diff(addrs, minitest.GlobalAddrs(t, f.host, f.bridge)); d != "" {
					t.Errorf("Status changed the bridge's addresses (-before +after):\n%s", d)
				}
			}
			if d := cmp.Diff(store, minitest.DirNames(t, f.dataDir)); d != "" {
				t.Errorf("Status changed dataDir (-before +after):\n%s", d)
			}
		})
	}
}
