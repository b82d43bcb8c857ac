package libmini

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
)

// ParsePrefix and ParseAddr are the one place minicni turns text into a
// prefix or an address. Every caller gets the same base rules (netip's
// syntax, no zone, IPv4 in dotted form, a prefix without host bits) and adds
// the checks it needs with AddrOptions. An error reads
// `invalid FIELD "VALUE": REASON` and is a *types.Error of code 7 unless
// WithCode says otherwise; callers outside CNI (the installer) use its text.

// AddrOption adds a rule to ParsePrefix or ParseAddr, or sets the code of
// their error. The AddrCheck constants are options, and may be or'ed.
type AddrOption interface{ apply(*addrRules) }

type addrRules struct {
	checks  AddrCheck
	code    uint
	details string
}

// AddrCheck is a set of extra checks.
type AddrCheck uint

const (
	// NotWhole refuses a prefix of length 0 (it covers every address).
	NotWhole AddrCheck = 1 << iota
	// RoomForPods refuses a prefix too small to hold a gateway and a pod
	// besides the network (and IPv4 broadcast) address: IPv4 longer than
	// /30, IPv6 longer than /126.
	RoomForPods
	// Unicast refuses loopback, multicast and link-local prefixes, and for
	// an address also the unspecified one: what can be a pod network or a
	// next hop.
	Unicast
	// Canonical accepts only netip's canonical text (no upper-case IPv6, no
	// needlessly long IPv6), so one network has one spelling.
	Canonical
	// PrefixLenIgnored lets ParseAddr accept "address/length" and drop the
	// length, as host-local does for requested addresses.
	PrefixLenIgnored
)

func (c AddrCheck) apply(r *addrRules) { r.checks |= c }

type codeOption struct {
	code    uint
	details string
}

func (o codeOption) apply(r *addrRules) { r.code, r.details = o.code, o.details }

// WithCode makes the error CNI error code with details (which may be
// empty) instead of code 7 without details.
func WithCode(code uint, details string) AddrOption { return codeOption{code, details} }

func rulesOf(opts []AddrOption) addrRules {
	r := addrRules{code: CodeInvalidConfig}
	for _, o := range opts {
		o.apply(&r)
	}
	return r
}

func (r addrRules) has(c AddrCheck) bool { return r.checks&c != 0 }

func (r addrRules) errorf(field, s, format string, args ...any) error {
	return types.NewError(r.code, fmt.Sprintf("invalid %s %q: ", field, s)+fmt.Sprintf(format, args...), r.details)
}

// ParsePrefix parses a CIDR naming a network: no zone, IPv4 in dotted form
// (not IPv4-mapped IPv6), no host bits; opts add checks. field names the
// value in the error.
func ParsePrefix(field, s string, opts ...AddrOption) (netip.Prefix, error) {
	r := rulesOf(opts)
	p, err := netip.ParsePrefix(s)
	a := p.Addr()
	switch {
	case err != nil || a.Zone() != "":
		return netip.Prefix{}, r.errorf(field, s, "not a CIDR")
	case a.Is4In6():
		return netip.Prefix{}, r.errorf(field, s, "IPv4-mapped IPv6, write IPv4 in dotted form")
	case p.Masked() != p:
		return netip.Prefix{}, r.errorf(field, s, "host bits set, the network is %s", p.Masked())
	case r.has(NotWhole) && p.Bits() == 0:
		return netip.Prefix{}, r.errorf(field, s, "covers every address")
	case r.has(RoomForPods) && p.Bits() > a.BitLen()-2:
		return netip.Prefix{}, r.errorf(field, s, "too small for a gateway and pods (at most /%d)", a.BitLen()-2)
	case r.has(Unicast) && (a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast()):
		return netip.Prefix{}, r.errorf(field, s, "not a unicast network")
	case r.has(Canonical) && p.String() != s:
		return netip.Prefix{}, r.errorf(field, s, "not in canonical form %s", p)
	}
	return p, nil
}

// ParseAddr parses an IP address without a zone; an IPv4-mapped IPv6
// address becomes plain IPv4, as host-local canonicalises it. opts add
// checks (PrefixLenIgnored, Unicast).
func ParseAddr(field, s string, opts ...AddrOption) (netip.Addr, error) {
	r := rulesOf(opts)
	a, err := netip.ParseAddr(s)
	if err != nil && r.has(PrefixLenIgnored) {
		var p netip.Prefix
		p, err = netip.ParsePrefix(s)
		a = p.Addr()
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, r.errorf(field, s, "not an IP address")
	}
	a = a.Unmap()
	if r.has(Unicast) && (a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast()) {
		return netip.Addr{}, r.errorf(field, s, "not a routable unicast address")
	}
	return a, nil
}

// Within reports whether p lies inside one of outer: an outer prefix of
// p's family, no longer than p, holding p's network. It is the one check of
// "the pod subnet lies inside the cluster CIDR".
func Within(p netip.Prefix, outer []netip.Prefix) bool {
	for _, o := range outer {
		if o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
