package route

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// Node is where Add, Check and Status act, and what they act with: the
// iptables backend of each family, in the namespace the plugin runs in, the
// stamps, and a logger. The miniroute binary builds one (NewNode) per call;
// tests build their own.
type Node struct {
	// IPTables returns the backend of a family; nil means backend.New.
	IPTables func(rules.Family) Backend
	// Log receives what miniroute changed; nil discards it.
	Log *slog.Logger
	// Stamps, when set, let ADD skip reading a family's ruleset while the
	// namespace's nf_tables generation is the one it was verified at.
	Stamps *stamps.Stamps
	// Modes, when set, is where the namespace's iptables mode is detected
	// and kept for the boot (backend.ModeCache); the backend.Exec that
	// IPTables returns is then pinned to it. nil leaves the backends as
	// IPTables makes them: the plain iptables-save and -restore.
	Modes *backend.ModeCache

	// mode pins the backend.Exec backends (withMode).
	mode backend.Mode
}

// NewNode is the binary's Node: the real iptables backends with their
// default timeout, the stamps and the cached iptables mode in
// stamps.DefaultDir, and log.
func NewNode(log *slog.Logger) Node {
	return Node{
		IPTables: func(f rules.Family) Backend { return backend.New(f) },
		Log:      log,
		Stamps:   stamps.Default(),
		Modes:    &backend.ModeCache{Dir: stamps.DefaultDir},
	}
}

// NewNodeFor is NewNode with conf's limits: each iptables exec bounded by
// conf.ExecTimeout, each lock wait by conf.LockTimeout.
func NewNodeFor(conf *NetConf, log *slog.Logger) Node {
	n := NewNode(log)
	n.IPTables = func(f rules.Family) Backend {
		e := backend.New(f)
		e.Timeout, e.LockTimeout = conf.ExecTimeout, conf.LockTimeout
		return e
	}
	return n
}

func (n Node) backend(f rules.Family) Backend {
	var b Backend
	if n.IPTables == nil {
		b = backend.New(f)
	} else {
		b = n.IPTables(f)
	}
	if e, ok := b.(backend.Exec); ok && e.Mode == "" {
		e.Mode = n.mode
		return e
	}
	return b
}

// withMode is n with its exec backends pinned to the iptables mode conf
// forces, or else to the one n.Modes decides (the plain tools when nothing on
// the node asks for a mode). The decision is logged when it is made, not
// when it comes from the cache.
func (n Node) withMode(ctx context.Context, conf *NetConf) Node {
	switch {
	case conf.Mode != "":
		n.mode = conf.Mode
	case n.Modes != nil:
		d, cached, err := n.Modes.Decide(ctx, nil)
		if err != nil {
			n.log().Warn("iptables mode: using the plain iptables tools", "err", err)
		} else if !cached {
			n.log().Info("iptables mode detected", "mode", string(d.Mode), "pinned", d.Pin() != "", "reason", d.Reason)
		}
		n.mode = d.Pin()
	}
	return n
}

// stamp is the stamp of s's rules when n keeps stamps and b's changes bump
// the nf_tables generation (backend.Exec with iptables-nft); otherwise the
// zero Stamp, which is never fresh and records nothing.
func (n Node) stamp(b Backend, s rules.Spec) stamps.Stamp {
	nft, ok := b.(interface{ NFTables() bool })
	if n.Stamps == nil || !ok || !nft.NFTables() {
		return stamps.Stamp{}
	}
	return n.Stamps.Lookup(s.Family, s.Digest())
}

func (n Node) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return n.Log
}

// prevResult is conf's prevResult, which a chained plugin cannot do without.
func prevResult(conf *NetConf) (*current.Result, error) {
	prev, err := libmini.PrevResult(&conf.NetConf)
	if err != nil {
		return nil, err
	}
	if prev == nil {
		return nil, libmini.Errorf(libmini.CodeNoPrevResult,
			"miniroute needs a prevResult: run it in a chain after an interface plugin such as minibridge")
	}
	return prev, nil
}

