// Command miniroute is a chained CNI plugin that runs after an interface
// plugin such as minibridge: it makes the node forward and masquerade pod
// traffic (node-level iptables rules in minicni's own chains) and keeps
// optional static routes to other nodes' pod subnets, then passes the
// previous result through unchanged. The logic lives in package route
// (see README.md for the map of the four packages).
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/route"
)

func main() {
	libmini.PluginMain(libmini.Verbs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  verb("CHECK", route.Check),
		Status: verb("STATUS", route.Status),
		GC:     cmdGC,
	}, libmini.About("miniroute"))
}

func cmdAdd(args *libmini.CmdArgs) error {
	conf, err := route.LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	node, closeLog := newNode("ADD", conf, args)
	defer closeLog()
	res, err := route.Add(context.Background(), conf, node)
	if err != nil {
		node.Log.Error("ADD failed", "err", err)
		return err
	}
	return types.PrintResult(res, conf.CNIVersion) // the only write to stdout
}

// cmdDel succeeds whatever it is given: miniroute keeps nothing per pod, and
// a failing DEL would stop libcni before the plugins that do hold state (a
// veth, an address reservation), even for a config that no longer parses.
func cmdDel(args *libmini.CmdArgs) error {
	if _, err := route.LoadConf(args.StdinData); err != nil {
		node, closeLog := newNode("DEL", nil, args)
		defer closeLog()
		node.Log.Warn("ignoring an invalid config on DEL: nothing to remove", "err", err)
	}
	return nil
}

// cmdGC has nothing to collect: there is no per-attachment state.
func cmdGC(args *libmini.CmdArgs) error {
	_, err := route.LoadConf(args.StdinData)
	return err
}

// verb adapts a logic function that prints nothing to a PluginMain verb.
func verb(cmd string, f func(context.Context, *route.NetConf, route.Node) error) func(*libmini.CmdArgs) error {
	return func(args *libmini.CmdArgs) error {
		conf, err := route.LoadConf(args.StdinData)
		if err != nil {
			return err
		}
		node, closeLog := newNode(cmd, conf, args)
		defer closeLog()
		if err := f(context.Background(), conf, node); err != nil {
			node.Log.Warn(cmd+" failed", "err", err)
			return err
		}
		return nil
	}
}

// newNode builds what every verb acts with, the same way for each: the
// logger of cmd (closed by the returned func) and the real iptables
// backends, with conf's timeouts, and stamps. conf is nil when the config
// is invalid (DEL only logs then).
func newNode(cmd string, conf *route.NetConf, args *libmini.CmdArgs) (route.Node, func()) {
	if conf == nil {
		log, closeLog := libmini.Logger("miniroute", cmd, "", args)
		return route.NewNode(log), closeLog
	}
	log, closeLog := libmini.Logger("miniroute", cmd, conf.LogFile, args)
	return route.NewNodeFor(conf, log), closeLog
}
