// Package allocator runs miniipam's commands (ADD, DEL, CHECK, GC, STATUS)
// over the on-disk store and returns values, so that the miniipam binary and
// a main plugin running the allocator in-process behave identically: same
// store, same lock, same results.
package allocator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/ipam/miniipam/store"
	"github.com/minicni/minicni/libmini"
)

// Allocator is one network's configuration bound to its store.
type Allocator struct {
	Conf  *config.NetConf
	Store *store.Disk
	Log   *slog.Logger
}

// New returns the allocator of conf, logging to log (nil discards).
func New(conf *config.NetConf, log *slog.Logger) *Allocator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := store.New(conf.DataDir, conf.Name)
	d.Log = log
	d.LockTimeout = conf.LockTimeout
	return &Allocator{Conf: conf, Store: d, Log: log}
}

// Open is miniipam run in-process for one command (cmd is the CNI verb):
// it loads the config from args' stdin and CNI_ARGS and returns its
// allocator, logging as miniipam to the config's logFile (tagged with args'
// attachment, except for GC and STATUS, which have none), and the function
// that closes that log. The miniipam binary and minibridge's in-process IPAM
// both start every command here, so they behave identically.
func Open(cmd string, args *libmini.CmdArgs) (_ *Allocator, closeLog func(), _ error) {
	conf, err := config.LoadConf(args.StdinData, args.Args)
	if err != nil {
		return nil, nil, err
	}
	if cmd == "GC" || cmd == "STATUS" {
		args = nil // no container
	}
	log, closeLog := libmini.Logger("miniipam", cmd, conf.LogFile, args)
	return New(conf, log), closeLog, nil
}

// validateOwner checks CNI_CONTAINERID and CNI_IFNAME, which are written
// into reservation files. The binary's PluginMain checked them already;
// in-process callers (minibridge) bypass it.
func validateOwner(containerID, ifname string) error {
	if err := libmini.ValidateEnvContainerID(containerID); err != nil {
		return err
	}
	return libmini.ValidateEnvIfName(ifname)
}

// assignable returns the addresses of rs that set may hand out.
func assignable(set config.RangeSet, rs []store.Reservation) []netip.Addr {
	var out []netip.Addr
	for _, r := range rs {
		if set.Assignable(r.Addr) {
			out = append(out, r.Addr)
		}
	}
	return out
}

// Add reserves one address per range set for (containerID, ifname) and
// returns them with the configured routes and DNS. It is idempotent: the
// attachment's existing reservations are returned again and only missing
// sets are allocated. A statically requested address must be free or
// already this attachment's (else CodeAddressTaken). Dynamic addresses are
// handed out round-robin after the set's last reserved one. When a set has
// no free address the error is CodePoolExhausted, and whatever this call
// reserved is released again.
func (a *Allocator) Add(ctx context.Context, containerID, ifname string) (_ *current.Result, retErr error) {
	if err := validateOwner(containerID, ifname); err != nil {
		return nil, err
	}
	res, err := a.emptyResult()
	if err != nil {
		return nil, err
	}
	tx, err := a.Store.Lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Close()

	owner := store.Owner{ContainerID: containerID, IfName: ifname}
	var created, replaced []netip.Addr
	defer func() {
		if retErr == nil {
			return
		}
		for _, ip := range created {
			if err := tx.Release(ip); err != nil {
				a.Log.Warn("cannot roll back a reservation", "ip", ip, "err", err)
			}
		}
	}()
	owned := tx.Owned(owner)
	for i, set := range a.Conf.Sets {
		mine := assignable(set, owned)
		var ip netip.Addr
		switch req := a.Conf.Requested[i]; {
		case req.IsValid():
			made, err := a.reserveRequested(tx, i, req, owner)
			if made {
				created = append(created, req)
			}
			if err != nil {
				return nil, err
			}
			ip = req
			replaced = append(replaced, slices.DeleteFunc(mine, func(m netip.Addr) bool { return m == req })...)
		case len(mine) > 0:
			ip = mine[0]
		default:
			if ip, err = a.allocate(tx, i, set, owner); err != nil {
				return nil, err
			}
			created = append(created, ip)
		}
		res.IPs = append(res.IPs, ipConfig(set, ip))
	}
	a.releaseReplaced(tx, replaced)
	a.Log.Info("reserved", "ips", ipStrings(res.IPs))
	return res, nil
}