// Add ensures the node-level rules for the families of prevResult's
// addresses and the static routes, and returns prevResult unchanged.
// Nothing in it is per pod, so a failed ADD has nothing of its own to undo.
func Add(ctx context.Context, conf *NetConf, node Node) (*current.Result, error) {
	prev, err := prevResult(conf)
	if err != nil {
		return nil, err
	}
	specs, err := Specs(conf, prev)
	if err != nil {
		return nil, err
	}
	if len(specs) > 0 && (conf.Forward || conf.Masquerade) {
		node = node.withMode(ctx, conf)
	}
	for _, s := range specs {
		if s.Empty() {
			continue
		}
		b := node.backend(s.Family)
		st := node.stamp(b, s)
		if st.Fresh() {
			continue
		}
		changed, err := Ensure(ctx, b, s)
		if err != nil {
			return nil, err
		}
		if changed {
			node.log().Info("ensured iptables rules", "family", s.Family.String())
		} else {
			// Verified in place at a generation no older than the stamp's.
			st.Record()
		}
	}
	if err := EnsureStatic(conf.Routes); err != nil {
		return nil, err
	}
	return prev, nil
}

// Check reports every missing rule and static route in one CodeCheckFailed
// error.
func Check(ctx context.Context, conf *NetConf, node Node) error {
	prev, err := prevResult(conf)
	if err != nil {
		return err
	}
	specs, err := Specs(conf, prev)
	if err != nil {
		return err
	}
	if len(specs) > 0 && (conf.Forward || conf.Masquerade) {
		node = node.withMode(ctx, conf)
	}
	var problems []string
	for _, s := range specs {
		err := CheckRules(ctx, node.backend(s.Family), s)
		if e, ok := libmini.AsCNIError(err); ok && e.Code == libmini.CodeCheckFailed {
			problems = append(problems, e.Msg)
		} else if err != nil {
			return err
		}
	}
	missing, err := CheckStatic(conf.Routes)
	if err != nil {
		return err
	}
	problems = append(problems, missing...)
	if len(problems) > 0 {
		return libmini.Errorf(libmini.CodeCheckFailed, "miniroute: %s", strings.Join(problems, "; "))
	}
	return nil
}

func familyOf(a netip.Addr) rules.Family {
	if a.Is4() {
		return rules.IPv4
	}
	return rules.IPv6
}

// Specs derives each family's rules.Spec from conf and prevResult, for the
// families of prevResult's addresses (rules.IPv4 first). The pod subnets are the
// networks of those addresses; a host prefix (/32, /128) inside a cluster
// CIDR stands for that CIDR, so an IPAM handing out host prefixes does not
// add a rule per pod. A family without clusterCIDR uses its pod subnets as
// the cluster; a pod subnet outside the family's clusterCIDR is CNI error 7.
func Specs(conf *NetConf, prev *current.Result) ([]rules.Spec, error) {
	var specs []rules.Spec
	for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
		s := rules.Spec{Family: f, Forward: conf.Forward, Masquerade: conf.Masquerade}
		for _, c := range conf.Cluster {
			if familyOf(c.Addr()) == f {
				s.Cluster = append(s.Cluster, c)
			}
		}
		seen := map[netip.Prefix]bool{}
		found := false
		for _, ipc := range prev.IPs {
			if ipc == nil {
				continue
			}
			n, ok := network(ipc.Address)
			if !ok || familyOf(n.Addr()) != f {
				continue
			}
			found = true
			if n.IsSingleIP() {
				for _, c := range s.Cluster {
					if c.Contains(n.Addr()) {
						n = c
						break
					}
				}
			}
			if len(s.Cluster) > 0 && !libmini.Within(n, s.Cluster) {
				return nil, libmini.ConfigErrorf("pod subnet %s (prevResult address %s) is outside clusterCIDR %s",
					n, ipc.Address.String(), strings.Join(conf.ClusterCIDR, ", "))
			}
			if !seen[n] {
				seen[n] = true
				s.PodNets = append(s.PodNets, n)
			}
		}
		if !found {
			continue
		}
		if len(s.Cluster) == 0 {
			s.Cluster = s.PodNets
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// network is the subnet of a prevResult address, IPv4 in its own family
// whether the address came in 4- or 16-byte form (with a 4- or 16-byte
// mask); false when there is no address.
func network(a net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := a.Mask.Size()
	if ip.Is4() && bits == 8*net.IPv6len {
		ones -= 8 * (net.IPv6len - net.IPv4len)
	}
	return netip.PrefixFrom(ip, max(ones, 0)).Masked(), true
}
