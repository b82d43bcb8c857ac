package bridge

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/internal/sum256"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
)

// GC collects what attachments the runtime no longer lists left behind
// (a DEL that never came, an ADD killed half-way): it removes the host
// veths on the bridge that are not a live attachment's (collectVeths), then
// forwards GC to the IPAM, which releases their reservations. Like the
// spec asks, it goes on after a failure and reports every error. A GC
// without cni.dev/valid-attachments is refused (code 7): read as "nothing
// is live", it would cut every pod off.
func GC(ctx context.Context, conf *NetConf, args *libmini.CmdArgs, node Node) error {
	log := node.log()

	valid, ok, err := conf.GCAttachments()
	if err != nil {
		return err
	}
	if !ok {
		return libmini.ConfigErrorf("GC needs cni.dev/valid-attachments: without it every attachment would look stale")
	}
	var errs []error
	removed, err := collectVeths(conf, valid)
	for _, name := range removed {
		log.Info("removed by GC", "veth", name, "bridge", conf.Bridge)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if err := (ipamCall{conf, args}).gc(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("GC failed", "err", err)
		return err
	}
	return nil
}

// collectVeths removes every host end of conf's network (OwnVeths) whose
// name is not HostVethName of a valid attachment. It returns the names
// removed, and goes on after a failure.
func collectVeths(conf *NetConf, valid []types.GCAttachment) ([]string, error) {
	keep := map[string]bool{}
	for _, a := range valid {
		keep[HostVethName(a.ContainerID, a.IfName)] = true
	}
	return CollectVeths(conf, func(name string) bool { return !keep[name] })
}

// CollectVeths removes the host ends of conf's network (OwnVeths) that
// stale accepts, by GC's code: `minicni status --fix` removes the ones it
// proved orphaned through it. It returns the names removed, and goes on
// after a failure.
func CollectVeths(conf *NetConf, stale func(name string) bool) ([]string, error) {
	own, err := OwnVeths(conf)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, l := range own {
		name := l.Attrs().Name
		if !stale(name) {
			continue
		}
		if err := delLink(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// OwnVeths lists the veths GC may take for conf's network: named like
// minibridge's host ends (VethPrefix and 12 hex digits) and either a port
// of conf's bridge marked as this network's or unmarked (ownerAlias; host
// ends made before the mark existed have none), or on no bridge at all and
// marked as this network's (an ADD killed before it attached the host
// end). Links named otherwise, on another bridge, or marked as another
// network's (networks with different vlans may share a bridge) are never
// listed.
func OwnVeths(conf *NetConf) ([]netlink.Link, error) {
	brIndex := -1 // no bridge: no port is ours
	bl, err := netlinksafe.LinkByName(conf.Bridge)
	if notFound := (netlink.LinkNotFoundError{}); err != nil && !errors.As(err, &notFound) {
		return nil, linkErr(err, "reading bridge %s", conf.Bridge)
	}
	if _, ok := bl.(*netlink.Bridge); ok {
		brIndex = bl.Attrs().Index
	}
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, linkErr(err, "listing links")
	}
	mine := ownerAlias(conf.Name)
	var own []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if _, ok := l.(*netlink.Veth); !ok || !IsHostVethName(a.Name) {
			continue
		}
		onBridge := a.MasterIndex == brIndex && (a.Alias == "" || a.Alias == mine)
		unattached := a.MasterIndex == 0 && a.Alias == mine
		if onBridge || unattached {
			own = append(own, l)
		}
	}
	return own, nil
}

// IsHostVethName reports whether name has the form of HostVethName's
// results: VethPrefix and 12 lower-case hex digits.
func IsHostVethName(name string) bool {
	if len(name) != len(VethPrefix)+12 || name[:len(VethPrefix)] != VethPrefix {
		return false
	}
	for _, c := range name[len(VethPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ownerAlias is the alias (IFLA_IFALIAS, `ip link` shows it) minibridge
// sets on each host end: the network it belongs to, so GC of one network
// never removes another's pods when they share the bridge. A name too long
// for the kernel's 255 bytes is hashed.
func ownerAlias(network string) string {
	a := "minibridge network " + network
	if len(a) > 255 {
		sum := sum256.Sum([]byte(network))
		a = "minibridge network sha256:" + hex.EncodeToString(sum[:])
	}
	return a
}
