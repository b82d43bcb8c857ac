package libmini

import (
	"context"
	"errors"
	"fmt"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// IPAMTimeout bounds every delegated IPAM call unless the context says
// otherwise (WithIPAMTimeout). The kubelet gives a whole sandbox about two
// minutes, so a stuck IPAM must fail well before that.
var IPAMTimeout = 60 * time.Second

// IPAMExec runs delegated plugins; nil means the real exec. Tests replace it.
var IPAMExec Exec

type ipamTimeoutKey struct{}

// WithIPAMTimeout returns ctx carrying d as the bound of every IPAM call
// made with it, instead of IPAMTimeout: a plugin's own setting
// (minibridge's ipamTimeout). d <= 0 keeps IPAMTimeout.
func WithIPAMTimeout(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, ipamTimeoutKey{}, d)
}

// ipamTimeout is the bound ctx carries, else IPAMTimeout.
func ipamTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(ipamTimeoutKey{}).(time.Duration); ok {
		return d
	}
	return IPAMTimeout
}

// IPAMAdd runs ADD of the IPAM plugin ipamType with the same stdin the calling
// plugin received and returns its result as types/100. An IPAM result without
// any address is an error.
func IPAMAdd(ctx context.Context, ipamType string, stdin []byte) (*current.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, ipamTimeout(ctx))
	defer cancel()
	out, err := delegate(ctx, IPAMExec, ipamType, "ADD", stdin)
	if err != nil {
		return nil, ipamError(ctx, "ADD", ipamType, err)
	}
	r, err := decodeResult(stdin, out)
	if err != nil {
		return nil, Wrap(err, CodeIPAM, fmt.Sprintf("IPAM plugin %s returned a result that cannot be read", ipamType))
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, Wrap(err, CodeIPAM, fmt.Sprintf("IPAM plugin %s returned a result that cannot be converted", ipamType))
	}
	if len(res.IPs) == 0 {
		return nil, Errorf(CodeIPAM, "IPAM plugin %s returned no IP address", ipamType)
	}
	return res, nil
}

// IPAMDel runs DEL of the IPAM plugin.
func IPAMDel(ctx context.Context, ipamType string, stdin []byte) error {
	return ipamCall(ctx, "DEL", ipamType, stdin)
}

// IPAMCheck runs CHECK of the IPAM plugin.
func IPAMCheck(ctx context.Context, ipamType string, stdin []byte) error {
	return ipamCall(ctx, "CHECK", ipamType, stdin)
}

// IPAMGC runs GC of the IPAM plugin.
func IPAMGC(ctx context.Context, ipamType string, stdin []byte) error {
	return ipamCall(ctx, "GC", ipamType, stdin)
}

// IPAMStatus runs STATUS of the IPAM plugin.
func IPAMStatus(ctx context.Context, ipamType string, stdin []byte) error {
	return ipamCall(ctx, "STATUS", ipamType, stdin)
}

// ipamCall runs verb of the IPAM plugin, whose result, if any, is not read.
func ipamCall(ctx context.Context, verb, ipamType string, stdin []byte) error {
	ctx, cancel := context.WithTimeout(ctx, ipamTimeout(ctx))
	defer cancel()
	if _, err := delegate(ctx, IPAMExec, ipamType, verb, stdin); err != nil {
		return ipamError(ctx, verb, ipamType, err)
	}
	return nil
}

// ipamError keeps the IPAM plugin's own CNI error (its code is the useful
// part), turns a deadline into "try again later" and anything else into
// CodeIPAM.
func ipamError(ctx context.Context, verb, ipamType string, err error) error {
	if e, ok := AsCNIError(err); ok {
		return e
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Errorf(CodeTryAgainLater, "IPAM plugin %s %s did not finish within %s", ipamType, verb, ipamTimeout(ctx))
	}
	return Wrap(err, CodeIPAM, fmt.Sprintf("IPAM plugin %s %s failed", ipamType, verb))
}
