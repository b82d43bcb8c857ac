// Package conflist renders the node's CNI network configuration list from a
// template (the ConfigMap's conflist) and the node's pod subnets, and checks
// the result the way it will be used: through libcni and every minicni
// plugin's own LoadConf. It renders from its own types and never marshals a
// struct embedding types.PluginConf, whose marshaller drops a plugin's own
// keys (cni issue 1096).
package conflist

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/minicni/minicni/installer/nodes"
	ipamconfig "github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/minicni/minicni/plugins/miniroute/route"
)

// DefaultTemplate is the chain used when no template file is given: the
// repository's conflist/10-minicni.conflist (a test keeps them equal).
//
//go:embed template.conflist
var DefaultTemplate []byte

// Settings are the node-independent values that override the template. Zero
// values keep the template's.
type Settings struct {
	// ClusterCIDRs replace miniroute's clusterCIDR.
	ClusterCIDRs []string
	// Bridge replaces the main plugin's bridge name.
	Bridge string
	// MTU replaces the main plugin's mtu when not nil (0 means automatic).
	MTU *int
	// AutoMTU, when not 0, replaces an automatic mtu (0 or absent, from the
	// template or from MTU): the MTU that lets pods' packets cross the
	// VXLAN overlay, which minibridge's own automatic choice (the
	// default-route link's MTU) would not.
	AutoMTU int
}

// Range is one IPAM range as rendered: the node's pod subnet, whole.
type Range struct {
	Subnet string `json:"subnet"`
}

// Route is an IPAM route added for a family the template has none for.
type Route struct {
	Dst string `json:"dst"`
}

// flatRangeKeys are the legacy single-range ipam keys; rendered ranges
// replace them, or miniipam would see the template's subnet as a second set.
var flatRangeKeys = []string{"subnet", "rangeStart", "rangeEnd", "gateway"}

// Render fills the template with the node's pod CIDRs and the settings and
// returns the indented conflist, already validated with Validate. podCIDRs
// come from a Node object and are untrusted: any invalid value, or none, is
// an error and nothing is rendered.
//
// The plugin holding an "ipam" object (minibridge) gets one range set per
// pod CIDR, IPv4 first; its ipam routes keep the template's routes of the
// node's families, plus a default route for a family the template has no
// route for. miniroute's clusterCIDR comes from Settings when given, and
// each pod CIDR must lie inside the cluster CIDRs of its family.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func Render(template []byte, podCIDRs []string, s Settings) ([]byte, error) {
	pods, err := nodes.ParsePodCIDRs(podCIDRs)
	if err != nil {
		return nil, err
	}
	cluster, err := parseClusterCIDRs(s.ClusterCIDRs)
	if err != nil {
		return nil, err
	}
	if s.Bridge != "" {
		if err := libmini.ValidateIfName("bridge", s.Bridge); err != nil {
			return nil, err
		}
	}
	if s.MTU != nil {
		if err := libmini.ValidateMTU("mtu", *s.MTU); err != nil {
			return nil, err
		}
	}
	if err := libmini.ValidateMTU("overlay MTU", s.AutoMTU); err != nil {
		return nil, err
	}

	var top object
	if err := json.Unmarshal(template, &top); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var plugins []object
	if ok, err := top.get("plugins", &plugins); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("template: not a conflist (no \"plugins\" list)")
	}
	mains := 0
	for i := range plugins {
		p := &plugins[i]
		var typ string
		if _, err := p.get("type", &typ); err != nil {
			return nil, fmt.Errorf("template: plugins[%d]: %w", i, err)
		}
		if p.has("ipam") {
			mains++
			if err := renderMain(p, pods, s); err != nil {
				return nil, fmt.Errorf("template: plugins[%d] (%s): %w", i, typ, err)
			}
		}
		if typ == "miniroute" {
			if err := renderRoute(p, pods, cluster); err != nil {
				return nil, fmt.Errorf("template: plugins[%d] (%s): %w", i, typ, err)
			}
		}
	}
	if mains != 1 {
		return nil, fmt.Errorf("template: %d plugins have an \"ipam\" object, want exactly one (minibridge)", mains)
	}
	if err := top.set("plugins", plugins); err != nil {
		return nil, err
	}
	compact, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	if err := Validate(out.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// renderMain fills the main plugin (minibridge or another) of the template.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func renderMain(p *object, pods []netip.Prefix, s Settings) error {
	if s.Bridge != "" {
		if err := p.set("bridge", s.Bridge); err != nil {
			return err
		}
	}
	if s.MTU != nil {
		if err := p.set("mtu", *s.MTU); err != nil {
			return err
		}
	}
	if s.AutoMTU != 0 {
		var mtu int
		if _, err := p.get("mtu", &mtu); err != nil {
			return err
		}
		if mtu == 0 {
			if err := p.set("mtu", s.AutoMTU); err != nil {
				return err
			}
		}
	}
	var ipam object
	if _, err := p.get("ipam", &ipam); err != nil {
		return err
	}
	for _, k := range flatRangeKeys {
		ipam.del(k)
	}
	var sets [][]Range
	for _, pod := range pods {
		sets = append(sets, []Range{{Subnet: pod.String()}})
	}
	if err := ipam.set("ranges", sets); err != nil {
		return err
	}

	var routes []object
	if _, err := ipam.get("routes", &routes); err != nil {
		return err
	}
	var kept []any
	covered := map[bool]bool{} // by "is IPv4"
	for i, r := range routes {
		var dst string
		if _, err := r.get("dst", &dst); err != nil {
			return fmt.Errorf("ipam.routes[%d]: %w", i, err)
		}
		d, err := netip.ParsePrefix(dst)
		if err != nil {
			return fmt.Errorf("ipam.routes[%d]: invalid dst %q", i, dst)
		}
		if hasFamily(pods, d.Addr().Is4()) {
			kept = append(kept, r)
			covered[d.Addr().Is4()] = true
		}
	}
	for _, pod := range pods {
		if v4 := pod.Addr().Is4(); !covered[v4] {
			dst := "::/0"
			if v4 {
				dst = "0.0.0.0/0"
			}
			kept = append(kept, Route{Dst: dst})
			covered[v4] = true
		}
	}
	if err := ipam.set("routes", kept); err != nil {
		return err
	}
	return p.set("ipam", ipam)
}

