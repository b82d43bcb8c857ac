package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
)

// minicni's chains. They hold node-level rules only, so their length does not
// grow with the number of pods.
const (
	ForwardChain     = "MINICNI-FORWARD"     // table filter, jumped to from FORWARD
	PostroutingChain = "MINICNI-POSTROUTING" // table nat, jumped to from POSTROUTING
)

// Comments on every rule, so an admin reading iptables -S knows whose they are.
const (
	commentForwardJump = "minicni: forward pod traffic"
	commentFromCluster = "minicni: accept from the cluster CIDR"
	commentToCluster   = "minicni: accept to the cluster CIDR"
	commentMasqJump    = "minicni: masquerade pod traffic leaving the cluster"
	commentInCluster   = "minicni: no masquerade within the cluster CIDR"
	commentMulticast   = "minicni: no masquerade for multicast"
	commentMasq        = "minicni: masquerade the pod subnet"
)

// Spec is the node-level state wanted for one family.
type Spec struct {
	Family Family
	// Cluster is the cluster's pod CIDRs of this family: forwarded both ways,
	// never masqueraded.
	Cluster []*net.IPNet
	// PodNets is the node's pod subnets of this family (from prevResult):
	// masqueraded when leaving the cluster.
	PodNets    []*net.IPNet
	Forward    bool
	Masquerade bool
}

// part is one of minicni's chains with the jump to it from a built-in chain.
type part struct {
	table, hook, chain string
	// jumpFirst inserts the jump at the top of hook (ahead of DROP or REJECT
	// rules others put in FORWARD); otherwise it is appended.
	jumpFirst bool
	jump      []string
	want      [][]string
	// returnsFirst keeps RETURN rules ahead of all others in the chain, so
	// the exceptions to masquerading always precede the masquerade rules.
	returnsFirst bool
}

func comment(text string) []string { return []string{"-m", "comment", "--comment", text} }

func rule(match []string, text, target string) []string {
	return slices.Concat(match, comment(text), []string{"-j", target})
}

func multicast(f Family) string {
	if f == IPv6 {
		return "ff00::/8"
	}
	return "224.0.0.0/4"
}

// forwardPart and masqPart are the two chains; they exist even when the
// spec turns them off, so Cleanup knows every chain miniroute may create.
func forwardPart(s Spec) part {
	p := part{table: "filter", hook: "FORWARD", chain: ForwardChain, jumpFirst: true,
		jump: rule(nil, commentForwardJump, ForwardChain)}
	for _, c := range s.Cluster {
		p.want = append(p.want,
			rule([]string{"-s", c.String()}, commentFromCluster, "ACCEPT"),
			rule([]string{"-d", c.String()}, commentToCluster, "ACCEPT"))
	}
	return p
}

func masqPart(s Spec) part {
	p := part{table: "nat", hook: "POSTROUTING", chain: PostroutingChain, returnsFirst: true,
		jump: rule(nil, commentMasqJump, PostroutingChain)}
	for _, c := range s.Cluster {
		p.want = append(p.want, rule([]string{"-d", c.String()}, commentInCluster, "RETURN"))
	}
	p.want = append(p.want, rule([]string{"-d", multicast(s.Family)}, commentMulticast, "RETURN"))
	for _, n := range s.PodNets {
		p.want = append(p.want, rule([]string{"-s", n.String()}, commentMasq, "MASQUERADE"))
	}
	return p
}

func (s Spec) parts() []part {
	var ps []part
	if s.Forward && len(s.Cluster) > 0 {
		ps = append(ps, forwardPart(s))
	}
	if s.Masquerade && len(s.PodNets) > 0 {
		ps = append(ps, masqPart(s))
	}
	return ps
}

// Empty reports whether s asks for no rule at all.
func (s Spec) Empty() bool { return len(s.parts()) == 0 }

