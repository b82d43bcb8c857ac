// Command miniipam is a host-local-style IPAM plugin: it hands out addresses
// from the configured ranges and keeps one file per reservation under
// dataDir/<network>, in the reference host-local's layout and lock, so the
// two can replace each other on a live node. See README.md.
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/ipam/miniipam/allocator"
	"github.com/minicni/minicni/libmini"
)

func main() {
	libmini.PluginMain(libmini.Verbs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus},
		libmini.About("miniipam"))
}

// run runs f with the allocator of args' config, logging for cmd.
func run(cmd string, args *libmini.CmdArgs, f func(context.Context, *allocator.Allocator) error) error {
	a, closeLog, err := allocator.Open(cmd, args)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := f(context.Background(), a); err != nil {
		a.Log.Warn(cmd+" failed", "err", err)
		return err
	}
	return nil
}

func cmdAdd(args *libmini.CmdArgs) error {
	return run("ADD", args, func(ctx context.Context, a *allocator.Allocator) error {
		res, err := a.Add(ctx, args.ContainerID, args.IfName)
		if err != nil {
			return err
		}
		return types.PrintResult(res, a.Conf.CNIVersion)
	})
}

func cmdDel(args *libmini.CmdArgs) error {
	return run("DEL", args, func(ctx context.Context, a *allocator.Allocator) error {
		return a.Del(ctx, args.ContainerID, args.IfName)
	})
}

func cmdCheck(args *libmini.CmdArgs) error {
	return run("CHECK", args, func(ctx context.Context, a *allocator.Allocator) error {
		return a.Check(ctx, args.ContainerID, args.IfName)
	})
}

func cmdGC(args *libmini.CmdArgs) error {
	return run("GC", args, func(ctx context.Context, a *allocator.Allocator) error { return a.GC(ctx) })
}

func cmdStatus(args *libmini.CmdArgs) error {
	return run("STATUS", args, func(ctx context.Context, a *allocator.Allocator) error { return a.Status(ctx) })
}
