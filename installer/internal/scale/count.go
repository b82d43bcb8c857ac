package scale

import (
	"net"
	"time"

	"github.com/minicni/minicni/installer/overlay"
	"github.com/vishvananda/netlink"
)

// Counter is an overlay.Netlink that passes every call on to the real
// handle and counts it: one netlink request per call (a dump is one
// request, however many entries it answers with; Entries counts those).
// It only counts: the kernel does all the work.
type Counter struct {
	overlay.Netlink
	Requests int            // calls, each one request to the kernel
	Writes   int            // of which requests that change something
	Entries  int            // links, addresses, neighbours and routes dumped
	ByCall   map[string]int // calls by method name
	// Kernel is the time spent in the calls: sending, the kernel's work,
	// receiving and decoding.
	Kernel time.Duration
}

// NewCounter wraps h.
func NewCounter(h overlay.Netlink) *Counter { return &Counter{Netlink: h, ByCall: map[string]int{}} }

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.Requests, c.Writes, c.Entries, c.ByCall, c.Kernel = 0, 0, 0, map[string]int{}, 0
}

// since adds the time since start to Kernel.
func (c *Counter) since(start time.Time) { c.Kernel += time.Since(start) }

func (c *Counter) read(name string, n int) {
	c.Requests++
	c.Entries += n
	c.ByCall[name]++
}

func (c *Counter) write(name string) {
	c.Requests++
	c.Writes++
	c.ByCall[name]++
}

func (c *Counter) LinkByName(name string) (netlink.Link, error) {
	defer c.since(time.Now())
	c.read("LinkByName", 1)
	return c.Netlink.LinkByName(name)
}

func (c *Counter) LinkByIndex(index int) (netlink.Link, error) {
	defer c.since(time.Now())
	c.read("LinkByIndex", 1)
	return c.Netlink.LinkByIndex(index)
}

func (c *Counter) LinkList() ([]netlink.Link, error) {
	defer c.since(time.Now())
	l, err := c.Netlink.LinkList()
	c.read("LinkList", len(l))
	return l, err
}

func (c *Counter) LinkAdd(link netlink.Link) error {
	defer c.since(time.Now())
	c.write("LinkAdd")
	return c.Netlink.LinkAdd(link)
}

func (c *Counter) LinkDel(link netlink.Link) error {
	defer c.since(time.Now())
	c.write("LinkDel")
	return c.Netlink.LinkDel(link)
}

func (c *Counter) LinkSetAlias(link netlink.Link, name string) error {
	defer c.since(time.Now())
	c.write("LinkSetAlias")
	return c.Netlink.LinkSetAlias(link, name)
}

func (c *Counter) LinkSetHardwareAddr(link netlink.Link, hw net.HardwareAddr) error {
	defer c.since(time.Now())
	c.write("LinkSetHardwareAddr")
	return c.Netlink.LinkSetHardwareAddr(link, hw)
}

func (c *Counter) LinkSetMTU(link netlink.Link, mtu int) error {
	defer c.since(time.Now())
	c.write("LinkSetMTU")
	return c.Netlink.LinkSetMTU(link, mtu)
}

func (c *Counter) LinkSetUp(link netlink.Link) error {
	defer c.since(time.Now())
	c.write("LinkSetUp")
	return c.Netlink.LinkSetUp(link)
}

func (c *Counter) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	defer c.since(time.Now())
	a, err := c.Netlink.AddrList(link, family)
	c.read("AddrList", len(a))
	return a, err
}

func (c *Counter) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	defer c.since(time.Now())
	c.write("AddrDel")
	return c.Netlink.AddrDel(link, addr)
}

func (c *Counter) AddrReplace(link netlink.Link, addr *netlink.Addr) error {
	defer c.since(time.Now())
	c.write("AddrReplace")
	return c.Netlink.AddrReplace(link, addr)
}

func (c *Counter) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	defer c.since(time.Now())
	n, err := c.Netlink.NeighList(linkIndex, family)
	c.read("NeighList", len(n))
	return n, err
}

func (c *Counter) NeighSet(neigh *netlink.Neigh) error {
	defer c.since(time.Now())
	c.write("NeighSet")
	return c.Netlink.NeighSet(neigh)
}

func (c *Counter) NeighDel(neigh *netlink.Neigh) error {
	defer c.since(time.Now())
	c.write("NeighDel")
	return c.Netlink.NeighDel(neigh)
}

func (c *Counter) RouteList(link netlink.Link, family int) ([]netlink.Route, error) {
	defer c.since(time.Now())
	r, err := c.Netlink.RouteList(link, family)
	c.read("RouteList", len(r))
	return r, err
}

func (c *Counter) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	defer c.since(time.Now())
	r, err := c.Netlink.RouteListFiltered(family, filter, mask)
	c.read("RouteListFiltered", len(r))
	return r, err
}

func (c *Counter) RouteReplace(route *netlink.Route) error {
	defer c.since(time.Now())
	c.write("RouteReplace")
	return c.Netlink.RouteReplace(route)
}

func (c *Counter) RouteDel(route *netlink.Route) error {
	defer c.since(time.Now())
	c.write("RouteDel")
	return c.Netlink.RouteDel(route)
}
