package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// TestStatusBinary walks one node through the states STATUS reports, with
// the built binary and a CNI_PATH of this test's own: healthy; the IPAM
// binary removed (50 naming it, CNI_PATH in details; for miniipam too,
// which minibridge runs in-process) and back; the store read-only (50); a
// pod attached, then the bridge down (51) and up, then its gateway address
// removed (51) and put back.
func TestStatusBinary(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.39.0.0/24")
			conf := n.conf(t, "1.1.0", nil)
			cniPath := t.TempDir()
			bin := filepath.Join(cniPath, ipam)
			install := func() {
				t.Helper()
				if err := os.Link(filepath.Join(binDir, ipam), bin); err != nil {
					t.Fatal(err)
				}
			}
			install()
			env := []string{"CNI_PATH=" + cniPath}
			status := func() *types.Error {
				t.Helper()
				_, cniErr, err := execIn(host, call{cmd: "STATUS", stdin: conf, env: env})
				if err != nil {
					t.Fatal(err)
				}
				return cniErr
			}
			want := func(what string, e *types.Error, code uint, mention ...string) {
				t.Helper()
				if code == 0 {
					if e != nil {
						t.Fatalf("%s: STATUS = code %d: %s (%s)", what, e.Code, e.Msg, e.Details)
					}
					return
				}
				if e == nil || e.Code != code {
					t.Fatalf("%s: STATUS = %v, want code %d", what, e, code)
				}
				for _, m := range mention {
					if !strings.Contains(e.Msg, m) {
						t.Errorf("%s: msg %q does not name %q", what, e.Msg, m)
					}
				}
				if e.Details == "" {
					t.Errorf("%s: no details in %v", what, e)
				}
			}

			want("healthy", status(), 0)
			if err := os.Remove(bin); err != nil {
				t.Fatal(err)
			}
			e := status()
			want("IPAM binary removed", e, libmini.CodeNotAvailable, ipam, "CNI_PATH")
			if e != nil && !strings.Contains(e.Details, cniPath) {
				t.Errorf("details %q do not carry CNI_PATH %s", e.Details, cniPath)
			}
			install()
			want("IPAM binary back", status(), 0)

			t.Run("store read-only", func(t *testing.T) {
				minitest.ReadOnly(t, n.dataDir)
				want("store read-only", status(), libmini.CodeNotAvailable, "cannot be written", "read-only file system")
			})
			want("store writable again", status(), 0)

			p := newPod(t)
			add := p.call("ADD", conf)
			add.env = env
			run(t, host, add)
			want("a pod attached", status(), 0)

			ipCmd(t, host, "link", "set", n.br, "down")
			want("bridge down", status(), libmini.CodeLimitedAvailable, n.br, "is down", "1 port")
			ipCmd(t, host, "link", "set", n.br, "up")
			want("bridge up again", status(), 0)

			ipCmd(t, host, "addr", "del", "10.39.0.1/24", "dev", n.br)
			want("gateway removed", status(), libmini.CodeLimitedAvailable, n.br, "lost its gateway address 10.39.0.1/24")
			ipCmd(t, host, "addr", "add", "10.39.0.1/24", "dev", n.br)
			want("gateway back", status(), 0)

			del := p.call("DEL", conf)
			del.env = env
			run(t, host, del)
			expectDetached(t, host, n, p)
		})
	}
}
