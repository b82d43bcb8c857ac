package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini/minitest"
)

// saveIn runs a save tool inside n.
func saveIn(t *testing.T, n ns.NetNS, tool string) string {
	t.Helper()
	var out []byte
	minitest.Do(t, n, func() error {
		var err error
		out, err = exec.Command(tool).CombinedOutput()
		return err
	})
	return string(out)
}

// TestBinaryFollowsKubeletMode: the built binary, in a namespace whose
// kubelet (stood in for by its hint chain) uses the other mode than the
// plain iptables, writes its rules in the kubelet's mode, and CHECK and
// STATUS read them there; iptablesMode forces the mode back.
func TestBinaryFollowsKubeletMode(t *testing.T) {
	for _, tt := range []struct {
		name, hint, extra string
		in, notIn         string // the save tools that must and must not show the chains
	}{
		{"hint in legacy", "iptables-legacy", "", "legacy", "nft"},
		{"hint in nf_tables", "iptables-nft", "", "nft", "legacy"},
		{"hint in legacy, nf_tables forced", "iptables-legacy", `,"iptablesMode":"nf_tables"`, "nft", "legacy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node := minitest.NewNS(t)
			minitest.Do(t, node, func() error {
				return exec.Command(tt.hint, "-t", "mangle", "-N", "KUBE-IPTABLES-HINT").Run()
			})
			for _, cmd := range []string{"ADD", "CHECK", "STATUS"} {
				stdin, _ := conf(t, "1.1.0", dualStack+tt.extra, podResult(false))
				c := call{cmd: cmd, stdin: stdin}
				if cmd != "STATUS" {
					c.netns = "/var/run/netns/none"
				}
				mustSucceed(t, run(t, node, c), cmd)
			}
			for _, family := range []string{"iptables", "ip6tables"} {
				if in := saveIn(t, node, family+"-"+tt.in+"-save"); !strings.Contains(in, "-A MINICNI-POSTROUTING") {
					t.Errorf("%s-%s-save does not show miniroute's rules:\n%s", family, tt.in, in)
				}
				if out := saveIn(t, node, family+"-"+tt.notIn+"-save"); strings.Contains(out, "MINICNI") {
					t.Errorf("%s-%s-save shows miniroute's rules:\n%s", family, tt.notIn, out)
				}
			}
		})
	}
}
