package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minicni/minicni/plugins/miniroute/rules"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": "", "auto": "", "legacy": Legacy, "nf_tables": NFT, "nft": NFT} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Legacy", "nftables", "iptables", " legacy"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) succeeded", in)
		}
	}
}

// hint is iptables-save output with a kubelet chain in mangle.
const hint = "*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"

// rulesOut is iptables-save output with n rules.
func rulesOut(n int) string {
	s := "*filter\n:INPUT ACCEPT [0:0]\n"
	for range n {
		s += "-A INPUT -s 10.9.9.9/32 -j ACCEPT\n"
	}
	return s + "COMMIT\n"
}

// TestDecide runs Decide over stand-in save tools (scripts printing a fixed
// ruleset; the nf_tables one prints only mangle when asked for it, as
// iptables-nft-save -t mangle does): each step of the decision, a mode whose
// tools are missing, and the default told by the binary the plain
// iptables-save links to.
func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		tools   map[string]string // tool → what it prints (-t mangle: the nf_tables tools print only what has "*mangle")
		plain   string            // what iptables-save links to; "" for none
		want    Decision
		reason  string // in Reason
		wantErr bool
	}{
		{name: "hint in nf_tables", tools: map[string]string{"iptables-nft-save": hint, "iptables-legacy-save": rulesOut(9)},
			want: Decision{Mode: NFT}, reason: "KUBE-IPTABLES-HINT chain is in nf_tables (iptables-nft-save)"},
		{name: "IPv6 canary in nf_tables", tools: map[string]string{"ip6tables-nft-save": strings.ReplaceAll(hint, "IPTABLES-HINT", "KUBELET-CANARY")},
			want: Decision{Mode: NFT}, reason: "KUBE-KUBELET-CANARY chain is in nf_tables (ip6tables-nft-save)"},
		{name: "hint in legacy", tools: map[string]string{"iptables-legacy-save": hint, "iptables-nft-save": rulesOut(9)},
			want: Decision{Mode: Legacy}, reason: "KUBE-IPTABLES-HINT chain is in legacy"},
		{name: "IPv6 hint in legacy", tools: map[string]string{"ip6tables-legacy-save": hint},
			want: Decision{Mode: Legacy}, reason: "in legacy (ip6tables-legacy-save)"},
		{name: "nf_tables hint wins over legacy's", tools: map[string]string{"iptables-legacy-save": hint, "iptables-nft-save": hint},
			want: Decision{Mode: NFT}},
		{name: "more rules in legacy", tools: map[string]string{"iptables-legacy-save": rulesOut(2), "ip6tables-legacy-save": rulesOut(2), "iptables-nft-save": rulesOut(3)},
			want: Decision{Mode: Legacy}, reason: "legacy holds more rules (4 against 3 in nf_tables)"},
		{name: "more rules in nf_tables", tools: map[string]string{"iptables-legacy-save": rulesOut(1), "ip6tables-nft-save": rulesOut(2)},
			want: Decision{Mode: NFT}, reason: "nf_tables holds more rules (2 against 1 in legacy)"},
		{name: "tie: default nf_tables", tools: map[string]string{"iptables-legacy-save": rulesOut(2), "iptables-nft-save": rulesOut(2)}, plain: "xtables-nft-multi",
			want: Decision{Mode: NFT, Default: true}, reason: "2 rules in each mode: the default iptables-save, which is nf_tables"},
		{name: "nothing: default legacy", plain: "xtables-legacy-multi",
			want: Decision{Mode: Legacy, Default: true}, reason: "which is legacy"},
		{name: "default of unknown mode", plain: "iptables-wrapper",
			want: Decision{Default: true}, reason: "whose mode cannot be told"},
		{name: "legacy tools missing", tools: map[string]string{"iptables-nft-save": rulesOut(1)},
			want: Decision{Mode: NFT}, reason: "(1 against 0 in legacy)"},
		{name: "no iptables-save at all", want: Decision{Default: true}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, out := range tt.tools {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p+".out", []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				script := `if [ "$1" = -t ]; then grep -q '^\*'"$2" "$0.out" && cat "$0.out"; exit 0; fi; cat "$0.out"`
				if strings.Contains(name, "legacy") {
					script = `[ $# = 0 ] || exit 9; cat "$0.out"` // never asked for one table
				}
				if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tt.plain != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.plain), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tt.plain, filepath.Join(dir, "iptables-save")); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Decide(context.Background(), []string{dir})
			if tt.wantErr != (err != nil) {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.As(err, new(*MissingToolError)) {
				t.Errorf("error %v, want a MissingToolError", err)
			}
			if got.Mode != tt.want.Mode || got.Default != tt.want.Default || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("Decide = %+v, want %+v with %q in the reason", got, tt.want, tt.reason)
			}
			if pin := got.Pin(); (pin == "") != got.Default || (!got.Default && pin != got.Mode) {
				t.Errorf("Pin() = %q for %+v", pin, got)
			}
		})
	}
}

// TestExecMode: an Exec pinned to a mode runs that mode's tools, and says
// it writes nf_tables only in NFT mode.
func TestExecMode(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"iptables-save", "iptables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		e    Exec
		want string
		nft  bool
	}{
		{Exec{Family: rules.IPv4, Dirs: []string{dir}}, "iptables-save", false},
		{Exec{Dirs: []string{dir}, Mode: Legacy}, "iptables-legacy-save", false},
		{Exec{Dirs: []string{dir}, Mode: NFT}, "iptables-nft-save", true},
		{Exec{Dirs: []string{dir}, Mode: NFT, Family: rules.IPv6}, "ip6tables-nft-save", true},
	} {
		out, err := tt.e.Save(context.Background())
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%+v Save = %q, %v; want %s's output", tt.e, out, err, tt.want)
		}
		if tt.e.NFTables() != tt.nft {
			t.Errorf("%+v NFTables() = %v", tt.e, !tt.nft)
		}
	}
	_, err := Exec{Dirs: []string{dir}, Mode: Legacy, Family: rules.IPv6}.Save(context.Background())
	var missing *MissingToolError
	if !errors.As(err, &missing) || missing.Tool != "ip6tables-legacy-save" {
		t.Errorf("Save without ip6tables-legacy-save = %v, want it named missing", err)
	}
}
