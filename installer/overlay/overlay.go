// Package overlay is minicni's VXLAN overlay, for nodes whose pod subnets a
// direct route cannot reach (no shared subnet with the peer). One VXLAN
// device per node, learning off, holds for each peer reached through it a
// forwarding (FDB) entry, peer VTEP MAC -> peer underlay address, and
// neighbour entries, peer next hop -> peer VTEP MAC; the routes through the
// device are the routes package's. Nothing is published: every value a
// peer's VTEP needs is derived from what every node already reads from the
// Node objects (its InternalIP and podCIDRs), so RBAC stays read-only.
//
// This file holds the pure part (modes, settings, derivations); link.go
// acts on the kernel.
package overlay

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"

	"github.com/minicni/minicni/libmini"
)

// Mode says when a peer's pod subnet goes through the overlay.
type Mode string

const (
	// None: direct routes only; a peer without a shared subnet is
	// unreachable (minicni before the overlay).
	None Mode = "none"
	// Auto: per peer and per family, a direct route when the peer's
	// InternalIP of the family is on a local subnet, VXLAN otherwise.
	Auto Mode = "auto"
	// VXLAN: every peer through the overlay.
	VXLAN Mode = "vxlan"
)

// ParseMode parses the --overlay flag.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case None, Auto, VXLAN:
		return m, nil
	}
	return "", fmt.Errorf("invalid overlay mode %q: want auto, vxlan or none", s)
}

// Defaults of the device's settings.
const (
	// DefaultDevice is the VXLAN device's name (13 bytes; the kernel allows 15).
	DefaultDevice = "minicni.vxlan"
	// DefaultVNI is 4097: not flannel's 1 nor Calico's 4096, so minicni can
	// run beside either during a migration.
	DefaultVNI = 4097
	// DefaultPort is IANA's VXLAN port (RFC 7348); the kernel's own default,
	// 8472, is flannel's.
	DefaultPort = 4789
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = 1<<24 - 1
)

// Config is the overlay's settings, the same on every node.
type Config struct {
	Mode   Mode
	Device string
	VNI    int
	Port   int
}

// DefaultConfig is auto mode with the default device settings.
func DefaultConfig() Config {
	return Config{Mode: Auto, Device: DefaultDevice, VNI: DefaultVNI, Port: DefaultPort}
}

// Enabled says whether any peer may go through the overlay. The zero Config
// (Mode "") is None.
func (c Config) Enabled() bool { return c.Mode == Auto || c.Mode == VXLAN }

// Validate refuses settings the kernel would refuse, or take differently.
func (c Config) Validate() error {
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	if err := libmini.ValidateIfName("VXLAN device name", c.Device); err != nil {
		return err
	}
	if c.VNI < 1 || c.VNI > MaxVNI {
		return fmt.Errorf("invalid VXLAN VNI %d: must be 1-%d (24 bits)", c.VNI, MaxVNI)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("invalid VXLAN UDP port %d: must be 1-65535", c.Port)
	}
	return nil
}

// Overhead is what VXLAN adds to an inner packet over an underlay of
// underlay's family: outer IPv4 (20) or IPv6 (40) header, UDP (8), VXLAN
// (8) and the inner Ethernet header (14).
func Overhead(underlay netip.Addr) int {
	if underlay.Is4() {
		return 50
	}
	return 70
}

// MaxOverhead is the overhead over an IPv6 underlay: an MTU reduced by it is
// safe whatever the underlay.
const MaxOverhead = 70

// MAC is the VTEP MAC of the node whose underlay address is a: locally
// administered unicast (first byte 0x0a), 0a:58 and the 4 bytes of an IPv4
// address, or 0a:59 and the first 4 bytes of the SHA-256 of an IPv6 one.
// Each node sets its own device's MAC this way and computes its peers' the
// same, so no node needs to publish it.
func MAC(a netip.Addr) net.HardwareAddr {
	if a.Is4() {
		b := a.As4()
		return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
	}
	b := a.As16()
	sum := sha256.Sum256(b[:])
	return net.HardwareAddr{0x0a, 0x59, sum[0], sum[1], sum[2], sum[3]}
}

// NextHop is the address standing for a node's VTEP in pod's family: the
// network address of its pod subnet, which no pod is given (miniipam and
// host-local never hand it out). Routes to the subnet go via it, on link, and a
// permanent neighbour entry maps it to the VTEP MAC.
func NextHop(pod netip.Prefix) netip.Addr { return pod.Masked().Addr() }

// Underlay picks the address a node sends and receives VXLAN packets on
// from its InternalIPs: the first IPv4 one for which local is true, else the
// first IPv6 one; the zero Addr when none is. One device has one underlay
// family, so the peers' addresses of that family are their VTEPs.
func Underlay(internalIPs []netip.Addr, local func(netip.Addr) bool) netip.Addr {
	for _, v4 := range []bool{true, false} {
		for _, a := range internalIPs {
			if a.Is4() == v4 && local(a) {
				return a
			}
		}
	}
	return netip.Addr{}
}

// Peer is another node reached through the overlay.
type Peer struct {
	Node     string
	Underlay netip.Addr       // its VTEP address, an InternalIP of the underlay family
	MAC      net.HardwareAddr // MAC(Underlay)
	NextHops []netip.Addr     // NextHop of each of its pod subnets routed through the device
}

// Device is the wanted state of this node's VXLAN device.
type Device struct {
	Name  string
	VNI   int
	Port  int
	Local netip.Addr // this node's underlay address
	MTU   int
	// Addrs are the device's own addresses: the network address of this
	// node's IPv4 pod subnet as /32, the source of the node's own packets to
	// other nodes' pods. (Not the IPv6 one: the kernel gives the bridge that
	// address as its subnet-router anycast address, and replies to it would
	// not reach the node; the bridge's gateway address serves instead.)
	Addrs []netip.Prefix
}

// DeviceAddrs are the addresses a node's device holds for its pod subnets
// (see Device.Addrs).
func DeviceAddrs(podCIDRs []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range podCIDRs {
		if p.Addr().Is4() {
			out = append(out, netip.PrefixFrom(NextHop(p), 32))
		}
	}
	return out
}