// merge is the chain's content after ensuring: the rules already there (kept:
// another network's miniroute on the same node may have added them), then
// the wanted ones missing, without duplicates, RETURN rules first when the
// part needs it.
func (p part) merge(existing [][]string) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, r := range slices.Concat(existing, p.want) {
		if k := key(r); !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	if p.returnsFirst {
		slices.SortStableFunc(out, func(a, b []string) int { return rank(a) - rank(b) })
	}
	return out
}

// rank orders RETURN rules before the others.
func rank(r []string) int {
	if target(r) == "RETURN" {
		return 0
	}
	return 1
}

// plan compares the saved ruleset with s. It returns the iptables-restore
// input that brings the ruleset to s (nil when it is already there) and,
// for CHECK, a description of each difference.
func plan(rs ruleset, s Spec) (restore []byte, problems []string) {
	var buf bytes.Buffer
	cmd := s.Family.command()
	for _, p := range s.parts() {
		t := rs.table(p.table)
		existing, exists := t.rules[p.chain], t.chains[p.chain]
		merged := p.merge(existing)
		var lines []string
		if !exists {
			problems = append(problems, fmt.Sprintf("chain %s is missing (%s -t %s -N %s)", p.chain, cmd, p.table, p.chain))
		} else {
			problems = append(problems, p.differences(cmd, existing, merged)...)
		}
		if !exists || !slices.EqualFunc(merged, existing, slices.Equal) {
			lines = append(lines, ":"+p.chain+" - [0:0]")
			for _, r := range merged {
				lines = append(lines, "-A "+p.chain+" "+render(r))
			}
		}
		jump := render(p.jump)
		n := 0
		for _, r := range t.rules[p.hook] {
			if slices.Equal(r, p.jump) {
				n++
			}
		}
		switch {
		case n == 0 && p.jumpFirst:
			lines = append(lines, "-I "+p.hook+" 1 "+jump)
		case n == 0:
			lines = append(lines, "-A "+p.hook+" "+jump)
		case n > 1:
			problems = append(problems, fmt.Sprintf("the jump from %s to %s appears %d times", p.hook, p.chain, n))
			for range n - 1 {
				lines = append(lines, "-D "+p.hook+" "+jump)
			}
		}
		if n == 0 {
			problems = append(problems, fmt.Sprintf("rule missing: %s -t %s %s", cmd, p.table, lines[len(lines)-1]))
		}
		if len(lines) > 0 {
			fmt.Fprintf(&buf, "*%s\n%s\nCOMMIT\n", p.table, strings.Join(lines, "\n"))
		}
	}
	if buf.Len() == 0 {
		return nil, problems
	}
	return buf.Bytes(), problems
}

// differences describes how an existing chain differs from its merged
// (wanted) content: missing rules, duplicates, order.
func (p part) differences(cmd string, existing, merged [][]string) []string {
	var out []string
	count := map[string]int{}
	for _, r := range existing {
		count[key(r)]++
	}
	for _, r := range p.want {
		if count[key(r)] == 0 {
			out = append(out, fmt.Sprintf("rule missing: %s -t %s -A %s %s", cmd, p.table, p.chain, render(r)))
		}
	}
	dups := false
	for _, r := range existing {
		if count[key(r)] > 1 {
			out = append(out, fmt.Sprintf("duplicate rule in %s: %s", p.chain, render(r)))
			count[key(r)] = 1
			dups = true
		}
	}
	if len(out) == 0 && !dups && !slices.EqualFunc(merged, existing, slices.Equal) {
		out = append(out, fmt.Sprintf("rules of %s out of order: RETURN rules must precede the others", p.chain))
	}
	return out
}

// load reads and parses one family's ruleset.
func load(ctx context.Context, b Backend) (ruleset, error) {
	data, err := b.Save(ctx)
	if err != nil {
		return nil, err
	}
	return parseSave(data)
}

