package nodestatus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/ipam/miniipam/store"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
)

// Orphan kinds.
const (
	// KindReservation: a reservation with neither a host veth nor a libcni
	// cache entry. Fixable once older than the grace period.
	KindReservation = "reservation"
	// KindVeth: a host veth of the network with no reservation.
	KindVeth = "veth"
	// KindCache: a libcni cache entry with neither veth nor reservation.
	KindCache = "cache"
	// KindNetnsGone: a host veth whose pod network namespace (the netns of
	// its cache entry) is gone. Fixable.
	KindNetnsGone = "netns-gone"
	// KindEarlierBoot: a reservation made before this boot. Fixable: any
	// locked IPAM command releases it.
	KindEarlierBoot = "earlier-boot"
	// KindNoVeth: a reservation and a cache entry whose host veth is gone.
	KindNoVeth = "no-veth"
)

// Kinds lists every orphan kind.
var Kinds = []string{KindReservation, KindVeth, KindCache, KindNetnsGone, KindEarlierBoot, KindNoVeth}

// Orphan is one leftover. Fixable says whether Fix removes it.
type Orphan struct {
	Kind        string `json:"kind"`
	IP          string `json:"ip,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	IfName      string `json:"ifName,omitempty"`
	Veth        string `json:"veth,omitempty"`
	Cache       string `json:"cache,omitempty"` // the cache entry's path
	NetNS       string `json:"netns,omitempty"`
	Fixable     bool   `json:"fixable"`
}

// Addresses is the IPAM store of the network and what is attached.
type Addresses struct {
	IPAM  string `json:"ipam"`
	Store string `json:"store,omitempty"`
	Pools []Pool `json:"pools"`
	// Reservations, each with whether its host veth and its libcni cache
	// entry exist.
	Reservations []Reservation `json:"reservations"`
	Veths        int           `json:"veths"`
	CacheEntries int           `json:"cacheEntries"`
}

// Pool is one range set of the IPAM config.
type Pool struct {
	Ranges string `json:"ranges"`
	Size   uint64 `json:"size"`
	Used   uint64 `json:"used"`
	Free   uint64 `json:"free"`
}

// Reservation is one reserved address.
type Reservation struct {
	IP          string    `json:"ip"`
	ContainerID string    `json:"containerID"`
	IfName      string    `json:"ifName,omitempty"`
	Veth        string    `json:"veth,omitempty"`
	HasVeth     bool      `json:"hasVeth"`
	HasCache    bool      `json:"hasCache"`
	EarlierBoot bool      `json:"earlierBoot,omitempty"`
	Made        time.Time `json:"made"`
}

// cacheEntry is the part of libcni's cache file status reads.
type cacheEntry struct {
	path        string
	ContainerID string `json:"containerId"`
	IfName      string `json:"ifName"`
	NetworkName string `json:"networkName"`
	NetNS       string `json:"netns"`
}

type attachment struct{ id, ifname string }

const secAddresses = "addresses"

// cacheEntries reads libcni's cache entries of network.
func cacheEntries(cacheDir, network string) ([]cacheEntry, error) {
	dir := filepath.Join(cacheDir, "results")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cacheEntry
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), network+"-") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue // removed meanwhile
		}
		c := cacheEntry{path: path}
		if json.Unmarshal(data, &c) != nil || c.NetworkName != network || c.ContainerID == "" {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// netnsGone reports whether path is provably no longer a network
// namespace: it is not one (or not there) while its directory is. Unknown
// is not gone: no path (a libcni before v1.2 does not record it), a
// directory this process cannot see (a container without the host's
// /var/run/netns), or a /proc/<pid>/ns/net path (another PID namespace's
// pids are not ours).
func netnsGone(path string) bool {
	if path == "" || !filepath.IsAbs(path) || strings.HasPrefix(filepath.Clean(path), "/proc/") {
		return false
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return false
	}
	n, err := ns.GetNS(path)
	if err != nil {
		var notExist ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		return errors.As(err, &notExist) || errors.As(err, &notNS)
	}
	_ = n.Close()
	return false
}

// addresses reads the IPAM store without its lock, the host veths and
// libcni's cache, and finds the orphans.
func (r *Report) addresses(opt Options, n *network) {
	a := &Addresses{IPAM: n.ipamType, Pools: []Pool{}, Reservations: []Reservation{}}
	r.Addresses = a
	veths, err := bridge.OwnVeths(n.bridge)
	if err != nil {
		r.blind(secAddresses, "cannot list the host veths: "+err.Error(), "run as root in the node's network namespace")
		return
	}
	vethSet := map[string]bool{}
	for _, l := range veths {
		vethSet[l.Attrs().Name] = true
	}
	a.Veths = len(veths)
	cache, err := cacheEntries(opt.CacheDir, n.name)
	if err != nil {
		r.blind(secAddresses, "cannot read libcni's cache: "+err.Error(), "check --cache-dir and run as root")
		return
	}
	a.CacheEntries = len(cache)
	cached := map[attachment]cacheEntry{}
	byVeth := map[string]cacheEntry{}
	for _, c := range cache {
		cached[attachment{c.ContainerID, c.IfName}] = c
		byVeth[bridge.HostVethName(c.ContainerID, c.IfName)] = c
	}
	if n.ipam == nil {
		if n.ipamErr != nil {
			r.problem(secAddresses, "the IPAM config does not load: "+n.ipamErr.Error(), "fix the conflist's ipam object")
		}
		// Another IPAM: its store is its own; only the veths and the cache
		// can be compared.
		r.vethOrphans(veths, byVeth, nil)
		r.orphanProblems(opt)
		return
	}
	d := store.New(n.ipam.DataDir, n.name)
	d.BootIDPath, d.StatPath = opt.BootIDPath, opt.StatPath
	a.Store = d.Dir
	listed, err := d.List()
	if err != nil {
		r.blind(secAddresses, fmt.Sprintf("cannot read the IPAM store %s: %v", d.Dir, err), "run as root")
		return
	}
	reserved := map[string]bool{} // host veth names of the reservations
	reservedBy := map[attachment]bool{}
	now := opt.Now()
	for _, l := range listed {
		res := Reservation{IP: l.Addr.String(), ContainerID: l.ContainerID, IfName: l.IfName, EarlierBoot: l.EarlierBoot, Made: l.Made}
		o := Orphan{IP: res.IP, ContainerID: res.ContainerID, IfName: res.IfName}
		if l.Legacy {
			// A host-local reservation without ifname: its veth is not known.
			res.HasCache = hasContainer(cache, l.ContainerID)
			a.Reservations = append(a.Reservations, res)
			if l.EarlierBoot {
				o.Kind, o.Fixable = KindEarlierBoot, true
				r.Orphans = append(r.Orphans, o)
			}
			continue
		}
		res.Veth = bridge.HostVethName(l.ContainerID, l.IfName)
		res.HasVeth = vethSet[res.Veth]
		c, hasCache := cached[attachment{l.ContainerID, l.IfName}]
		res.HasCache = hasCache
		reserved[res.Veth] = true
		reservedBy[attachment{l.ContainerID, l.IfName}] = true
		a.Reservations = append(a.Reservations, res)
		switch {
		case l.EarlierBoot:
			o.Kind, o.Fixable = KindEarlierBoot, true
		case !res.HasVeth && !hasCache:
			o.Kind, o.Fixable = KindReservation, now.Sub(l.Made) >= opt.Grace
		case !res.HasVeth:
			o.Kind, o.Cache, o.NetNS = KindNoVeth, c.path, c.NetNS
		default:
			continue
		}
		r.Orphans = append(r.Orphans, o)
	}
	for i, set := range n.ipam.Sets {
		p := Pool{Ranges: set.String(), Size: set.Size()}
		for _, l := range listed {
			if set.Assignable(l.Addr) {
				p.Used++
			}
		}
		p.Free = p.Size - min(p.Used, p.Size)
		a.Pools = append(a.Pools, p)
		if p.Free == 0 {
			r.problem(secAddresses, fmt.Sprintf("range set %d (%s) has no free address: new pods fail with error 100", i, p.Ranges),
				"look for orphans below (minicni status --fix removes the provable ones), or give the node a larger podCIDR")
		}
	}
	r.vethOrphans(veths, byVeth, reserved)
	for _, c := range cache {
		if !reservedBy[attachment{c.ContainerID, c.IfName}] && !vethSet[bridge.HostVethName(c.ContainerID, c.IfName)] {
			r.Orphans = append(r.Orphans, Orphan{Kind: KindCache, ContainerID: c.ContainerID, IfName: c.IfName, Cache: c.path, NetNS: c.NetNS})
		}
	}
	r.orphanProblems(opt)
}

func hasContainer(cache []cacheEntry, id string) bool {
	for _, c := range cache {
		if c.ContainerID == id {
			return true
		}
	}
	return false
}

// vethOrphans finds the veths whose pod namespace is gone and, when the
// store was read (reserved not nil), those without a reservation.
func (r *Report) vethOrphans(veths []netlink.Link, byVeth map[string]cacheEntry, reserved map[string]bool) {
	for _, l := range veths {
		name := l.Attrs().Name
		c, ok := byVeth[name]
		switch {
		case ok && netnsGone(c.NetNS):
			r.Orphans = append(r.Orphans, Orphan{Kind: KindNetnsGone, Veth: name, ContainerID: c.ContainerID, IfName: c.IfName,
				Cache: c.path, NetNS: c.NetNS, Fixable: true})
		case reserved != nil && !reserved[name]:
			o := Orphan{Kind: KindVeth, Veth: name}
			if ok {
				o.ContainerID, o.IfName, o.Cache, o.NetNS = c.ContainerID, c.IfName, c.path, c.NetNS
			}
			r.Orphans = append(r.Orphans, o)
		}
	}
}

// orphanProblems turns the orphans into problems, one line each.
func (r *Report) orphanProblems(opt Options) {
	for _, o := range r.Orphans {
		switch o.Kind {
		case KindReservation:
			do := "minicni status --fix releases it"
			if !o.Fixable {
				do = fmt.Sprintf("wait: younger than the grace period (%s), it may be an ADD under way; then minicni status --fix releases it", opt.Grace)
			}
			r.problem(secAddresses, fmt.Sprintf("%s is reserved for container %s (%s) but has neither host veth nor libcni cache entry", o.IP, short(o.ContainerID), o.IfName), do)
		case KindVeth:
			r.problem(secAddresses, fmt.Sprintf("host veth %s has no reservation: its pod may share an address with another", o.Veth),
				"delete the pod it belongs to (crictl pods; the runtime's GC then removes the veth), or ip link del "+o.Veth+" if no pod owns it")
		case KindCache:
			r.problem(secAddresses, fmt.Sprintf("libcni cache entry %s has neither host veth nor reservation", o.Cache),
				"harmless; the runtime's DEL or GC of container "+short(o.ContainerID)+" removes it (crictl rmp), or delete the file")
		case KindNetnsGone:
			r.problem(secAddresses, fmt.Sprintf("host veth %s belongs to container %s whose network namespace %s is gone", o.Veth, short(o.ContainerID), o.NetNS),
				"minicni status --fix removes the veth")
		case KindEarlierBoot:
			r.problem(secAddresses, fmt.Sprintf("%s is reserved for container %s since before this boot", o.IP, short(o.ContainerID)),
				"the next pod ADD or DEL releases it; minicni status --fix does it now")
		case KindNoVeth:
			r.problem(secAddresses, fmt.Sprintf("%s of container %s (%s) has its reservation and cache entry but no host veth: the pod has no network", o.IP, short(o.ContainerID), o.IfName),
				"delete the pod (the runtime's DEL releases the address), or, if it is gone, remove the pod sandbox with crictl rmp")
		}
	}
}

// short is a container ID's first 12 characters, as crictl shows them.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
