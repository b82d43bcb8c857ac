// Package bridge is minibridge's logic: it attaches a pod to a Linux bridge
// with a veth pair, delegates addressing to the IPAM plugin named in
// ipam.type and configures the pod's side. Its functions return values (a
// result, an error) rather than printing, so tests drive it directly; the
// command in plugins/minibridge only decodes, dispatches and prints.
package bridge

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/minicni/minicni/libmini"
)

// DefaultBridge is the bridge used when the config names none.
const DefaultBridge = "minicni0"

// NetConf is minibridge's network config. Unknown keys are ignored.
type NetConf struct {
	libmini.NetConf
	// Bridge is the Linux bridge the pods are attached to; created when missing.
	Bridge string `json:"bridge"`
	// MTU of the bridge and both veth ends; 0 means the MTU of the host
	// netns's default-route interface, or 1500 when there is none.
	MTU int `json:"mtu"`
	// IsGateway puts each IPAM gateway address on the bridge.
	IsGateway bool `json:"isGateway"`
	// IsDefaultGateway adds a default route via the gateway in the pod.
	IsDefaultGateway bool `json:"isDefaultGateway"`
	// HairpinMode lets a pod reach itself through the bridge (a Service
	// that load-balances back to the same pod). Off by default when
	// PromiscMode is on, because the two are alternative ways to do that.
	HairpinMode bool `json:"hairpinMode"`
	// PromiscMode puts the bridge in promiscuous mode.
	PromiscMode bool `json:"promiscMode"`
	// ForceAddress replaces a bridge address that conflicts with the
	// gateway (the node's subnet changed) instead of failing.
	ForceAddress bool `json:"forceAddress"`
	// Vlan (1-4094, 0 for none) turns VLAN filtering on for the bridge and
	// makes the host end an untagged port of that VLAN only (its PVID), as
	// the reference bridge does; the gateway then lives on VlanGateway.
	Vlan int `json:"vlan"`
	// PreserveDefaultVlan keeps the bridge's default VLAN (normally 1) on
	// the host end besides Vlan, as the reference bridge's key does.
	PreserveDefaultVlan bool `json:"preserveDefaultVlan"`
	// PortIsolation sets the bridge port flag "isolated" on the host end:
	// isolated ports reach only non-isolated ones (the gateway), never
	// each other.
	PortIsolation bool `json:"portIsolation"`
	// EnableDAD runs IPv6 duplicate address detection (accept_dad=1,
	// enhanced_dad=1) on the pod interface; off, the IPAM is trusted.
	EnableDAD bool `json:"enabledad"`
	// IPAMTimeoutRaw bounds each call of a delegated (executed) IPAM
	// plugin, a Go duration (default libmini.IPAMTimeout); the in-process
	// miniipam has its own ipam.lockTimeout instead.
	IPAMTimeoutRaw libmini.Duration `json:"ipamTimeout,omitempty"`
	// IPAMTimeout is ipamTimeout parsed.
	IPAMTimeout time.Duration `json:"-"`
	// LinkUpTimeoutRaw bounds ADD's wait for the host end of the veth to
	// be up, a Go duration (default DefaultUpTimeout).
	LinkUpTimeoutRaw libmini.Duration `json:"linkUpTimeout,omitempty"`
	// LinkUpTimeout is linkUpTimeout parsed.
	LinkUpTimeout time.Duration `json:"-"`
}

// refused are keys of the reference bridge plugin that change isolation or
// addressing and that minibridge does not implement: a config that sets one
// to anything but its default is refused, so swapping bridge for minibridge
// never silently drops what the key asked for.
var refused = []struct{ key, why string }{
	{"vlanTrunk", "VLAN trunk ports are not implemented"},
	{"macspoofchk", "the MAC spoof check is not implemented"},
	{"disableContainerInterface", "minibridge always sets the pod interface up (and the reference bridge refuses this key with an IPAM too)"},
	{"ipMasq", "minibridge does not masquerade: chain miniroute with masquerade true (or the reference ipMasq behaviour via another plugin)"},
}

// VlanGateway is the name of the link holding the gateway addresses of
// VLAN vid on bridge br: a veth whose peer is an untagged port of that
// VLAN, named as the reference bridge names it.
func VlanGateway(br string, vid int) string {
	return fmt.Sprintf("%s.%d", br, vid)
}

// LoadConf decodes minibridge's stdin, applies the defaults and validates
// every value. Errors are CNI errors: 6 for undecodable JSON, 1 for an
// unsupported cniVersion, 7 for invalid values.
func LoadConf(stdin []byte) (*NetConf, error) {
	conf := &NetConf{
		Bridge:           DefaultBridge,
		IsGateway:        true,
		IsDefaultGateway: true,
		HairpinMode:      true,
	}
	if err := libmini.Decode(stdin, conf); err != nil {
		return nil, err
	}
	if conf.IPAM.Type == "" {
		return nil, libmini.ConfigErrorf("missing ipam.type: minibridge delegates addressing to an IPAM plugin (miniipam, host-local, static, ...)")
	}
	if err := libmini.ValidateIfName("bridge", conf.Bridge); err != nil {
		return nil, err
	}
	if err := libmini.ValidateMTU("mtu", conf.MTU); err != nil {
		return nil, err
	}
	var err error
	if conf.IPAMTimeout, err = libmini.ParseDuration("ipamTimeout", conf.IPAMTimeoutRaw, libmini.IPAMTimeout, libmini.MaxLimit); err != nil {
		return nil, err
	}
	if conf.LinkUpTimeout, err = libmini.ParseDuration("linkUpTimeout", conf.LinkUpTimeoutRaw, DefaultUpTimeout, libmini.MaxLimit); err != nil {
		return nil, err
	}
	if err := checkRefused(stdin); err != nil {
		return nil, err
	}
	if conf.Vlan < 0 || conf.Vlan > 4094 {
		return nil, libmini.ConfigErrorf("invalid vlan %d: must be 0 (none) or 1-4094", conf.Vlan)
	}
	if conf.Vlan != 0 && conf.IsGateway {
		if err := libmini.ValidateIfName("the VLAN gateway link (bridge.vlan)", VlanGateway(conf.Bridge, conf.Vlan)); err != nil {
			return nil, err
		}
	}
	if conf.PromiscMode {
		// hairpinMode defaults to true; only an explicit true conflicts.
		var explicit struct {
			HairpinMode *bool `json:"hairpinMode"`
		}
		_ = json.Unmarshal(stdin, &explicit) // already decoded once above
		if explicit.HairpinMode == nil {
			conf.HairpinMode = false
		} else if *explicit.HairpinMode {
			return nil, libmini.ConfigErrorf("hairpinMode true and promiscMode true are alternatives: set only one")
		}
	}
	return conf, nil
}

// checkRefused fails with code 7 naming the first refused key set to a
// value other than its default (false, null or absent).
func checkRefused(stdin []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return libmini.Errorf(libmini.CodeDecode, "failed to decode network config: %v", err)
	}
	for _, r := range refused {
		v, ok := raw[r.key]
		if !ok || string(v) == "null" || string(v) == "false" {
			continue
		}
		return libmini.ConfigErrorf("%s %s is not supported by minibridge: %s; remove the key or use the reference bridge plugin", r.key, v, r.why)
	}
	return nil
}