// Ensure brings s's rules into place and reports whether it changed
// anything. The fast path is one iptables-save when everything is already
// there. Otherwise it takes the namespace's lock, reads again (a concurrent
// ADD may have done the work) and writes everything missing with one
// iptables-restore: a chain's new content replaces the old atomically, and
// since writers are serialized, two ADDs never both insert the same jump.
// A final read verifies the result.
func Ensure(ctx context.Context, b Backend, s Spec) (changed bool, retErr error) {
	fail := func(what string, err error) *types.Error {
		code := libmini.CodeFirewall
		if errors.Is(err, context.DeadlineExceeded) {
			code = libmini.CodeTryAgainLater
		}
		return libmini.Errorf(code, "%s rules: %s: %v", s.Family, what, err)
	}
	rs, err := load(ctx, b)
	if err != nil {
		return false, fail("cannot read the ruleset", err)
	}
	if restore, _ := plan(rs, s); restore == nil {
		return false, nil
	}
	unlock, err := b.Lock(ctx)
	if err != nil {
		return false, fail("cannot serialize with other miniroute processes", err)
	}
	defer unlock()
	if rs, err = load(ctx, b); err != nil {
		return false, fail("cannot read the ruleset", err)
	}
	restore, _ := plan(rs, s)
	if restore == nil {
		return false, nil
	}
	if err := b.Restore(ctx, restore); err != nil {
		e := fail("cannot apply rules", err)
		e.Details = "iptables-restore input:\n" + string(restore)
		return false, e
	}
	if rs, err = load(ctx, b); err != nil {
		return true, fail("cannot read the ruleset back", err)
	}
	if _, problems := plan(rs, s); len(problems) > 0 {
		return true, fail("rules not in place after iptables-restore", errors.New(strings.Join(problems, "; ")))
	}
	return true, nil
}

// CheckRules reports, as CNI error CodeCheckFailed, every rule of s that is
// missing, duplicated or out of order.
func CheckRules(ctx context.Context, b Backend, s Spec) error {
	if s.Empty() {
		return nil
	}
	rs, err := load(ctx, b)
	if err != nil {
		return libmini.Errorf(libmini.CodeFirewall, "%s rules: cannot read the ruleset: %v", s.Family, err)
	}
	if _, problems := plan(rs, s); len(problems) > 0 {
		return libmini.Errorf(libmini.CodeCheckFailed, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// Cleanup removes minicni's chains (MINICNI-FORWARD, MINICNI-POSTROUTING)
// from b's family and every rule that jumps to them, and nothing else, in
// one iptables-restore. It is the installer's uninstall step; it is
// idempotent and also removes rules miniroute would otherwise keep (an old
// clusterCIDR's, say).
func Cleanup(ctx context.Context, b Backend) error {
	if e, ok := b.(Exec); ok {
		// Stamps say the rules were verified; they are about to go.
		_ = DefaultStamps.Forget(e.Family)
	}
	unlock, err := b.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := b.Save(ctx)
	if err != nil {
		return err
	}
	rs, err := parseSave(data)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, p := range []part{forwardPart(Spec{}), masqPart(Spec{})} {
		t := rs.table(p.table)
		var lines []string
		for _, chain := range slices.Sorted(maps.Keys(t.rules)) {
			if chain == p.chain {
				continue
			}
			for _, r := range t.rules[chain] {
				if jumpsTo(r, p.chain) {
					lines = append(lines, "-D "+chain+" "+render(r))
				}
			}
		}
		if t.chains[p.chain] {
			lines = append(lines, "-F "+p.chain, "-X "+p.chain)
		}
		if len(lines) > 0 {
			fmt.Fprintf(&buf, "*%s\n%s\nCOMMIT\n", p.table, strings.Join(lines, "\n"))
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	if err := b.Restore(ctx, buf.Bytes()); err != nil {
		return fmt.Errorf("remove minicni's chains: %w", err)
	}
	return nil
}
