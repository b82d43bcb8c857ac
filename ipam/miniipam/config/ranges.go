package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Range is one canonical range: Start..End (inclusive) inside Subnet, never
// including the network address or the IPv4 broadcast address. The Gateway
// lies in Subnet and is skipped when it falls inside Start..End.
type Range struct {
	Subnet     netip.Prefix
	Start, End netip.Addr
	Gateway    netip.Addr
}

// Contains reports whether a lies in Start..End.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.Start.BitLen() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// Overlaps reports whether two ranges of the same family share an address.
func (r Range) Overlaps(o Range) bool {
	return r.Start.BitLen() == o.Start.BitLen() && r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0
}

// Size is the number of addresses miniipam may hand out from r (Start..End
// without the gateway), saturating at the largest uint64.
func (r Range) Size() uint64 {
	s, e := r.Start.As16(), r.End.As16()
	var hs, ls, he, le uint64
	for i := 0; i < 8; i++ {
		hs, he = hs<<8|uint64(s[i]), he<<8|uint64(e[i])
		ls, le = ls<<8|uint64(s[i+8]), le<<8|uint64(e[i+8])
	}
	// n = e - s + 1 (minus the gateway) in 128 bits, then saturated.
	hi, lo := he-hs, le-ls
	if le < ls {
		hi--
	}
	if lo++; lo == 0 {
		hi++
	}
	if r.Contains(r.Gateway) {
		if lo == 0 {
			hi--
		}
		lo--
	}
	if hi > 0 {
		return ^uint64(0)
	}
	return lo
}

// String is "subnet (start-end)".
func (r Range) String() string {
	return fmt.Sprintf("%s (%s-%s)", r.Subnet, r.Start, r.End)
}

// RangeSet is the ranges one address is picked from: dual stack is one IPv4
// set and one IPv6 set.
type RangeSet []Range

// RangeFor returns the range of s whose Start..End holds a.
func (s RangeSet) RangeFor(a netip.Addr) (Range, bool) {
	for _, r := range s {
		if r.Contains(a) {
			return r, true
		}
	}
	return Range{}, false
}

// Assignable reports whether a may be handed out from s: inside a range and
// not that range's gateway.
func (s RangeSet) Assignable(a netip.Addr) bool {
	r, ok := s.RangeFor(a)
	return ok && a != r.Gateway
}

// Size is the number of assignable addresses of s, saturating.
func (s RangeSet) Size() uint64 {
	var n uint64
	for _, r := range s {
		sz := r.Size()
		if n+sz < n {
			return ^uint64(0)
		}
		n += sz
	}
	return n
}

// String lists the set's ranges.
func (s RangeSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}
