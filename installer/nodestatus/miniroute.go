package nodestatus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// Miniroute is where minicni's iptables rules are, per family and mode.
type Miniroute struct {
	// NodeMode is the mode the node's kubelet and kube-proxy use, as
	// backend.Decide finds it, and why; Configured is the conflist's
	// iptablesMode ("" for auto).
	NodeMode   string `json:"nodeMode"`
	Reason     string `json:"reason"`
	Configured string `json:"configured,omitempty"`
	// Families lists, per family, minicni's chains and rules in each mode.
	Families []Family `json:"families"`
}

// Family is one IP family's rules in each iptables mode.
type Family struct {
	Family string      `json:"family"`
	Modes  []ModeRules `json:"modes"`
}

// ModeRules are minicni's rules in one mode (rules.Owned's lines).
type ModeRules struct {
	Mode  string   `json:"mode"`
	Rules []string `json:"rules"`
	// Remove, for rules in a mode the node does not use, are the commands
	// that delete them (rules.Teardown as that mode's tool's commands).
	Remove []string `json:"remove,omitempty"`
	Error  string   `json:"error,omitempty"`
}

const secMiniroute = "miniroute"

// wantMode is the mode minicni's rules should be in: the configured one,
// else the node's.
func (m *Miniroute) wantMode() string {
	if m.Configured != "" {
		return m.Configured
	}
	return m.NodeMode
}

func (r *Report) miniroute(ctx context.Context, opt Options, n *network) {
	if n.route == nil {
		return // not in the chain: nothing of minicni's in iptables
	}
	m := &Miniroute{Configured: string(n.route.Mode), Families: []Family{}}
	r.Miniroute = m
	d, err := backend.Decide(ctx, opt.IPTablesDirs)
	m.NodeMode, m.Reason = string(d.Mode), d.Reason
	if err != nil {
		r.blind(secMiniroute, "cannot tell the node's iptables mode: "+err.Error(), "install iptables (Debian package iptables) or set --iptables-dirs")
		return
	}
	want := m.wantMode()
	needed := (n.route.Forward || n.route.Masquerade) && r.Addresses != nil && len(r.Addresses.Reservations) > 0
	for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
		fam := Family{Family: f.String(), Modes: []ModeRules{}}
		usedFamily := familyUsed(n, f)
		found := false
		for _, mode := range []backend.Mode{backend.Legacy, backend.NFT} {
			mr := ModeRules{Mode: string(mode), Rules: []string{}}
			e := backend.Exec{Family: f, Dirs: opt.IPTablesDirs, Mode: mode, Timeout: opt.ExecTimeout}
			out, err := e.Save(ctx)
			var missing *backend.MissingToolError
			switch {
			case errors.As(err, &missing):
				mr.Error = missing.Error()
			case err != nil:
				// Only the mode the rules belong in must be readable: a
				// kernel without legacy x_tables cannot hold rules there.
				mr.Error = err.Error()
				if usedFamily && string(mode) == want {
					r.blind(secMiniroute, fmt.Sprintf("%s-%s-save failed: %v", f.Command(), modeInfix(mode), err), "run as root")
				}
			default:
				rs, err := rules.Parse(out)
				if err != nil {
					mr.Error = err.Error()
					r.blind(secMiniroute, fmt.Sprintf("cannot parse %s-%s-save: %v", f.Command(), modeInfix(mode), err), "report this as a bug with the output attached")
					break
				}
				mr.Rules = append(mr.Rules, rules.Owned(rs)...)
				if len(mr.Rules) > 0 && string(mode) != want {
					mr.Remove = teardownCommands(f, mode, rs)
					r.problem(secMiniroute, fmt.Sprintf("minicni's %s rules are in %s, but the node uses %s (%s): the kernel runs them, the node's tools do not show them",
						f, mode, want, m.Reason), fmt.Sprintf("delete them (%s), then rm -f %s/iptables-mode-* so that miniroute detects the mode again at the next pod",
						strings.Join(mr.Remove, "; "), stamps.DefaultDir))
				}
				if len(mr.Rules) > 0 && string(mode) == want {
					found = true
				}
			}
			fam.Modes = append(fam.Modes, mr)
		}
		m.Families = append(m.Families, fam)
		if needed && usedFamily && !found {
			r.problem(secMiniroute, fmt.Sprintf("pods are attached but minicni's %s rules are not in %s: pods cannot leave the node", f, want),
				"start a pod (its ADD writes them) and check its events for miniroute's error")
		}
	}
}

// familyUsed reports whether the network hands out addresses of family f.
func familyUsed(n *network, f rules.Family) bool {
	if n.ipam == nil {
		return f == rules.IPv4
	}
	for _, set := range n.ipam.Sets {
		if len(set) > 0 && set[0].Subnet.Addr().Is4() == (f == rules.IPv4) {
			return true
		}
	}
	return false
}

func modeInfix(m backend.Mode) string {
	if m == backend.NFT {
		return "nft"
	}
	return string(m)
}

// teardownCommands is rules.Teardown as commands of the mode's tool.
func teardownCommands(f rules.Family, m backend.Mode, rs rules.Ruleset) []string {
	tool := f.Command() + "-" + modeInfix(m)
	var cmds []string
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(rules.Teardown(rs)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case line == "COMMIT" || line == "":
		default:
			cmds = append(cmds, fmt.Sprintf("%s -t %s %s", tool, table, line))
		}
	}
	return cmds
}