func renderRoute(p *object, pods, cluster []netip.Prefix) error {
	if cluster != nil {
		strs := make([]string, len(cluster))
		for i, c := range cluster {
			strs[i] = c.String()
		}
		if err := p.set("clusterCIDR", strs); err != nil {
			return err
		}
	} else {
		var list route.CIDRList
		if _, err := p.get("clusterCIDR", &list); err != nil {
			return err
		}
		for _, c := range list {
			pc, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("invalid clusterCIDR %q", c)
			}
			cluster = append(cluster, pc)
		}
	}
	for _, pod := range pods {
		if !hasFamily(cluster, pod.Addr().Is4()) {
			continue // miniroute uses the pod subnet itself for this family
		}
		if !libmini.Within(pod, cluster) {
			return fmt.Errorf("podCIDR %s is outside clusterCIDR %v", pod, cluster)
		}
	}
	return nil
}

func hasFamily(ps []netip.Prefix, v4 bool) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr().Is4() == v4 })
}

// parseClusterCIDRs validates the cluster CIDR setting; nil means none given.
func parseClusterCIDRs(raw []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range raw {
		p, err := libmini.ParsePrefix("cluster CIDR", s, libmini.NotWhole)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Validate loads a conflist the way a runtime does (libcni), then hands each
// plugin's config, with the list's name and a cniVersion injected as libcni
// does before exec, to that plugin's LoadConf: minibridge, miniroute and the
// IPAM (miniipam, or host-local's own loader). Other plugin types are
// checked to be plain binary names. Each plugin is checked under every
// version a runtime may run the list at (RuntimeVersions).
func Validate(data []byte) error {
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return fmt.Errorf("libcni: %w", err)
	}
	if err := libmini.ValidateNetworkName(list.Name); err != nil {
		return err
	}
	versions, err := RuntimeVersions(data)
	if err != nil {
		return err
	}
	if len(list.Plugins) == 0 {
		return fmt.Errorf("conflist %q has no plugins", list.Name)
	}
	for _, v := range versions {
		for i, p := range list.Plugins {
			conf, err := libcni.InjectConf(p, map[string]any{"name": list.Name, "cniVersion": v})
			if err != nil {
				return fmt.Errorf("plugins[%d]: %w", i, err)
			}
			typ := conf.Network.Type
			if err := loadPlugin(typ, conf.Bytes); err != nil {
				return fmt.Errorf("plugins[%d] (%s) at cniVersion %q: %w", i, typ, v, err)
			}
			if it := conf.Network.IPAM.Type; it != "" {
				if err := loadPlugin(it, conf.Bytes); err != nil {
					return fmt.Errorf("plugins[%d] (%s) ipam at cniVersion %q: %w", i, typ, v, err)
				}
			}
		}
	}
	return nil
}

// RuntimeVersions returns the versions a runtime may run the conflist at,
// each one minicni supports: its cniVersion, which a libcni older than
// v1.2.0 (containerd 1.6's) uses, then every entry of cniVersions, of
// which a newer libcni uses the highest it implements (v1.3.1: up to
// 1.1.0), so the plugins get GC and STATUS there. A list with cniVersions
// must also say cniVersion: an older libcni reads only that key.
func RuntimeVersions(data []byte) ([]string, error) {
	var top struct {
		CNIVersion  *string  `json:"cniVersion"`
		CNIVersions []string `json:"cniVersions"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	var out []string
	if top.CNIVersion != nil {
		out = append(out, *top.CNIVersion)
	} else if len(top.CNIVersions) > 0 {
		return nil, libmini.ConfigErrorf("cniVersions %v without cniVersion: a runtime whose libcni predates cniVersions (containerd 1.6) reads only cniVersion", top.CNIVersions)
	} else {
		out = append(out, "")
	}
	for _, v := range top.CNIVersions {
		if v == "" {
			return nil, libmini.ConfigErrorf("cniVersions holds an empty version")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range out {
		if err := libmini.ValidateVersion(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func loadPlugin(typ string, conf []byte) error {
	var err error
	switch typ {
	case "minibridge":
		_, err = bridge.LoadConf(conf)
	case "miniroute":
		_, err = route.LoadConf(conf)
	case "miniipam":
		_, err = ipamconfig.LoadConf(conf, "")
	case "host-local":
		_, _, err = allocator.LoadIPAMConfig(conf, "")
	default:
		err = libmini.ValidatePluginType("type", typ)
	}
	return err
}

// Types returns the binaries a conflist runs: every plugin type and IPAM
// type, in order, without duplicates.
func Types(data []byte) ([]string, error) {
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Plugins {
		for _, t := range []string{p.Network.Type, p.Network.IPAM.Type} {
			if t != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out, nil
}
