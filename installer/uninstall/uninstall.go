// Package uninstall removes what minicni put on a node, and nothing else: the
// conflist it wrote, the routes carrying its route protocol number, its
// VXLAN devices (those carrying overlay.Alias) with everything on them,
// miniroute's iptables chains and the jumps to them (through miniroute's own
// cleanup) with miniroute's stamps of this namespace, and, when asked, its binaries. A reference plugin (portmap,
// loopback) is removed only when it is byte for byte the copy minicni ships,
// since the host may have its own from a distribution package.
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/installer/install"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/installer/routes"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/route"
	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

// Own are minicni's own binaries.
var Own = []string{"minibridge", "miniipam", "miniroute"}

// Tools are minicni's own binaries that no chain runs (`minicni status`):
// install copies them when --from has them, uninstall removes them as Own.
var Tools = []string{"minicni"}

// Options say what to remove and where.
type Options struct {
	ConfPath string
	// RemoveBinaries removes the Binaries from BinDir: minicni's own always,
	// others only when identical to the copy in From.
	RemoveBinaries bool
	Binaries       []string
	BinDir         string
	From           string
	// Routes is the namespace whose routes and VXLAN devices are removed.
	Routes netlinksafe.Handle
	// IPTables returns a family's backend; nil means miniroute's real ones
	// (iptables-save/-restore in the calling thread's namespace), in both
	// iptables modes, legacy and nf_tables, whose tools are installed.
	IPTables func(rules.Family) route.Backend
	// Stamps are miniroute's nf_tables stamps (stamps.Default() on a node),
	// forgotten for the calling thread's namespace before its chains are
	// removed, since they say the rules were verified; nil forgets none.
	Stamps *stamps.Stamps
	Log    *slog.Logger
}

// Run removes everything, attempting each step even when one fails, and
// returns the failures joined. The conflist goes first, so no new pod is
// attached to a chain being taken apart.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var errs []error
	if removed, err := install.Remove(o.ConfPath); err != nil {
		errs = append(errs, err)
	} else if removed {
		log.Info("removed conflist", "path", o.ConfPath)
	}

	deleted, err := routes.DeleteOwn(o.Routes)
	for _, d := range deleted {
		log.Info("deleted route", "route", d, "protocol", int(routes.Protocol))
	}
	if err != nil {
		errs = append(errs, err)
	}
	devices, err := overlay.Remove(o.Routes, "")
	for _, d := range devices {
		log.Info("deleted VXLAN device, with its FDB and neighbour entries", "device", d)
	}
	if err != nil {
		errs = append(errs, err)
	}

	errs = append(errs, removeChains(ctx, o, log)...)

	if o.RemoveBinaries {
		for _, name := range o.Binaries {
			if name == "" || name != filepath.Base(name) {
				errs = append(errs, fmt.Errorf("invalid binary name %q", name))
				continue
			}
			path := filepath.Join(o.BinDir, name)
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if !slices.Contains(Own, name) && !slices.Contains(Tools, name) {
				same, err := install.Same(path, filepath.Join(o.From, name))
				if err != nil || !same {
					log.Info("kept binary: not the copy minicni ships", "path", path)
					continue
				}
			}
			removed, err := install.Remove(path)
			if err != nil {
				errs = append(errs, err)
			} else if removed {
				log.Info("removed binary", "path", path)
			}
		}
	}
	return errors.Join(errs...)
}

// removeChains removes miniroute's chains of both families, and first the
// stamps that say their rules were verified.
func removeChains(ctx context.Context, o Options, log *slog.Logger) []error {
	cleanup := cleanupEveryMode
	if o.IPTables != nil {
		cleanup = func(ctx context.Context, f rules.Family) error { return route.Cleanup(ctx, o.IPTables(f)) }
	}
	var errs []error
	for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
		if o.Stamps != nil {
			_ = o.Stamps.Forget(f) // a stamp left behind is only litter
		}
		if err := cleanup(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("%s chains: %w", f, err))
			continue
		}
		log.Info("removed minicni's iptables chains, if any", "family", f.String())
	}
	return errs
}

// cleanupEveryMode removes f's chains in both iptables modes, legacy and
// nf_tables: miniroute writes in the mode the node uses (backend.Decide) or
// the one its config forces, which may have changed since. A mode whose
// tools are not installed is skipped; with neither installed, the plain
// iptables-save and -restore are used. Reading a mode creates nothing in
// it, and a mode without minicni's chains is not written.
func cleanupEveryMode(ctx context.Context, f rules.Family) error {
	var errs []error
	ran := false
	for _, m := range []backend.Mode{backend.Legacy, backend.NFT} {
		b := backend.New(f)
		b.Mode = m
		err := route.Cleanup(ctx, b)
		if errors.As(err, new(*backend.MissingToolError)) {
			continue
		}
		ran = true
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
		}
	}
	if !ran {
		return route.Cleanup(ctx, backend.New(f))
	}
	return errors.Join(errs...)
}
