package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// Mode is one of the two kernel interfaces iptables 1.8 programs: the legacy
// x_tables one or nf_tables. Rules written in one mode are invisible to the
// other mode's tools, and a DROP in one is not undone by an ACCEPT in the
// other, so miniroute writes in the mode the node's kubelet and kube-proxy
// use.
type Mode string

// The two modes, named as `iptables --version` names them.
const (
	Legacy Mode = "legacy"
	NFT    Mode = "nf_tables"
)

// ParseMode reads a configured mode: "legacy", "nf_tables" (or "nft"), or
// "auto" and "" for "detect it" (returned as "").
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return "", nil
	case string(Legacy):
		return Legacy, nil
	case string(NFT), "nft":
		return NFT, nil
	}
	return "", fmt.Errorf("%q is not an iptables mode (auto, legacy or nf_tables)", s)
}

// infix is what the mode inserts in a tool's name: iptables-nft-save.
func (m Mode) infix() string {
	switch m {
	case Legacy:
		return "-legacy"
	case NFT:
		return "-nft"
	}
	return ""
}

// kubeletChain reports whether save output declares one of the chains the
// kubelet (1.17 and later) creates in the mangle table of the mode it uses,
// KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY.
func kubeletChain(save []byte) (string, bool) {
	for line := range bytes.Lines(save) {
		for _, c := range []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"} {
			if bytes.HasPrefix(line, []byte(":"+c+" ")) {
				return c, true
			}
		}
	}
	return "", false
}

// countRules counts the rules (lines "-A …") in save output.
func countRules(save []byte) int {
	n := 0
	for line := range bytes.Lines(save) {
		if bytes.HasPrefix(line, []byte("-")) {
			n++
		}
	}
	return n
}

// Detect returns the node's iptables mode and a one-line reason, decided as
// Kubernetes' iptables wrapper (kubernetes-sigs/iptables-wrappers) does, in
// the calling thread's network namespace:
//
//  1. the kubelet's hint chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) in
//     nf_tables' mangle table, IPv4 or IPv6: nf_tables;
//  2. the same chains in legacy (read with a whole iptables-legacy-save,
//     since asking for the mangle table would make the kernel create it):
//     legacy;
//  3. otherwise the mode holding more rules, both families counted;
//  4. otherwise (a tie, none at all) the mode of the iptables-save found
//     where Exec finds it (dirs as Exec.Dirs): today's default. Its mode is
//     what its --version says, else the name of the binary it links to;
//     "" when neither tells (a wrapper script).
//
// A mode whose tools are not installed is skipped; its saves count as empty.
// The error is only for step 4 failing: no iptables-save at all.
func Detect(ctx context.Context, dirs []string) (Mode, string, error) {
	d, err := decide(ctx, dirs)
	return d.Mode, d.Reason, err
}

// decision is Detect's answer; byDefault says step 4 chose it, so nothing
// on the node asks for that mode in particular.
type decision struct {
	Mode      Mode
	Reason    string
	byDefault bool
}

func decide(ctx context.Context, dirs []string) (decision, error) {
	save := func(m Mode, f rules.Family, args ...string) []byte {
		out, _ := Exec{Family: f, Dirs: dirs, Mode: m}.run(ctx, "save", nil, args...)
		return out
	}
	families := []rules.Family{rules.IPv4, rules.IPv6}
	for _, f := range families {
		if c, ok := kubeletChain(save(NFT, f, "-t", "mangle")); ok {
			return decision{Mode: NFT, Reason: fmt.Sprintf("the kubelet's %s chain is in nf_tables (%s-nft-save)", c, f.Command())}, nil
		}
	}
	var legacy, nft int
	for _, f := range families {
		out := save(Legacy, f)
		if c, ok := kubeletChain(out); ok {
			return decision{Mode: Legacy, Reason: fmt.Sprintf("the kubelet's %s chain is in legacy (%s-legacy-save)", c, f.Command())}, nil
		}
		legacy += countRules(out)
	}
	for _, f := range families {
		nft += countRules(save(NFT, f))
	}
	switch {
	case legacy > nft:
		return decision{Mode: Legacy, Reason: fmt.Sprintf("no kubelet hint chain; legacy holds more rules (%d against %d in nf_tables)", legacy, nft)}, nil
	case nft > legacy:
		return decision{Mode: NFT, Reason: fmt.Sprintf("no kubelet hint chain; nf_tables holds more rules (%d against %d in legacy)", nft, legacy)}, nil
	}
	m, err := Exec{Family: rules.IPv4, Dirs: dirs}.installedMode(ctx)
	if err != nil {
		return decision{}, err
	}
	return decision{Mode: m, byDefault: true,
		Reason: fmt.Sprintf("no kubelet hint chain and %d rules in each mode: the default iptables-save, which is %s", legacy, m)}, nil
}

// installedMode is the mode of e's save tool: what its --version says
// ("iptables-save v1.8.9 (nf_tables)"), else what the binary it resolves to
// is named (xtables-nft-multi, xtables-legacy-multi).
func (e Exec) installedMode(ctx context.Context) (Mode, error) {
	out, err := e.run(ctx, "save", nil, "--version")
	if errors.As(err, new(*MissingToolError)) {
		return "", err
	}
	switch v := string(out); {
	case strings.Contains(v, "(nf_tables)"):
		return NFT, nil
	case strings.Contains(v, "(legacy)"):
		return Legacy, nil
	}
	path, err := e.lookPath("save")
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		switch base := filepath.Base(real); {
		case strings.Contains(base, "nft"):
			return NFT, nil
		case strings.Contains(base, "legacy"):
			return Legacy, nil
		}
	}
	return "", nil // a wrapper of some kind: its mode cannot be told
}
