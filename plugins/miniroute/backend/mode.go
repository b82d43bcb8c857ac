package backend

import (
	"bytes"
	"context"
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
	return "", fmt.Errorf("not an iptables mode: auto, legacy or nf_tables")
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
	d, err := Decide(ctx, dirs)
	return d.Mode, d.Reason, err
}

// Decision is Detect's answer.
type Decision struct {
	Mode   Mode
	Reason string
	// Default says step 4 chose Mode: nothing on the node asks for a mode,
	// so miniroute keeps running the plain iptables-save and -restore.
	Default bool
}

// Pin is the Exec.Mode that follows d: its Mode, or "" (the plain tools)
// for a default decision.
func (d Decision) Pin() Mode {
	if d.Default {
		return ""
	}
	return d.Mode
}

// Decide is Detect with the whole decision.
func Decide(ctx context.Context, dirs []string) (Decision, error) {
	save := func(m Mode, f rules.Family, args ...string) []byte {
		out, _ := Exec{Family: f, Dirs: dirs, Mode: m}.run(ctx, "save", nil, args...)
		return out
	}
	families := []rules.Family{rules.IPv4, rules.IPv6}
	for _, f := range families {
		if c, ok := kubeletChain(save(NFT, f, "-t", "mangle")); ok {
			return Decision{Mode: NFT, Reason: fmt.Sprintf("the kubelet's %s chain is in nf_tables (%s-nft-save)", c, f.Command())}, nil
		}
	}
	var legacy, nft int
	for _, f := range families {
		out := save(Legacy, f)
		if c, ok := kubeletChain(out); ok {
			return Decision{Mode: Legacy, Reason: fmt.Sprintf("the kubelet's %s chain is in legacy (%s-legacy-save)", c, f.Command())}, nil
		}
		legacy += countRules(out)
	}
	for _, f := range families {
		nft += countRules(save(NFT, f))
	}
	switch {
	case legacy > nft:
		return Decision{Mode: Legacy, Reason: fmt.Sprintf("no kubelet hint chain; legacy holds more rules (%d against %d in nf_tables)", legacy, nft)}, nil
	case nft > legacy:
		return Decision{Mode: NFT, Reason: fmt.Sprintf("no kubelet hint chain; nf_tables holds more rules (%d against %d in legacy)", nft, legacy)}, nil
	}
	d := Decision{Default: true, Reason: fmt.Sprintf("no kubelet hint chain and %d rules in each mode: the default iptables-save", legacy)}
	m, err := Exec{Family: rules.IPv4, Dirs: dirs}.installedMode()
	if err != nil {
		return d, err
	}
	d.Mode = m
	if m == "" {
		d.Reason += ", whose mode cannot be told"
	} else {
		d.Reason += ", which is " + string(m)
	}
	return d, nil
}

// installedMode is the mode of e's save tool, told by the name of the
// binary it resolves to (xtables-nft-multi, xtables-legacy-multi), as
// NFTables tells it; "" for any other binary (a wrapper script).
func (e Exec) installedMode() (Mode, error) {
	path, err := e.lookPath("save")
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil
	}
	switch base := filepath.Base(real); {
	case strings.Contains(base, "nft"):
		return NFT, nil
	case strings.Contains(base, "legacy"):
		return Legacy, nil
	}
	return "", nil
}
