// Command minibridge attaches a pod to a Linux bridge with a veth pair and
// delegates addressing to the IPAM plugin named in ipam.type. It is a CNI
// plugin usable in any chain; the logic lives in package bridge, so this
// file only decodes the config, builds the command's bridge.Node,
// dispatches the verb and prints the result.
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
)

func main() {
	libmini.PluginMain(libmini.Verbs{
		Add:    cmdAdd,
		Del:    verb("DEL", bridge.Del),
		Check:  verb("CHECK", bridge.Check),
		Status: verb("STATUS", bridge.Status),
		GC:     verb("GC", bridge.GC),
	}, libmini.About("minibridge"))
}

func cmdAdd(args *libmini.CmdArgs) error {
	conf, err := bridge.LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	node, closeLog := newNode("ADD", conf, args)
	defer closeLog()
	res, err := bridge.Add(context.Background(), conf, args, node)
	if err != nil {
		return err
	}
	return types.PrintResult(res, conf.CNIVersion) // the only write to stdout
}

// verb adapts a logic function that prints nothing to a PluginMain verb.
func verb(cmd string, f func(context.Context, *bridge.NetConf, *libmini.CmdArgs, bridge.Node) error) func(*libmini.CmdArgs) error {
	return func(args *libmini.CmdArgs) error {
		conf, err := bridge.LoadConf(args.StdinData)
		if err != nil {
			return err
		}
		node, closeLog := newNode(cmd, conf, args)
		defer closeLog()
		return f(context.Background(), conf, args, node)
	}
}

// newNode builds what the logic needs for one command: its logger (to
// conf's logFile, else stderr; tagged with the attachment except for GC and
// STATUS, which have none) and the host veth's wait bound (linkUpTimeout).
func newNode(cmd string, conf *bridge.NetConf, args *libmini.CmdArgs) (bridge.Node, func()) {
	if cmd == "GC" || cmd == "STATUS" {
		args = nil // no container
	}
	log, closeLog := libmini.Logger("minibridge", cmd, conf.LogFile, args)
	return bridge.Node{Log: log, UpTimeout: conf.LinkUpTimeout}, closeLog
}
