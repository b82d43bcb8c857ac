// Command miniroute is a chained CNI plugin that runs after an interface
// plugin such as minibridge: it makes the node forward and masquerade pod
// traffic (node-level iptables rules in minicni's own chains) and keeps
// optional static routes to other nodes' pod subnets, then passes the
// previous result through unchanged. The logic lives in package rules.
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// A netns belongs to an OS thread: keep the main goroutine, and the
// iptables processes it starts, on one.
func init() { libmini.InitPlugin() }

func main() {
	libmini.PluginMain(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  verb("CHECK", rules.Check),
		Status: verb("STATUS", rules.Status),
		GC:     cmdGC,
	}, libmini.About("miniroute"))
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := rules.LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	log, closeLog := libmini.Logger("miniroute", "ADD", conf.LogFile, args)
	defer closeLog()
	res, err := rules.Add(context.Background(), conf, rules.Node{Log: log, Stamps: rules.DefaultStamps})
	if err != nil {
		log.Error("ADD failed", "err", err)
		return err
	}
	return types.PrintResult(res, conf.CNIVersion) // the only write to stdout
}

// cmdDel succeeds whatever it is given: miniroute keeps nothing per pod, and
// a failing DEL would stop libcni before the plugins that do hold state (a
// veth, an address reservation), even for a config that no longer parses.
func cmdDel(args *skel.CmdArgs) error {
	if _, err := rules.LoadConf(args.StdinData); err != nil {
		log, closeLog := libmini.Logger("miniroute", "DEL", "", args)
		defer closeLog()
		log.Warn("ignoring an invalid config on DEL: nothing to remove", "err", err)
	}
	return nil
}

// cmdGC has nothing to collect: there is no per-attachment state.
func cmdGC(args *skel.CmdArgs) error {
	_, err := rules.LoadConf(args.StdinData)
	return err
}

// verb adapts a logic function that prints nothing to a skel callback.
func verb(cmd string, f func(context.Context, *rules.NetConf, rules.Node) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		conf, err := rules.LoadConf(args.StdinData)
		if err != nil {
			return err
		}
		log, closeLog := libmini.Logger("miniroute", cmd, conf.LogFile, args)
		defer closeLog()
		if err := f(context.Background(), conf, rules.Node{Log: log}); err != nil {
			log.Warn(cmd+" failed", "err", err)
			return err
		}
		return nil
	}
}
