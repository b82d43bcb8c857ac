package main

import (
	"path/filepath"
	"testing"

	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// badBridge is the bridge of the bad-input runs: a fixed name is safe,
// each run has its own node namespace.
const badBridge = "mbt0"

// badNetwork is the valid network of a bad-input run: minibridge on
// badBridge, the reference host-local with its state in r.DataDir/net.
func badNetwork(r *minitest.Run) *network {
	return &network{typ: "minibridge", name: "net", br: badBridge, ipam: "host-local", dataDir: r.DataDir,
		subnets: []string{"10.36.0.0/24"}, extra: map[string]any{}, ipamExtra: map[string]any{}}
}

// badConf is the config of badNetwork after edit.
func badConf(edit func(*network)) func(*minitest.Run) string {
	return func(r *minitest.Run) string {
		n := badNetwork(r)
		edit(n)
		return string(n.conf(r.T, r.Ver, nil))
	}
}

// hostLocalLeftovers are what the reference host-local leaves in its data
// dir after an ADD rolled back by its DEL: its lock and its last-reserved
// marker (the reservation itself is gone).
var hostLocalLeftovers = []string{"net/", "net/lock", "net/last_reserved_ip.0"}

// TestBadInput runs the real binary with broken configs, environments and
// nodes, the ones every plugin refuses (minitest.CommonBadInputs) and
// minibridge's own, in every CNI version: each must print the whole CNI
// error object and exit 1, and leave the node, the pod and the IPAM's data
// as they were: no veth, no reservation, including after the IPAM's ADD.
func TestBadInput(t *testing.T) {
	cases := []minitest.BadInput{
		{Name: "16-byte bridge name", Conf: badConf(func(n *network) { n.br = "br-4567890123456" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{"br-4567890123456"}},
		{Name: "slash in bridge name", Conf: badConf(func(n *network) { n.br = "br/0" }), Code: libmini.CodeInvalidConfig, Mention: []string{"br/0"}},
		{Name: "mtu 10", Conf: badConf(func(n *network) { n.extra["mtu"] = 10 }), Code: libmini.CodeInvalidConfig, Mention: []string{"10"}},
		{Name: "mtu not a number", Conf: badConf(func(n *network) { n.extra["mtu"] = "big" }), Code: libmini.CodeDecode, Mention: []string{"mtu"}},
		{Name: "ipamTimeout not a duration", Conf: badConf(func(n *network) { n.extra["ipamTimeout"] = "1 minute" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{`invalid ipamTimeout "1 minute"`}},
		{Name: "ipamTimeout too long", Conf: badConf(func(n *network) { n.extra["ipamTimeout"] = "5m" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{`invalid ipamTimeout "5m": must be more than 0 and at most 2m0s`}},
		{Name: "linkUpTimeout negative", Conf: badConf(func(n *network) { n.extra["linkUpTimeout"] = "-5s" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{`invalid linkUpTimeout "-5s"`}},
		{Name: "in-process miniipam lockTimeout zero", Conf: badConf(func(n *network) { n.ipam = "miniipam"; n.ipamExtra["lockTimeout"] = "0ms" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{`invalid ipam.lockTimeout "0ms"`}},
		{Name: "isGateway not a bool", Conf: badConf(func(n *network) { n.extra["isGateway"] = "yes" }), Code: libmini.CodeDecode, Mention: []string{"isGateway"}},
		{Name: "no ipam", Conf: func(r *minitest.Run) string {
			return `{"cniVersion":"` + r.Ver + `","name":"net","type":"minibridge"}`
		}, Code: libmini.CodeInvalidConfig, Mention: []string{"ipam"}},
		{Name: "ipam type with slash", Conf: badConf(func(n *network) { n.ipam = "../host-local" }),
			Code: libmini.CodeInvalidConfig, Mention: []string{"../host-local"}},
		{Name: "ipam not in CNI_PATH", Conf: badConf(func(n *network) { n.ipam = "no-such-ipam" }),
			Code: libmini.CodeIPAM, Mention: []string{"no-such-ipam"}},
		{Name: "hairpin and promisc", Conf: badConf(func(n *network) { n.extra["hairpinMode"] = true; n.extra["promiscMode"] = true }),
			Code: libmini.CodeInvalidConfig, Mention: []string{"promiscMode"}},
		{Name: "CNI_NETNS does not exist", Env: minitest.SetEnv("CNI_NETNS", "/run/netns/minibridge-no-such-netns"),
			Code: libmini.CodeInvalidEnv, Var: "CNI_NETNS", Mention: []string{"no-such-netns"}},
		{Name: "CNI_NETNS a plain file", Env: minitest.SetEnv("CNI_NETNS", "/proc/self/status"),
			Code: libmini.CodeInvalidEnv, Var: "CNI_NETNS", Mention: []string{"/proc/self/status"}},
		{Name: "IPAM returns no address", Conf: badConf(func(n *network) { n.ipam = "fake-noaddr" }),
			Code: libmini.CodeIPAM, Mention: []string{"no IP address"}},
		{Name: "IPAM fails with its own code", Conf: badConf(func(n *network) { n.ipam = "fake-fail" }),
			Code: libmini.CodeTryAgainLater, Mention: []string{"busy"}},
		{Name: "bridge name taken by a veth", Prepare: func(t *testing.T, r *minitest.Run) {
			ipCmd(t, r.Host, "link", "add", badBridge, "type", "veth", "peer", "name", badBridge+"p")
		}, Code: libmini.CodeLink, Mention: []string{"not a bridge"}, Infra: hostLocalLeftovers},
		// A node's bridge, up, holding the old subnet's gateway: it keeps
		// its address (the snapshot sees any change).
		{Name: "gateway conflict", Prepare: func(t *testing.T, r *minitest.Run) {
			ipCmd(t, r.Host, "link", "add", badBridge, "type", "bridge")
			ipCmd(t, r.Host, "addr", "add", "10.99.9.1/24", "dev", badBridge)
			ipCmd(t, r.Host, "link", "set", badBridge, "up")
		}, Code: libmini.CodeGatewayConflict, Mention: []string{"10.99.9.1/24", "10.36.0.1/24"}, Infra: hostLocalLeftovers},
		// The only failure after the bridge is made: it stays, with its
		// gateway address, as node infrastructure.
		{Name: "pod ifname taken", Prepare: func(t *testing.T, r *minitest.Run) {
			ipCmd(t, r.Pod, "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
		}, Code: libmini.CodeLink, Mention: []string{"eth0"}, Infra: append([]string{badBridge}, hostLocalLeftovers...)},
		{Name: "CHECK without prevResult", Cmd: "CHECK", Versions: minitest.From("0.4.0"), Code: libmini.CodeNoPrevResult},
	}
	minitest.RequireRoot(t)
	minitest.Harness{
		Bin:  filepath.Join(binDir, "minibridge"),
		Good: badConf(func(*network) {}),
		// The fake IPAMs keep their "reservations" in the data dir too.
		Env: func(r *minitest.Run) map[string]string { return map[string]string{"FAKE_IPAM_DIR": r.DataDir} },
	}.Check(t, append(minitest.CommonBadInputs(), cases...))
}
