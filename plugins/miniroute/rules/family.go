// Package rules is miniroute's pure rule model: the node-level state wanted
// for one family (Spec), the plan that brings a parsed iptables-save dump to
// it (Plan) or removes minicni's chains from it (Teardown), and the parsing
// and rendering of iptables-save lines. It runs nothing, opens no socket and
// reads no file: package backend runs iptables, package route composes them.
package rules

// Family is an IP family: IPv4 (iptables) or IPv6 (ip6tables).
type Family int

// The two families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Command is the family's iptables command, as an admin types it.
func (f Family) Command() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}