// releaseReplaced releases the addresses a static request replaced: it moved
// the attachment to a new address, and the old one of the same set is no
// longer its. A failure is only logged: the ADD has its address.
func (a *Allocator) releaseReplaced(tx *store.Tx, replaced []netip.Addr) {
	for _, ip := range replaced {
		if err := tx.Release(ip); err != nil {
			a.Log.Warn("cannot release the replaced address", "ip", ip, "err", err)
		}
	}
}

// emptyResult is the result of an ADD before its addresses: the configured
// routes and, with ipam.resolvConf, the DNS read from that file.
func (a *Allocator) emptyResult() (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: a.Conf.Routes}
	if a.Conf.IPAM.ResolvConf != "" {
		dns, err := parseResolvConf(a.Conf.IPAM.ResolvConf)
		if err != nil {
			return nil, libmini.ConfigErrorf("cannot read ipam.resolvConf %q: %v", a.Conf.IPAM.ResolvConf, err)
		}
		res.DNS = dns
	}
	return res, nil
}

// reserveRequested reserves the statically requested address req of set i
// for owner, unless owner holds it already (also as a legacy reservation).
// Held by another attachment, it is CodeAddressTaken. made reports whether
// this call created the reservation, so that a failed ADD releases it, even
// when moving the set's cursor to req then failed.
func (a *Allocator) reserveRequested(tx *store.Tx, i int, req netip.Addr, owner store.Owner) (made bool, _ error) {
	if r, taken := tx.Get(req); taken {
		if !r.Is(owner) && !r.IsLegacyOf(owner) {
			return false, libmini.Errorf(libmini.CodeAddressTaken, "requested address %s of network %s is reserved by container %s (%s)",
				req, a.Conf.Name, r.ContainerID, r.IfName)
		}
		return false, nil
	}
	ok, err := tx.Reserve(req, owner)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, libmini.Errorf(libmini.CodeAddressTaken, "requested address %s of network %s is reserved", req, a.Conf.Name)
	}
	return true, tx.SetLastReserved(i, req)
}

// ipConfig is the result's entry for ip of set: its range's prefix length
// and gateway.
func ipConfig(set config.RangeSet, ip netip.Addr) *current.IPConfig {
	r, _ := set.RangeFor(ip)
	return &current.IPConfig{
		Address: net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(r.Subnet.Bits(), r.Subnet.Addr().BitLen())},
		Gateway: r.Gateway.AsSlice(),
	}
}

// allocate reserves the first free assignable address of set i after its
// last reserved one, wrapping around once.
func (a *Allocator) allocate(tx *store.Tx, i int, set config.RangeSet, owner store.Owner) (netip.Addr, error) {
	exhausted := func() error {
		return libmini.Errorf(libmini.CodePoolExhausted, "network %s: range set %d has no free address: %s", a.Conf.Name, i, set)
	}
	var used uint64
	for ip := range tx.Addrs() {
		if set.Assignable(ip) {
			used++
		}
	}
	if used >= set.Size() {
		return netip.Addr{}, exhausted()
	}
	it := newIter(set, tx.LastReserved(i))
	for ip, ok := it.next(); ok; ip, ok = it.next() {
		if _, taken := tx.Get(ip); taken {
			continue
		}
		reserved, err := tx.Reserve(ip, owner)
		if err != nil {
			return netip.Addr{}, err
		}
		if !reserved {
			continue
		}
		if err := tx.SetLastReserved(i, ip); err != nil {
			_ = tx.Release(ip)
			return netip.Addr{}, err
		}
		return ip, nil
	}
	return netip.Addr{}, exhausted()
}

// iter walks a set's assignable addresses once around, starting after last
// when last lies in the set (host-local's round-robin), else at the set's
// first address.
type iter struct {
	set        config.RangeSet
	ri         int
	cur, first netip.Addr
	started    bool
}

