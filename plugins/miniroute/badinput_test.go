package main

import (
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// badConf is a miniroute config in the run's version with extra keys and a
// dual-stack prevResult, or none when noPrev.
func badConf(extra string, noPrev bool) func(*minitest.Run) string {
	return func(r *minitest.Run) string {
		res := podResult(false)
		if noPrev {
			res = nil
		}
		stdin, _ := conf(r.T, r.Ver, extra, res)
		return string(stdin)
	}
}

// TestBadInput runs the real binary with broken configs and environments,
// the ones every plugin refuses (minitest.CommonBadInputs) and miniroute's
// own, in every CNI version: each must print the whole CNI error object and
// exit 1, and create no rule and no route.
func TestBadInput(t *testing.T) {
	bad := func(name, extra, mention string) minitest.BadInput {
		return minitest.BadInput{Name: name, Conf: badConf(extra, false), Code: libmini.CodeInvalidConfig, Mention: []string{mention}}
	}
	cases := []minitest.BadInput{
		bad("clusterCIDR not a CIDR", `,"clusterCIDR":["172.18.0.0"]`, `"172.18.0.0"`),
		bad("clusterCIDR host bits", `,"clusterCIDR":"172.18.0.1/16"`, `"172.18.0.1/16"`),
		bad("clusterCIDR everything", `,"clusterCIDR":["::/0"]`, `"::/0"`),
		bad("second clusterCIDR bad", `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/129"]`, `"fd00:172:18::/129"`),
		bad("pod outside the cluster", `,"clusterCIDR":["10.244.0.0/16"]`, `pod subnet 172.18.0.0/24`),
		bad("IPv6 pod outside the cluster", `,"clusterCIDR":["172.18.0.0/16","fd00:99::/56"]`, `pod subnet fd00:172:18::/64`),
		bad("route without via", `,"routes":[{"dst":"172.18.1.0/24"}]`, `routes[0].via`),
		bad("route bad dst", `,"routes":[{"dst":"172.18.1/24","via":"10.99.0.12"}]`, `"172.18.1/24"`),
		bad("route bad via", `,"routes":[{"dst":"172.18.1.0/24","via":"10.99.0.300"}]`, `"10.99.0.300"`),
		bad("route families differ", `,"routes":[{"dst":"172.18.1.0/24","via":"fd00::12"}]`, `"fd00::12"`),
		bad("route via link-local", `,"routes":[{"dst":"fd00:172:18:1::/64","via":"fe80::12"}]`, `"fe80::12"`),
		bad("route twice", `,"routes":[{"dst":"172.18.1.0/24","via":"10.99.0.12"},{"dst":"172.18.1.0/24","via":"10.99.0.13"}]`, `routes[1].dst`),
		bad("network name a/b", `,"name":"a/b"`, `a/b`),
		bad("iptablesMode unknown", `,"iptablesMode":"nftables"`, `iptablesMode "nftables"`),
		bad("lockTimeout not a duration", `,"lockTimeout":"forever"`, `invalid lockTimeout "forever"`),
		bad("lockTimeout negative", `,"lockTimeout":"-1s"`, `invalid lockTimeout "-1s"`),
		bad("execTimeout too long", `,"execTimeout":"1h"`, `invalid execTimeout "1h": must be more than 0 and at most 2m0s`),
		{Name: "execTimeout a number", Conf: badConf(`,"execTimeout":30`, false), Code: libmini.CodeDecode, Mention: []string{"execTimeout"}},
		{Name: "clusterCIDR not a string", Conf: badConf(`,"clusterCIDR":[17]`, false), Code: libmini.CodeDecode, Mention: []string{"clusterCIDR"}},
		{Name: "iptablesMode not a string", Conf: badConf(`,"iptablesMode":2`, false), Code: libmini.CodeDecode, Mention: []string{"iptablesMode"}},
		{Name: "ADD without prevResult", Conf: badConf(dualStack, true), Code: libmini.CodeNoPrevResult},
		{Name: "CHECK without prevResult", Cmd: "CHECK", Conf: badConf(dualStack, true), Versions: minitest.From("0.4.0"), Code: libmini.CodeNoPrevResult},
	}
	minitest.Harness{
		Bin:  filepath.Join(binDir, "miniroute"),
		Good: badConf(dualStack, false),
		// A run that wrongly succeeded would have stamped its namespace.
		Cleanup: func(r *minitest.Run) { _ = r.Host.Do(func(ns.NetNS) error { return forgetState() }) },
	}.Check(t, append(minitest.CommonBadInputs(), cases...))
}
