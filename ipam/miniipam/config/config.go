// Package config decodes and validates miniipam's configuration. It reads the
// same ipam keys as the reference host-local plugin (ranges, the flat legacy
// subnet/rangeStart/rangeEnd/gateway, routes, dataDir, resolvConf, and static
// requests through runtimeConfig.ips, args.cni.ips and CNI_ARGS IP=), so an
// admin swaps one IPAM for the other by changing ipam.type.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/minicni/minicni/libmini"
)

// DefaultDataDir is where reservations live when ipam.dataDir is not set:
// the reference host-local's default, so both find the same store.
const DefaultDataDir = "/var/lib/cni/networks"

// DefaultLockTimeout is how long a command waits for the network's lock
// when ipam.lockTimeout is not set. It is below libmini.IPAMTimeout (60 s),
// so a plugin delegating to miniipam gets miniipam's "try again later"
// rather than its own deadline.
const DefaultLockTimeout = 30 * time.Second

// NetConf is miniipam's configuration: the network config a runtime (or a
// main plugin delegating to miniipam) passes on stdin. The exported fields
// below the decoded ones are derived by LoadConf.
type NetConf struct {
	libmini.NetConf
	IPAM          IPAM          `json:"ipam"`
	RuntimeConfig RuntimeConfig `json:"runtimeConfig"`
	Args          struct {
		CNI struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`

	// Sets are the canonical range sets, in host-local's order
	// (runtimeConfig.ipRanges, the flat subnet, ipam.ranges). Set i owns
	// last_reserved_ip.i.
	Sets []RangeSet `json:"-"`
	// Requested holds, per set, the statically requested address (the zero
	// Addr when the set allocates dynamically).
	Requested []netip.Addr `json:"-"`
	// Routes are the validated ipam.routes.
	Routes []*types.Route `json:"-"`
	// DataDir is ipam.dataDir or DefaultDataDir, cleaned.
	DataDir string `json:"-"`
	// LockTimeout is ipam.lockTimeout or DefaultLockTimeout.
	LockTimeout time.Duration `json:"-"`
	// Attachments is the GC list (cni.dev/valid-attachments, or the older
	// cni.dev/attachments, read by libmini's GCAttachments); HasAttachments
	// says whether either key was sent: GC without any list is refused
	// rather than treated as "nothing is live".
	Attachments    []types.GCAttachment `json:"-"`
	HasAttachments bool                 `json:"-"`
}

// IPAM is the ipam object, with the flat legacy range keys inline.
type IPAM struct {
	Type string `json:"type"`
	RangeJSON
	Ranges     [][]RangeJSON `json:"ranges"`
	Routes     []RouteJSON   `json:"routes"`
	DataDir    string        `json:"dataDir"`
	ResolvConf string        `json:"resolvConf"`
	// LogFile overrides the top-level logFile for miniipam's own lines.
	LogFile string `json:"logFile"`
	// LockTimeout bounds the wait for the network's lock (a Go duration).
	LockTimeout libmini.Duration `json:"lockTimeout"`
}

// RuntimeConfig holds the capabilities miniipam honours, as host-local does.
type RuntimeConfig struct {
	IPs      []string      `json:"ips"`
	IPRanges [][]RangeJSON `json:"ipRanges"`
}

// RangeJSON is one range as written in the config.
type RangeJSON struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

// RouteJSON is one route as written in the config (types.Route's keys).
type RouteJSON struct {
	Dst      string `json:"dst"`
	GW       string `json:"gw"`
	MTU      int    `json:"mtu"`
	AdvMSS   int    `json:"advmss"`
	Priority int    `json:"priority"`
	Table    *int   `json:"table"`
	Scope    *int   `json:"scope"`
}

// LoadConf decodes stdin and the CNI_ARGS string envArgs, applies defaults
// and validates everything. Errors are CNI errors: 6 for undecodable JSON, 7
// for an invalid value (the message names it), 4 for a malformed CNI_ARGS, 1
// for an unsupported cniVersion.
func LoadConf(stdin []byte, envArgs string) (*NetConf, error) {
	conf := &NetConf{}
	if err := libmini.Decode(stdin, conf); err != nil {
		return nil, err
	}
	if conf.CNIVersion == "" {
		conf.CNIVersion = "0.1.0" // the spec's meaning of a missing version
	}
	if conf.IPAM.Type != "" {
		if err := libmini.ValidatePluginType("ipam.type", conf.IPAM.Type); err != nil {
			return nil, err
		}
	}
	if conf.IPAM.LogFile != "" {
		conf.LogFile = conf.IPAM.LogFile
	}
	conf.DataDir = DefaultDataDir
	if d := conf.IPAM.DataDir; d != "" {
		if !filepath.IsAbs(d) {
			return nil, libmini.ConfigErrorf("invalid ipam.dataDir %q: must be an absolute path", d)
		}
		conf.DataDir = filepath.Clean(d)
	}
	var err error
	if conf.LockTimeout, err = libmini.ParseDuration("ipam.lockTimeout", conf.IPAM.LockTimeout, DefaultLockTimeout, libmini.MaxLimit); err != nil {
		return nil, err
	}
	if err := conf.loadSets(); err != nil {
		return nil, err
	}
	if err := conf.loadRoutes(); err != nil {
		return nil, err
	}
	if err := conf.loadRequested(envArgs); err != nil {
		return nil, err
	}
	if err := conf.loadAttachments(); err != nil {
		return nil, err
	}
	return conf, nil
}

// loadSets builds c.Sets from runtimeConfig.ipRanges, the flat ipam.subnet
// keys and ipam.ranges, in that order, checking that each set is of one
// family, that no two ranges overlap and the number of sets per family for
// the cniVersion. It is longer than most functions because it
// is one list of checks, each with its own error text; the address
// vocabulary of issue 16 moves the prefix checks into libmini.
func (c *NetConf) loadSets() error {
	type labelled struct {
		label string
		set   []RangeJSON
	}
	var raw []labelled
	for i, s := range c.RuntimeConfig.IPRanges {
		raw = append(raw, labelled{fmt.Sprintf("runtimeConfig.ipRanges[%d]", i), s})
	}
	flat := c.IPAM.RangeJSON
	if flat.Subnet != "" {
		raw = append(raw, labelled{"ipam", []RangeJSON{flat}})
	} else if flat != (RangeJSON{}) {
		return libmini.ConfigErrorf("ipam.rangeStart, ipam.rangeEnd or ipam.gateway given without ipam.subnet")
	}
	for i, s := range c.IPAM.Ranges {
		raw = append(raw, labelled{fmt.Sprintf("ipam.ranges[%d]", i), s})
	}
	if len(raw) == 0 {
		return libmini.ConfigErrorf("no address ranges: set ipam.ranges or ipam.subnet")
	}
	type placed struct {
		label string
		r     Range
	}
	var all []placed
	perFamily := map[int]int{}
	for _, l := range raw {
		if len(l.set) == 0 {
			return libmini.ConfigErrorf("%s is an empty range set", l.label)
		}
		var set RangeSet
		for j, rj := range l.set {
			label := l.label
			if label != "ipam" {
				label = fmt.Sprintf("%s[%d]", l.label, j)
			}
			r, err := parseRange(label, rj)
			if err != nil {
				return err
			}
			if len(set) > 0 && set[0].Subnet.Addr().BitLen() != r.Subnet.Addr().BitLen() {
				return libmini.ConfigErrorf("%s mixes address families: %s and %s", l.label, set[0].Subnet, r.Subnet)
			}
			for _, p := range all {
				if p.r.Overlaps(r) {
					return libmini.ConfigErrorf("%s (%s) overlaps %s (%s)", label, r, p.label, p.r)
				}
			}
			all = append(all, placed{label, r})
			set = append(set, r)
		}
		perFamily[set[0].Subnet.Addr().BitLen()]++
		c.Sets = append(c.Sets, set)
	}
	if perFamily[32] > 1 || perFamily[128] > 1 {
		if ok, _ := cniversion.GreaterThanOrEqualTo(c.CNIVersion, "0.3.0"); !ok {
			return libmini.ConfigErrorf("cniVersion %s allows at most one IPv4 and one IPv6 range set, got %d and %d",
				c.CNIVersion, perFamily[32], perFamily[128])
		}
	}
	return nil
}

// parseRange checks one range of a set: subnet, rangeStart, rangeEnd and
// gateway, each inside the subnet and of its family. It is longer than most
// functions because it is one list of checks, each with its own error text
// naming label's key.
func parseRange(label string, rj RangeJSON) (Range, error) {
	var r Range
	if rj.Subnet == "" {
		return r, libmini.ConfigErrorf("missing %s.subnet", label)
	}
	subnet, err := libmini.ParsePrefix(label+".subnet", rj.Subnet, libmini.RoomForPods)
	if err != nil {
		return r, err
	}
	bits := subnet.Addr().BitLen()
	r.Subnet = subnet
	network := subnet.Addr()
	last := lastAddr(subnet)
	usable := func(a netip.Addr) bool {
		return a != network && (bits == 128 || a != last)
	}
	inSubnet := func(field, s string) (netip.Addr, error) {
		a, err := libmini.ParseAddr(label+"."+field, s)
		if err != nil {
			return a, err
		}
		if !subnet.Contains(a) {
			return a, libmini.ConfigErrorf("invalid %s.%s %q: outside subnet %s", label, field, s, subnet)
		}
		return a, nil
	}

	r.Gateway = network.Next()
	if rj.Gateway != "" {
		if r.Gateway, err = inSubnet("gateway", rj.Gateway); err != nil {
			return r, err
		}
		if !usable(r.Gateway) {
			return r, libmini.ConfigErrorf("invalid %s.gateway %q: the network or broadcast address of %s", label, rj.Gateway, subnet)
		}
	}
	// The network address and the IPv4 broadcast address are never handed
	// out, even when an explicit rangeStart/rangeEnd includes them (the
	// reference host-local would).
	r.Start = network.Next()
	if rj.RangeStart != "" {
		if r.Start, err = inSubnet("rangeStart", rj.RangeStart); err != nil {
			return r, err
		}
	}
	r.End = last
	if bits == 32 {
		r.End = last.Prev()
	}
	if rj.RangeEnd != "" {
		if r.End, err = inSubnet("rangeEnd", rj.RangeEnd); err != nil {
			return r, err
		}
	}
	if r.Start.Compare(r.End) > 0 {
		return r, libmini.ConfigErrorf("invalid %s: rangeStart %s is after rangeEnd %s", label, r.Start, r.End)
	}
	given := fmt.Sprintf("%s-%s", r.Start, r.End)
	if r.Start == network {
		r.Start = r.Start.Next()
	}
	if bits == 32 && r.End == last {
		r.End = r.End.Prev()
	}
	if r.Start.Compare(r.End) > 0 || (r.Start == r.End && r.Start == r.Gateway) {
		return r, libmini.ConfigErrorf("invalid %s: range %s holds no assignable address", label, given)
	}
	return r, nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		hostBits := max(0, min(8, (i+1)*8-p.Bits()))
		b[i] |= byte(1<<hostBits - 1)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (c *NetConf) loadRoutes() error {
	for i, rj := range c.IPAM.Routes {
		field := fmt.Sprintf("ipam.routes[%d]", i)
		if rj.Dst == "" {
			return libmini.ConfigErrorf("missing %s.dst", field)
		}
		dst, err := libmini.ParsePrefix(field+".dst", rj.Dst)
		if err != nil {
			return err
		}
		route := &types.Route{
			Dst:      net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
			MTU:      rj.MTU,
			AdvMSS:   rj.AdvMSS,
			Priority: rj.Priority,
			Table:    rj.Table,
			Scope:    rj.Scope,
		}
		if rj.GW != "" {
			gw, err := libmini.ParseAddr(field+".gw", rj.GW)
			if err != nil {
				return err
			}
			if gw.BitLen() != dst.Addr().BitLen() {
				return libmini.ConfigErrorf("invalid %s.gw %q: not the address family of dst %s", field, rj.GW, rj.Dst)
			}
			route.GW = gw.AsSlice()
		}
		c.Routes = append(c.Routes, route)
	}
	return nil
}

// loadRequested reads the statically requested addresses (CNI_ARGS IP=,
// args.cni.ips, runtimeConfig.ips) into c.Requested, one per range set at
// most.
func (c *NetConf) loadRequested(envArgs string) error {
	type req struct {
		field string
		addr  netip.Addr
	}
	var reqs []req
	for _, pair := range strings.Split(envArgs, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return types.NewError(libmini.CodeInvalidEnv, fmt.Sprintf("invalid CNI_ARGS pair %q: want KEY=VALUE", pair), "CNI_ARGS="+envArgs)
		}
		if k != "IP" {
			continue
		}
		a, err := libmini.ParseAddr("CNI_ARGS IP", v, libmini.PrefixLenIgnored,
			libmini.WithCode(libmini.CodeInvalidEnv, "CNI_ARGS="+envArgs))
		if err != nil {
			return err
		}
		reqs = append(reqs, req{"CNI_ARGS IP", a})
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"args.cni.ips", c.Args.CNI.IPs}, {"runtimeConfig.ips", c.RuntimeConfig.IPs}} {
		for _, s := range l.list {
			a, err := libmini.ParseAddr(l.field+" entry", s, libmini.PrefixLenIgnored)
			if err != nil {
				return err
			}
			reqs = append(reqs, req{l.field, a})
		}
	}
	c.Requested = make([]netip.Addr, len(c.Sets))
	for _, r := range reqs {
		i, rng, ok := c.setFor(r.addr)
		if !ok {
			return libmini.ConfigErrorf("requested address %s (%s) is not inside any range", r.addr, r.field)
		}
		if r.addr == rng.Gateway {
			return libmini.ConfigErrorf("requested address %s (%s) is the gateway of %s", r.addr, r.field, rng.Subnet)
		}
		if prev := c.Requested[i]; prev.IsValid() && prev != r.addr {
			return libmini.ConfigErrorf("requested addresses %s and %s both fall in range set %d (%s); one address per set",
				prev, r.addr, i, c.Sets[i])
		}
		c.Requested[i] = r.addr
	}
	return nil
}

// setFor returns the index of the set holding a within one of its ranges.
func (c *NetConf) setFor(a netip.Addr) (int, Range, bool) {
	for i, s := range c.Sets {
		if r, ok := s.RangeFor(a); ok {
			return i, r, true
		}
	}
	return 0, Range{}, false
}

func (c *NetConf) loadAttachments() error {
	var err error
	c.Attachments, c.HasAttachments, err = c.GCAttachments()
	return err
}
