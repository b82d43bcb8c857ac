package rules

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Ruleset is a parsed iptables-save dump: per table, the chains declared and
// each chain's rules as tokens (what follows "-A CHAIN").
type Ruleset map[string]*table

type table struct {
	chains map[string]bool
	rules  map[string][][]string
}

func (rs Ruleset) table(name string) *table {
	t := rs[name]
	if t == nil {
		t = &table{chains: map[string]bool{}, rules: map[string][][]string{}}
		rs[name] = t
	}
	return t
}

// Parse parses iptables-save output. Comment lines, counters and COMMIT
// are skipped; a rule line outside a table or a malformed line is an error,
// so a dump miniroute does not understand is never taken for an empty one.
func Parse(data []byte) (Ruleset, error) {
	rs := Ruleset{}
	var cur *table
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			cur = rs.table(line[1:])
		case line == "COMMIT":
			cur = nil
		case cur == nil:
			return nil, fmt.Errorf("iptables-save line %d outside a table: %q", n, line)
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			tok, err := Tokenize(line)
			if err != nil || len(tok) < 2 {
				return nil, fmt.Errorf("iptables-save line %d: %q: %v", n, line, err)
			}
			cur.rules[tok[1]] = append(cur.rules[tok[1]], tok[2:])
		default:
			return nil, fmt.Errorf("iptables-save line %d not understood: %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read iptables-save output: %w", err)
	}
	return rs, nil
}

// Tokenize splits a rule line as iptables-restore does: on blanks, with
// double-quoted words in which a backslash escapes the next character.
func Tokenize(line string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		inTok bool
		quote bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quote = !quote
			inTok = true
		case !quote && (c == ' ' || c == '\t'):
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

// Render joins tokens into an iptables-restore line, quoting where needed.
func Render(tok []string) string {
	var b strings.Builder
	for i, t := range tok {
		if i > 0 {
			b.WriteByte(' ')
		}
		if t != "" && !strings.ContainsAny(t, " \t\"\\'") {
			b.WriteString(t)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(t); j++ {
			if t[j] == '"' || t[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(t[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

func key(tok []string) string { return strings.Join(tok, "\x00") }

// Target is the rule's -j target ("" when none).
func Target(tok []string) string {
	for i := len(tok) - 2; i >= 0; i-- {
		if tok[i] == "-j" || tok[i] == "--jump" {
			return tok[i+1]
		}
	}
	return ""
}

// JumpsTo reports whether the rule jumps or goes to chain.
func JumpsTo(tok []string, chain string) bool {
	for i := 0; i+1 < len(tok); i++ {
		if (tok[i] == "-j" || tok[i] == "-g" || tok[i] == "--jump" || tok[i] == "--goto") && tok[i+1] == chain {
			return true
		}
	}
	return false
}
