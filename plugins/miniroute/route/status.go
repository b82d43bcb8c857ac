package route

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// Status answers CodeNotAvailable (50) when an ADD could not program the
// rules now, for a family miniroute will need: rules.IPv4, or the families of
// clusterCIDR when it is set (so the ip6tables pair only with an rules.IPv6
// clusterCIDR). Per family it looks for the restore binary, then runs the
// save binary and parses its output: a binary missing from PATH (and the
// sbin directories backend.Exec also searches) is named in msg; a binary that
// runs but fails (the kernel refusing nf_tables, say) is reported with its
// own words. details carry the underlying error. With forward and
// masquerade both off, miniroute needs no iptables and Status passes.
func Status(ctx context.Context, conf *NetConf, node Node) error {
	if !conf.Forward && !conf.Masquerade {
		return nil
	}
	node = node.withMode(ctx, conf)
	for _, f := range statusFamilies(conf) {
		b := node.backend(f)
		err := b.Restore(ctx, nil)
		if err == nil {
			var data []byte
			if data, err = b.Save(ctx); err == nil {
				_, err = rules.Parse(data)
			}
		}
		if err == nil {
			continue
		}
		var missing *backend.MissingToolError
		if errors.As(err, &missing) {
			return types.NewError(libmini.CodeNotAvailable,
				fmt.Sprintf("%s is not installed (not in %s): miniroute cannot program the %s rules", missing.Tool,
					strings.Join(missing.Searched, ", "), f), err.Error())
		}
		return types.NewError(libmini.CodeNotAvailable, fmt.Sprintf("%s cannot be used: %v", f.Command(), err), err.Error())
	}
	return nil
}

// statusFamilies are the families STATUS checks: rules.IPv4, or those of
// clusterCIDR when it is set.
func statusFamilies(conf *NetConf) []rules.Family {
	if len(conf.Cluster) == 0 {
		return []rules.Family{rules.IPv4}
	}
	var families []rules.Family
	for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
		for _, c := range conf.Cluster {
			if familyOf(c.Addr()) == f {
				families = append(families, f)
				break
			}
		}
	}
	return families
}