func newIter(set config.RangeSet, last netip.Addr) *iter {
	it := &iter{set: set}
	for i, r := range set {
		if r.Contains(last) {
			it.ri, it.cur = i, last
			it.advance()
			break
		}
	}
	if !it.cur.IsValid() {
		it.cur = set[0].Start
	}
	it.first = it.cur
	return it
}

func (it *iter) advance() {
	if it.cur == it.set[it.ri].End {
		it.ri = (it.ri + 1) % len(it.set)
		it.cur = it.set[it.ri].Start
		return
	}
	it.cur = it.cur.Next()
}

func (it *iter) next() (netip.Addr, bool) {
	for {
		if it.started {
			it.advance()
			if it.cur == it.first {
				return netip.Addr{}, false
			}
		}
		it.started = true
		if it.cur != it.set[it.ri].Gateway {
			return it.cur, true
		}
	}
}

// Del releases every reservation of (containerID, ifname) (or, when there is
// none, the legacy ones of the container). An unknown attachment or a
// missing store is success.
func (a *Allocator) Del(ctx context.Context, containerID, ifname string) error {
	if err := validateOwner(containerID, ifname); err != nil {
		return err
	}
	_, err := a.release(ctx, "released", func(tx *store.Tx) []store.Reservation {
		return tx.Owned(store.Owner{ContainerID: containerID, IfName: ifname})
	})
	return err
}

// ReleaseWhere releases, under the store's lock, every reservation pick
// accepts, logging each with msg, through the code Del and GC use; it
// returns those released. Taking the lock also releases the reservations of
// an earlier boot, as every locked command does. `minicni status --fix`
// uses it to release the reservations it proved orphaned; pick runs under
// the lock, so it can check again what it proved.
func (a *Allocator) ReleaseWhere(ctx context.Context, msg string, pick func(store.Reservation) bool) ([]store.Reservation, error) {
	return a.release(ctx, msg, func(tx *store.Tx) []store.Reservation {
		var out []store.Reservation
		for _, r := range tx.All() {
			if pick(r) {
				out = append(out, r)
			}
		}
		return out
	})
}

// release locks an existing store (none is success: nothing to release),
// releases every reservation pick chooses, logs each with msg, and returns
// those released and every failure.
func (a *Allocator) release(ctx context.Context, msg string, pick func(*store.Tx) []store.Reservation) ([]store.Reservation, error) {
	tx, err := a.Store.Lock(ctx, false)
	if errors.Is(err, store.ErrNoStore) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	var errs []error
	var released []store.Reservation
	for _, r := range pick(tx) {
		if err := tx.Release(r.Addr); err != nil {
			errs = append(errs, err)
			continue
		}
		released = append(released, r)
		a.Log.Info(msg, "ip", r.Addr, "containerID", r.ContainerID, "ifname", r.IfName)
	}
	return released, errors.Join(errs...)
}

// Check verifies that (containerID, ifname) holds an address in every range
// set and, when the config carries a prevResult, that the addresses of
// prevResult inside miniipam's ranges are exactly those reservations.
func (a *Allocator) Check(ctx context.Context, containerID, ifname string) error {
	if err := validateOwner(containerID, ifname); err != nil {
		return err
	}
	prev, err := libmini.PrevResult(&a.Conf.NetConf)
	if err != nil {
		return err
	}
	failed := func(format string, args ...any) error {
		return libmini.Errorf(libmini.CodeCheckFailed, "network %s, container %s, %s: "+format,
			append([]any{a.Conf.Name, containerID, ifname}, args...)...)
	}
	tx, err := a.Store.Lock(ctx, false)
	if errors.Is(err, store.ErrNoStore) {
		return failed("no reservation (no store %s)", a.Store.Dir)
	}
	if err != nil {
		return err
	}
	defer tx.Close()
	owned := tx.Owned(store.Owner{ContainerID: containerID, IfName: ifname})
	var prevIPs []netip.Addr
	if prev != nil {
		for _, c := range prev.IPs {
			if ip, ok := netip.AddrFromSlice(c.Address.IP); ok {
				prevIPs = append(prevIPs, ip.Unmap())
			}
		}
	}
	for i, set := range a.Conf.Sets {
		mine := assignable(set, owned)
		if len(mine) == 0 {
			return failed("no reservation in range set %d (%s)", i, set)
		}
		if prev == nil {
			continue
		}
		for _, m := range mine {
			if !slices.Contains(prevIPs, m) {
				return failed("reserved address %s is not in prevResult", m)
			}
		}
		for _, p := range prevIPs {
			if set.Assignable(p) && !slices.Contains(mine, p) {
				return failed("prevResult address %s is not reserved for it", p)
			}
		}
	}
	return nil
}

