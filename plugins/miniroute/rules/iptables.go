package rules

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/minicni/minicni/internal/sum256"
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
	Cluster []netip.Prefix
	// PodNets is the node's pod subnets of this family (from prevResult):
	// masqueraded when leaving the cluster.
	PodNets    []netip.Prefix
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

// Digest identifies the rules s wants (not the family): two specs with the
// same digest ask for the same chains, jumps and rules. Stamps key on it, so
// a changed config misses.
func (s Spec) Digest() string {
	var b bytes.Buffer
	for _, p := range s.parts() {
		fmt.Fprintf(&b, "%s %s %v %q %q\n", p.table, p.hook, p.jumpFirst, p.jump, p.want)
	}
	sum := sum256.Sum(b.Bytes())
	return hex.EncodeToString(sum[:])
}

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
	if Target(r) == "RETURN" {
		return 0
	}
	return 1
}

// Plan compares the saved ruleset with s. It returns the iptables-restore
// input that brings the ruleset to s (nil when it is already there) and,
// for CHECK, a description of each difference.
func Plan(rs Ruleset, s Spec) (restore []byte, problems []string) {
	var buf bytes.Buffer
	cmd := s.Family.Command()
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
				lines = append(lines, "-A "+p.chain+" "+Render(r))
			}
		}
		jump := Render(p.jump)
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
			out = append(out, fmt.Sprintf("rule missing: %s -t %s -A %s %s", cmd, p.table, p.chain, Render(r)))
		}
	}
	dups := false
	for _, r := range existing {
		if count[key(r)] > 1 {
			out = append(out, fmt.Sprintf("duplicate rule in %s: %s", p.chain, Render(r)))
			count[key(r)] = 1
			dups = true
		}
	}
	if len(out) == 0 && !dups && !slices.EqualFunc(merged, existing, slices.Equal) {
		out = append(out, fmt.Sprintf("rules of %s out of order: RETURN rules must precede the others", p.chain))
	}
	return out
}

// Teardown is the iptables-restore input that removes minicni's chains
// (MINICNI-FORWARD, MINICNI-POSTROUTING) from the saved ruleset and every
// rule that jumps to them, and nothing else; nil when there is nothing to
// remove.
func Teardown(rs Ruleset) []byte {
	var buf bytes.Buffer
	for _, p := range []part{forwardPart(Spec{}), masqPart(Spec{})} {
		t := rs.table(p.table)
		var lines []string
		for _, chain := range slices.Sorted(maps.Keys(t.rules)) {
			if chain == p.chain {
				continue
			}
			for _, r := range t.rules[chain] {
				if JumpsTo(r, p.chain) {
					lines = append(lines, "-D "+chain+" "+Render(r))
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
	return buf.Bytes()
}

// Owned lists what of minicni's is in the saved ruleset, as iptables-save
// lines prefixed with their table ("filter -N MINICNI-FORWARD", "filter -A
// FORWARD … -j MINICNI-FORWARD", "filter -A MINICNI-FORWARD …"): each of
// its chains that exists, the rules jumping to it, then its rules. Nil when
// there is none: a status report shows it, whichever iptables mode the dump
// came from.
func Owned(rs Ruleset) []string {
	var out []string
	for _, p := range []part{forwardPart(Spec{}), masqPart(Spec{})} {
		t, ok := rs[p.table]
		if !ok {
			continue
		}
		if t.chains[p.chain] {
			out = append(out, p.table+" -N "+p.chain)
		}
		for _, chain := range slices.Sorted(maps.Keys(t.rules)) {
			if chain == p.chain {
				continue
			}
			for _, r := range t.rules[chain] {
				if JumpsTo(r, p.chain) {
					out = append(out, p.table+" -A "+chain+" "+Render(r))
				}
			}
		}
		for _, r := range t.rules[p.chain] {
			out = append(out, p.table+" -A "+p.chain+" "+Render(r))
		}
	}
	return out
}
