// Package nodes is where the installer learns about the cluster's nodes: a
// client-go informer on Node objects, or a static JSON file for running
// without an apiserver. Both hand out the same plain Node values, whose
// fields are untrusted input (anyone who can edit a Node object writes them,
// GHSA-vchx-5pr6-ffx2): Parse is the only way to turn them into addresses.
package nodes

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/minicni/minicni/libmini"
)

// Node is what the installer uses of a Node object, exactly as read: nothing
// in it has been validated.
type Node struct {
	Name        string   `json:"name"`
	InternalIPs []string `json:"internalIPs"`
	PodCIDRs    []string `json:"podCIDRs"`
}

// Source lists the cluster's nodes and says when they may have changed.
type Source interface {
	// Start begins watching and returns once the first complete list is
	// known, so that a reconcile never runs on a partial view (which would
	// delete the routes of every node not yet seen).
	Start(ctx context.Context) error
	// List returns every node.
	List() ([]Node, error)
	// Get returns one node; ok is false when there is no node by that name.
	Get(name string) (n Node, ok bool, err error)
	// Changed receives a value (coalesced) after nodes may have changed.
	Changed() <-chan struct{}
}

// Prober is a Source whose view can go stale without List failing: the
// Kubernetes informer keeps serving its cache when the apiserver is gone.
// Probe returns nil when the source is in touch with its origin, so that
// the view is current as far as it can tell.
type Prober interface {
	Probe(ctx context.Context) error
}

// Parsed is a Node whose values passed validation.
type Parsed struct {
	Name        string
	InternalIPs []netip.Addr   // valid unicast addresses, in the Node's order
	PodCIDRs    []netip.Prefix // at most one per family, IPv4 first
}

// Parse validates every value of n: podCIDRs with ParsePodCIDRs (an empty
// list is allowed here: a node waiting for its subnet) and internal IPs with
// ParseIP. The first invalid value is the error.
func Parse(n Node) (Parsed, error) {
	p := Parsed{Name: n.Name}
	if err := ValidateName(n.Name); err != nil {
		return p, err
	}
	for _, s := range n.InternalIPs {
		ip, err := ParseIP(s)
		if err != nil {
			return p, fmt.Errorf("node %q: %w", n.Name, err)
		}
		p.InternalIPs = append(p.InternalIPs, ip)
	}
	if len(n.PodCIDRs) > 0 {
		cidrs, err := ParsePodCIDRs(n.PodCIDRs)
		if err != nil {
			return p, fmt.Errorf("node %q: %w", n.Name, err)
		}
		p.PodCIDRs = cidrs
	}
	return p, nil
}

// ValidateName checks a node name is a DNS subdomain, as the apiserver
// enforces: a static file gets no such check otherwise.
func ValidateName(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("invalid node name %q: must be 1-253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid node name %q: not a DNS subdomain", name)
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return fmt.Errorf("invalid node name %q: not a DNS subdomain", name)
			}
		}
	}
	return nil
}

// ParsePodCIDRs validates a node's pod CIDRs: a non-empty list of at most one
// CIDR per family, each in canonical network form (no host bits, no zone, no
// IPv4-mapped IPv6), leaving room for a gateway and pods (IPv4 /30 or
// shorter, IPv6 /126 or shorter) and not covering the whole address space.
// It returns them IPv4 first. Every value is checked before any is used.
func ParsePodCIDRs(raw []string) ([]netip.Prefix, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no podCIDR")
	}
	if len(raw) > 2 {
		return nil, fmt.Errorf("%d podCIDRs %q: at most one per IP family", len(raw), raw)
	}
	var out []netip.Prefix
	for _, s := range raw {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		for _, q := range out {
			if q.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("podCIDRs %q: two of the same IP family", raw)
			}
		}
		out = append(out, p)
	}
	if len(out) == 2 && !out[0].Addr().Is4() {
		out[0], out[1] = out[1], out[0]
	}
	return out, nil
}

// ParseCIDR validates one pod CIDR (see ParsePodCIDRs) with
// libmini.ParsePrefix. Accepting only the canonical text keeps odd spellings
// (upper case IPv6) from naming the same network twice.
func ParseCIDR(s string) (netip.Prefix, error) {
	return libmini.ParsePrefix("podCIDR", s, libmini.NotWhole|libmini.RoomForPods|libmini.Unicast|libmini.Canonical)
}

// ParseIP validates a node's internal IP with libmini.ParseAddr: a unicast
// address that can be a next hop (not unspecified, loopback, multicast or
// link-local), IPv4-mapped IPv6 unmapped.
func ParseIP(s string) (netip.Addr, error) {
	return libmini.ParseAddr("internal IP", s, libmini.Unicast)
}
