// Package route is miniroute's logic: the node-level iptables rules that let
// pod traffic be forwarded and masqueraded, and the optional static routes to
// other nodes' pod subnets. Everything it ensures is derived from the config
// and the chain's prevResult, and is the same for every pod of a node, so ADD
// repairs drift and DEL has nothing to remove. It composes the pure rule
// model (package rules), the iptables processes (package backend) and the
// nf_tables generation stamps (package stamps); see the README's package map.
package route

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/backend"
)

// NetConf is miniroute's config.
type NetConf struct {
	libmini.NetConf
	// ClusterCIDR lists the cluster's pod CIDRs (normally one per family).
	// When a family has none, the networks of prevResult's addresses of that
	// family stand in for it.
	ClusterCIDR CIDRList `json:"clusterCIDR,omitempty"`
	// Masquerade: pod traffic leaving the cluster CIDR gets the node's
	// address (default true).
	Masquerade bool `json:"masquerade"`
	// Forward: the FORWARD chain accepts traffic from and to the cluster
	// CIDR (default true).
	Forward bool `json:"forward"`
	// Routes are static routes ensured in the namespace miniroute runs in
	// (the node's): the manual `ip route add` for clusters without the
	// installer's route agent.
	Routes []Static `json:"routes,omitempty"`
	// IPTablesMode forces the iptables mode: "legacy" or "nf_tables";
	// "auto" (the default) detects it (see backend.Decide).
	IPTablesMode string `json:"iptablesMode,omitempty"`
	// LockTimeoutRaw bounds the wait for the locks of iptables writers:
	// miniroute's namespace lock and, with the legacy iptables, the
	// xtables lock (a Go duration, default backend.DefaultLockTimeout).
	LockTimeoutRaw libmini.Duration `json:"lockTimeout,omitempty"`
	// ExecTimeoutRaw bounds each iptables exec (a Go duration, default
	// backend.DefaultTimeout).
	ExecTimeoutRaw libmini.Duration `json:"execTimeout,omitempty"`

	// Mode is IPTablesMode parsed: "" for auto.
	Mode backend.Mode `json:"-"`
	// Cluster is ClusterCIDR parsed, without duplicates.
	Cluster []netip.Prefix `json:"-"`
	// LockTimeout and ExecTimeout are the parsed settings.
	LockTimeout time.Duration `json:"-"`
	ExecTimeout time.Duration `json:"-"`
}

// Static is one static route: Dst through the gateway Via.
type Static struct {
	Dst string `json:"dst"`
	Via string `json:"via"`

	DstNet netip.Prefix `json:"-"`
	ViaIP  netip.Addr   `json:"-"`
}

func (r Static) String() string { return r.DstNet.String() + " via " + r.ViaIP.String() }

// CIDRList is a list of CIDRs that also accepts a single string, as an admin
// writing "clusterCIDR": "172.18.0.0/16" means.
type CIDRList []string

// UnmarshalJSON accepts a JSON string or a list of strings.
func (l *CIDRList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = CIDRList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("clusterCIDR must be a CIDR or a list of CIDRs: %w", err)
	}
	*l = many
	return nil
}

// LoadConf decodes and validates miniroute's config: a JSON failure is CNI
// error 6, an invalid value error 7 naming the value.
func LoadConf(stdin []byte) (*NetConf, error) {
	conf := &NetConf{Masquerade: true, Forward: true}
	if err := libmini.Decode(stdin, conf); err != nil {
		return nil, err
	}
	if err := conf.validate(); err != nil {
		return nil, err
	}
	return conf, nil
}

func (c *NetConf) validate() error {
	m, err := backend.ParseMode(c.IPTablesMode)
	if err != nil {
		return libmini.ConfigErrorf("invalid iptablesMode %q: %v", c.IPTablesMode, err)
	}
	c.Mode = m
	if c.LockTimeout, err = libmini.ParseDuration("lockTimeout", c.LockTimeoutRaw, backend.DefaultLockTimeout, libmini.MaxLimit); err != nil {
		return err
	}
	if c.ExecTimeout, err = libmini.ParseDuration("execTimeout", c.ExecTimeoutRaw, backend.DefaultTimeout, libmini.MaxLimit); err != nil {
		return err
	}
	seen := map[netip.Prefix]bool{}
	for i, s := range c.ClusterCIDR {
		n, err := libmini.ParsePrefix(fmt.Sprintf("clusterCIDR[%d]", i), s, libmini.NotWhole)
		if err != nil {
			return err
		}
		if !seen[n] {
			seen[n] = true
			c.Cluster = append(c.Cluster, n)
		}
	}
	dsts := map[netip.Prefix]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		field := fmt.Sprintf("routes[%d]", i)
		if r.Dst == "" {
			return libmini.ConfigErrorf("%s.dst is missing", field)
		}
		if r.Via == "" {
			return libmini.ConfigErrorf("%s.via is missing (route to %q)", field, r.Dst)
		}
		var err error
		if r.DstNet, err = libmini.ParsePrefix(field+".dst", r.Dst); err != nil {
			return err
		}
		if r.ViaIP, err = libmini.ParseAddr(field+".via", r.Via, libmini.Unicast); err != nil {
			return err
		}
		if r.DstNet.Addr().Is4() != r.ViaIP.Is4() {
			return libmini.ConfigErrorf("invalid %s: dst %q and via %q are of different IP families", field, r.Dst, r.Via)
		}
		if j, dup := dsts[r.DstNet]; dup {
			return libmini.ConfigErrorf("invalid %s.dst %q: routes[%d] already has this destination", field, r.Dst, j)
		}
		dsts[r.DstNet] = i
	}
	return nil
}
