package minitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
)

func TestErrorObjectProblems(t *testing.T) {
	env4 := BadInput{Code: 4, Var: "CNI_IFNAME", Mention: []string{"eth/0"}}
	tests := []struct {
		name   string
		c      BadInput
		exit   int
		stdout string
		want   string // part of a problem expected, "" for none
	}{
		{"right", env4, 1, `{"cniVersion":"1.0.0","code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}`, ""},
		{"exit 0", env4, 0, `{"cniVersion":"1.0.0","code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}`, "exit status 0"},
		{"no cniVersion", env4, 1, `{"code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}`, "keys"},
		{"no details key", BadInput{Code: 7}, 1, `{"cniVersion":"1.0.0","code":7,"msg":"bad"}`, "keys"},
		{"extra key", BadInput{Code: 7}, 1, `{"cniVersion":"1.0.0","code":7,"msg":"bad","details":"","x":1}`, "keys"},
		{"empty details for code 7", BadInput{Code: 7}, 1, `{"cniVersion":"1.0.0","code":7,"msg":"bad","details":""}`, ""},
		{"empty details for code 4", env4, 1, `{"cniVersion":"1.0.0","code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":""}`, "empty details"},
		{"other version", env4, 1, `{"cniVersion":"1.1.0","code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}`, `cniVersion "1.1.0"`},
		{"variable not named", env4, 1, `{"cniVersion":"1.0.0","code":4,"msg":"interface name eth/0 is bad","details":"x"}`, "does not name CNI_IFNAME"},
		{"other code", env4, 1, `{"cniVersion":"1.0.0","code":7,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}`, "code 7, want 4"},
		{"mention missing", env4, 1, `{"cniVersion":"1.0.0","code":4,"msg":"invalid CNI_IFNAME","details":"x"}`, `mention "eth/0"`},
		{"not JSON", env4, 1, `oops`, "not one JSON object"},
		{"two objects", env4, 1, `{"cniVersion":"1.0.0","code":4,"msg":"invalid CNI_IFNAME \"eth/0\"","details":"x"}{}`, "not one JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorObjectProblems(tt.c, "1.0.0", tt.exit, []byte(tt.stdout))
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("problems %q, want none", got)
			case tt.want != "" && !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tt.want) }):
				t.Errorf("problems %q, want one mentioning %q", got, tt.want)
			}
		})
	}
}

// TestSnapshotSeesChanges: each change a plugin could make shows in the
// snapshot, and drop hides exactly an infrastructure link and path.
func TestSnapshotSeesChanges(t *testing.T) {
	RequireRoot(t)
	changes := []struct {
		name string
		do   []string // commands run in the netns
		file string   // a file created under the data dir
	}{
		{name: "link", do: []string{"ip link add snap0 type bridge"}},
		{name: "address", do: []string{"ip addr add 10.77.0.1/24 dev lo"}},
		{name: "route", do: []string{"ip link set lo up", "ip route add 10.77.1.0/24 dev lo table 77"}},
		{name: "rule", do: []string{"ip rule add from 10.77.0.0/16 table 77"}},
		{name: "iptables", do: []string{"iptables -t nat -N SNAP"}},
		{name: "file", file: "net/10.77.0.2"},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			r := &Run{T: t, Host: NewNS(t), Pod: NewNS(t), DataDir: t.TempDir()}
			before := snapshot(t, r)
			shell(t, r.Host, c.do...)
			if c.file != "" {
				p := filepath.Join(r.DataDir, c.file)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("ctr"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if cmp.Equal(before, snapshot(t, r)) {
				t.Errorf("the snapshot did not see %v %s", c.do, c.file)
			}
		})
	}
	t.Run("infra dropped", func(t *testing.T) {
		r := &Run{T: t, Host: NewNS(t), Pod: NewNS(t), DataDir: t.TempDir()}
		before := snapshot(t, r)
		shell(t, r.Host, "ip link add infra0 type bridge", "ip addr add 10.77.2.1/24 dev infra0", "ip link set infra0 up")
		if err := os.Mkdir(filepath.Join(r.DataDir, "net"), 0o700); err != nil {
			t.Fatal(err)
		}
		after := snapshot(t, r)
		for _, s := range []*State{&before, &after} {
			s.drop("infra0")
			s.drop("net/")
		}
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("after dropping the infrastructure (-before +after):\n%s", d)
		}
	})
}

func shell(t *testing.T, n ns.NetNS, cmds ...string) {
	t.Helper()
	Do(t, n, func() error {
		for _, c := range cmds {
			if out, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", c, err, out)
			}
		}
		return nil
	})
}

// TestHarness runs the harness on a fake plugin that refuses everything
// with code 6 in the newest version, checking what it ran with.
func TestHarness(t *testing.T) {
	RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "fake")
	script := `#!/bin/sh
stdin=$(cat)
[ "$CNI_COMMAND" = ADD ] && [ -n "$CNI_CONTAINERID" ] && [ "$CNI_IFNAME" = eth0 ] && [ "$CNI_PATH" = "$(dirname "$0")" ] &&
	[ "$EXTRA" = yes ] && [ -z "$CNI_ARGS" ] && [ "$stdin" = "$WANT" ] && [ -e "$CNI_NETNS" ] || { echo "bad invocation"; exit 2; }
echo '{"cniVersion":"1.1.0","code":6,"msg":"no","details":"fake"}'
exit 1
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	good := func(r *Run) string { return `{"cniVersion":"` + r.Ver + `","name":"n"}` }
	Harness{Bin: bin, Good: good, Env: func(r *Run) map[string]string {
		return map[string]string{"EXTRA": "yes", "WANT": good(r)}
	}}.Check(t, []BadInput{{Name: "fake", Code: libmini.CodeDecode, Fallback: true}})
}
