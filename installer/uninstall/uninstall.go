// Package uninstall removes what minicni put on a node, and nothing else: the
// conflist it wrote, the routes carrying its route protocol number, its
// VXLAN devices (those carrying overlay.Alias) with everything on them,
// miniroute's iptables chains and the jumps to them (through miniroute's own
// cleanup), and, when asked, its binaries. A reference plugin (portmap,
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
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// Own are minicni's own binaries.
var Own = []string{"minibridge", "miniipam", "miniroute"}

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
	// IPTables returns a family's backend; nil means miniroute's real one
	// (iptables-save/-restore in the calling thread's namespace).
	IPTables func(rules.Family) rules.Backend
	Log      *slog.Logger
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

	backend := o.IPTables
	if backend == nil {
		backend = rules.NewExec
	}
	for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
		if err := rules.Cleanup(ctx, backend(f)); err != nil {
			errs = append(errs, fmt.Errorf("%s chains: %w", f, err))
			continue
		}
		log.Info("removed minicni's iptables chains, if any", "family", f.String())
	}

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
			if !slices.Contains(Own, name) {
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
