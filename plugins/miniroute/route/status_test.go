package route

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// TestStatusNamesMissingTool: with the real backend searching only a
// directory holding some of the iptables binaries (stand-ins that succeed
// with an empty ruleset: no kernel is touched), STATUS answers 50 naming the
// first missing tool a family needs, the ip6tables pair only with an rules.IPv6
// clusterCIDR, and passes once every needed tool is there.
func TestStatusNamesMissingTool(t *testing.T) {
	const dual = `,"clusterCIDR":["172.18.0.0/16","fd00::/56"]`
	tests := []struct {
		name    string
		tools   []string
		extra   string
		missing string // "" when STATUS passes
	}{
		{"nothing installed", nil, ``, "iptables-restore"},
		{"only iptables-restore", []string{"iptables-restore"}, ``, "iptables-save"},
		{"IPv4 pair, rules.IPv4 cluster", []string{"iptables-restore", "iptables-save"}, `,"clusterCIDR":"172.18.0.0/16"`, ""},
		{"IPv4 pair, no clusterCIDR", []string{"iptables-restore", "iptables-save"}, ``, ""},
		{"IPv4 pair, dual-stack cluster", []string{"iptables-restore", "iptables-save"}, dual, "ip6tables-restore"},
		{"IPv6 save missing", []string{"iptables-restore", "iptables-save", "ip6tables-restore"}, dual, "ip6tables-save"},
		{"IPv6 pair only, rules.IPv6 cluster", []string{"ip6tables-restore", "ip6tables-save"}, `,"clusterCIDR":"fd00::/56"`, ""},
		{"both pairs, dual-stack cluster", []string{"iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"}, dual, ""},
		{"nothing installed, nothing needed", nil, dual + `,"forward":false,"masquerade":false`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, tool := range tt.tools {
				if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\ncat >/dev/null\nexit 0\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			node := Node{IPTables: func(f rules.Family) Backend { return backend.Exec{Family: f, Dirs: []string{dir}} }}
			err := Status(context.Background(), loadConf(t, stdin(t, "1.1.0", tt.extra, nil)), node)
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("STATUS = %v", err)
				}
				return
			}
			if cniCode(t, err) != libmini.CodeNotAvailable {
				t.Fatalf("STATUS = %v, want code %d", err, libmini.CodeNotAvailable)
			}
			e := err.(*types.Error)
			if !strings.HasPrefix(e.Msg, tt.missing+" is not installed") || !strings.Contains(e.Msg, dir) {
				t.Errorf("msg %q does not name %s and where it was looked for", e.Msg, tt.missing)
			}
			if !strings.Contains(e.Details, tt.missing+" not found in "+dir) {
				t.Errorf("details %q do not carry the underlying error", e.Details)
			}
		})
	}
}
