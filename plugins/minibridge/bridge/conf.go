// Package bridge is minibridge's logic: it attaches a pod to a Linux bridge
// with a veth pair, delegates addressing to the IPAM plugin named in
// ipam.type and configures the pod's side. Its functions return values (a
// result, an error) rather than printing, so tests drive it directly; the
// command in plugins/minibridge only decodes, dispatches and prints.
package bridge

import (
	"encoding/json"

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
