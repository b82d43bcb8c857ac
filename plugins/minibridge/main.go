// Command minibridge attaches a pod to a Linux bridge with a veth pair and
// delegates addressing to the IPAM plugin named in ipam.type. It is a CNI
// plugin usable in any chain; the logic lives in package bridge, so this
// file only decodes the config, dispatches the verb and prints the result.
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
)

// A netns belongs to an OS thread: keep the main goroutine on one.
func init() { libmini.InitPlugin() }

func main() {
	libmini.PluginMain(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    verb(bridge.Del),
		Check:  verb(bridge.Check),
		Status: verb(bridge.Status),
		GC:     verb(bridge.GC),
	}, libmini.About("minibridge"))
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := bridge.LoadConf(args.StdinData)
	if err != nil {
		return err
	}
	res, err := bridge.Add(context.Background(), conf, args)
	if err != nil {
		return err
	}
	return types.PrintResult(res, conf.CNIVersion) // the only write to stdout
}

// verb adapts a logic function that prints nothing to a skel callback.
func verb(f func(context.Context, *bridge.NetConf, *skel.CmdArgs) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		conf, err := bridge.LoadConf(args.StdinData)
		if err != nil {
			return err
		}
		return f(context.Background(), conf, args)
	}
}