// GC releases every reservation whose (container ID, ifname) is not in the
// config's cni.dev/valid-attachments (or the older cni.dev/attachments). A
// legacy reservation is kept when its container has any valid attachment.
// Without either list GC refuses (CNI error 7) rather than release every
// address of the network.
func (a *Allocator) GC(ctx context.Context) error {
	if !a.Conf.HasAttachments {
		return libmini.ConfigErrorf("GC needs cni.dev/valid-attachments")
	}
	valid := map[store.Owner]bool{}
	validID := map[string]bool{}
	for _, at := range a.Conf.Attachments {
		id := strings.TrimSpace(at.ContainerID)
		valid[store.Owner{ContainerID: id, IfName: at.IfName}] = true
		validID[id] = true
	}
	_, err := a.release(ctx, "released by GC", func(tx *store.Tx) []store.Reservation {
		var stale []store.Reservation
		for _, r := range tx.All() {
			if (r.Legacy && validID[r.ContainerID]) || (!r.Legacy && valid[store.Owner{ContainerID: r.ContainerID, IfName: r.IfName}]) {
				continue
			}
			stale = append(stale, r)
		}
		return stale
	})
	return err
}

// Status fails with CNI error 50 (CodeNotAvailable) when an ADD would fail
// now: the store cannot be written (a temp file is created and removed in
// it, or, before the first ADD, where ADD would create it: read-only
// filesystem, permissions, a file where a directory should be...), cannot be
// read, or some range set has no free address. The message names the cause
// and the details carry the underlying error. It does not take the lock: it
// reads the directory once, which may be a moment out of date, as any status
// is.
func (a *Allocator) Status(ctx context.Context) error {
	if err := a.Store.ProbeWritable(); err != nil {
		return types.NewError(libmini.CodeNotAvailable,
			fmt.Sprintf("network %s: the IPAM store %s cannot be written: %s", a.Conf.Name, a.Store.Dir, store.Cause(err)), err.Error())
	}
	taken, err := a.Store.Taken()
	if err != nil {
		msg := fmt.Sprintf("network %s: the IPAM store %s cannot be read", a.Conf.Name, a.Store.Dir)
		details := err.Error()
		if e, ok := libmini.AsCNIError(err); ok {
			details = e.Msg + ": " + e.Details
		}
		return types.NewError(libmini.CodeNotAvailable, msg, details)
	}
	for i, set := range a.Conf.Sets {
		var used uint64
		for _, ip := range taken {
			if set.Assignable(ip) {
				used++
			}
		}
		if used >= set.Size() {
			return types.NewError(libmini.CodeNotAvailable,
				fmt.Sprintf("network %s: range set %d has no free address: %s", a.Conf.Name, i, set),
				fmt.Sprintf("%d of %d assignable addresses reserved in %s", used, set.Size(), a.Store.Dir))
		}
	}
	return nil
}

// parseResolvConf reads the nameserver, domain, search and options lines of
// a resolv.conf-style file into the result's DNS, as host-local does.
func parseResolvConf(path string) (types.DNS, error) {
	var dns types.DNS
	f, err := os.Open(path)
	if err != nil {
		return dns, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			dns.Nameservers = append(dns.Nameservers, fields[1])
		case "domain":
			dns.Domain = fields[1]
		case "search":
			dns.Search = append(dns.Search, fields[1:]...)
		case "options":
			dns.Options = append(dns.Options, fields[1:]...)
		}
	}
	return dns, sc.Err()
}

func ipStrings(ips []*current.IPConfig) []string {
	out := make([]string, len(ips))
	for i, c := range ips {
		out[i] = c.Address.String()
	}
	return out
}
