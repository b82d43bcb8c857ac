package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/ipam/miniipam/allocator"
	"github.com/minicni/minicni/ipam/miniipam/store"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
)

// Fix removes the orphans of rep that are provably orphaned (Fixable),
// each through the code GC runs, checking again at the moment of removal
// what made it an orphan, and returns one line per thing removed:
//   - a host veth whose pod network namespace is gone, by minibridge's GC
//     (bridge.CollectVeths), if its cache entry's namespace is still gone;
//   - a reservation with neither veth nor cache entry older than the grace
//     period, by miniipam's release under the store's lock
//     (allocator.ReleaseWhere), if it still has the same owner and still
//     neither veth nor cache entry;
//   - reservations of an earlier boot: that same lock releases them, as
//     every locked IPAM command does.
//
// Nothing else is touched.
func Fix(ctx context.Context, opt Options, rep *Report) ([]string, error) {
	opt = opt.withDefaults()
	scratch := &Report{}
	n := scratch.conflist(opt)
	if n == nil {
		return nil, errors.New("no minicni conflist: nothing to fix")
	}
	var done []string
	var errs []error

	gone := map[string]Orphan{}
	for _, o := range rep.Orphans {
		if o.Kind == KindNetnsGone && o.Fixable {
			gone[o.Veth] = o
		}
	}
	if len(gone) > 0 {
		removed, err := bridge.CollectVeths(n.bridge, func(name string) bool {
			o, ok := gone[name]
			return ok && netnsGone(o.NetNS)
		})
		for _, name := range removed {
			o := gone[name]
			done = append(done, fmt.Sprintf("removed host veth %s of container %s (%s): its network namespace %s is gone", name, short(o.ContainerID), o.IfName, o.NetNS))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}

	stale := map[string]Orphan{}
	earlier := 0
	for _, o := range rep.Orphans {
		switch {
		case o.Kind == KindReservation && o.Fixable:
			stale[o.IP] = o
		case o.Kind == KindEarlierBoot:
			earlier++
		}
	}
	if n.ipam == nil || (len(stale) == 0 && earlier == 0) {
		return done, errors.Join(errs...)
	}
	a := allocator.New(n.ipam, nil)
	a.Store.BootIDPath, a.Store.StatPath = opt.BootIDPath, opt.StatPath
	before, err := a.Store.List()
	if err != nil {
		return done, errors.Join(append(errs, err)...)
	}
	released, err := a.ReleaseWhere(ctx, "released by minicni status --fix", func(r store.Reservation) bool {
		o, ok := stale[r.Addr.String()]
		return ok && !r.Legacy && r.ContainerID == o.ContainerID && r.IfName == o.IfName &&
			!linkExists(bridge.HostVethName(r.ContainerID, r.IfName)) && !cacheExists(opt.CacheDir, n.name, r.ContainerID, r.IfName)
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range released {
		done = append(done, fmt.Sprintf("released %s of container %s (%s): neither host veth nor libcni cache entry", r.Addr, short(r.ContainerID), r.IfName))
	}
	after, err := a.Store.List()
	if err != nil {
		return done, errors.Join(append(errs, err)...)
	}
	still := map[string]bool{}
	for _, l := range after {
		still[l.Addr.String()] = true
	}
	for _, l := range before {
		if l.EarlierBoot && !still[l.Addr.String()] {
			done = append(done, fmt.Sprintf("released %s of container %s: reserved before this boot", l.Addr, short(l.ContainerID)))
		}
	}
	return done, errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := netlinksafe.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	return !errors.As(err, &notFound) // an error other than "not found": assume it exists
}

// cacheExists reports whether libcni's cache holds the attachment (any
// error but "does not exist" counts as yes).
func cacheExists(cacheDir, network, id, ifname string) bool {
	_, err := os.Stat(filepath.Join(cacheDir, "results", network+"-"+id+"-"+ifname))
	return !errors.Is(err, os.ErrNotExist)
}
