package bridge

import (
	"context"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/minicni/minicni/ipam/miniipam/allocator"
	"github.com/minicni/minicni/libmini"
)

// InProcessIPAM is the ipam.type that minibridge runs in-process rather than
// executing it from CNI_PATH: miniipam's own allocator, store and lock, the
// code the miniipam binary runs, so the two can serve one node at the same
// time and behave identically; it saves one exec per ADD and DEL. Any other
// ipam.type is executed as usual.
const InProcessIPAM = "miniipam"

// ipamCall runs one IPAM command for an attachment: in-process for
// InProcessIPAM, else through libmini's delegation.
type ipamCall struct {
	conf *NetConf
	args *libmini.CmdArgs
}

func (p ipamCall) add(ctx context.Context) (*current.Result, error) {
	if p.conf.IPAM.Type != InProcessIPAM {
		return libmini.IPAMAdd(libmini.WithIPAMTimeout(ctx, p.conf.IPAMTimeout), p.conf.IPAM.Type, p.args.StdinData)
	}
	a, closeLog, err := allocator.Open("ADD", p.args)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	res, err := a.Add(ctx, p.args.ContainerID, p.args.IfName)
	if err != nil {
		return nil, err // Add released whatever it had reserved
	}
	// What the binary prints is the result in the config's version, which
	// for 0.1.0 and 0.2.0 has no route mtu, advmss, priority, table or
	// scope: pass through that version too, so both ways agree.
	conv, err := throughVersion(res, a.Conf.CNIVersion)
	if err != nil {
		// Whole or nothing, like a failing Add: Add's caller does not DEL
		// the in-process IPAM after its failure.
		if derr := a.Del(context.WithoutCancel(ctx), p.args.ContainerID, p.args.IfName); derr != nil {
			a.Log.Warn("cannot release after a failed conversion", "err", derr)
		}
		return nil, err
	}
	return conv, nil
}

// throughVersion converts res to version and back to types/100.
func throughVersion(res *current.Result, version string) (*current.Result, error) {
	v, err := res.GetAsVersion(version)
	if err == nil {
		res, err = current.NewResultFromResult(v)
	}
	if err != nil {
		return nil, libmini.Wrap(err, libmini.CodeIPAM, "converting miniipam's result to cniVersion "+version)
	}
	return res, nil
}

func (p ipamCall) del(ctx context.Context) error {
	return p.run(ctx, "DEL", libmini.IPAMDel, func(a *allocator.Allocator) error {
		return a.Del(ctx, p.args.ContainerID, p.args.IfName)
	})
}

func (p ipamCall) check(ctx context.Context) error {
	return p.run(ctx, "CHECK", libmini.IPAMCheck, func(a *allocator.Allocator) error {
		return a.Check(ctx, p.args.ContainerID, p.args.IfName)
	})
}

func (p ipamCall) status(ctx context.Context) error {
	return p.run(ctx, "STATUS", libmini.IPAMStatus, func(a *allocator.Allocator) error { return a.Status(ctx) })
}

func (p ipamCall) gc(ctx context.Context) error {
	return p.run(ctx, "GC", libmini.IPAMGC, func(a *allocator.Allocator) error { return a.GC(ctx) })
}

func (p ipamCall) run(ctx context.Context, cmd string, delegate func(context.Context, string, []byte) error, f func(*allocator.Allocator) error) error {
	if p.conf.IPAM.Type != InProcessIPAM {
		return delegate(libmini.WithIPAMTimeout(ctx, p.conf.IPAMTimeout), p.conf.IPAM.Type, p.args.StdinData)
	}
	a, closeLog, err := allocator.Open(cmd, p.args)
	if err != nil {
		return err
	}
	defer closeLog()
	return f(a)
}
