package bridge

import (
	"errors"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestRtnlMatchesNetlink: rtnl's reads give what the netlink library's
// package-level functions give for the same objects: links by name and by
// index, a missing link (the same error text, and unix.ENODEV), and the
// addresses of one link among others' (a peer address, a label, IPv6).
func TestRtnlMatchesNetlink(t *testing.T) {
	n := minitest.NewNS(t)
	ipCmd(t, n, "link", "add", "la", "mtu", "1400", "type", "veth", "peer", "name", "lb")
	ipCmd(t, n, "link", "set", "la", "up")
	ipCmd(t, n, "link", "set", "lb", "up")
	for _, a := range [][]string{
		{"10.1.0.1", "peer", "10.1.0.2/32", "dev", "la"},
		{"10.2.0.1/24", "dev", "la", "label", "la:x"},
		{"10.3.0.1/24", "dev", "la"},
		{"10.3.0.2/24", "dev", "lb"},
		{"fd00:1::1/64", "dev", "la", "nodad"},
		{"fd00:2::1/64", "dev", "lb", "nodad"},
	} {
		ipCmd(t, n, append([]string{"addr", "add"}, a...)...)
	}
	minitest.Do(t, n, func() error {
		c, err := openRtnl()
		if err != nil {
			return err
		}
		defer c.Close()
		want, err := netlinksafe.LinkByName("la")
		if err != nil {
			return err
		}
		for _, get := range []func() (netlink.Link, error){
			func() (netlink.Link, error) { return c.linkByName("la") },
			func() (netlink.Link, error) { return c.linkByIndex(want.Attrs().Index) },
		} {
			got, err := get()
			if err != nil {
				return err
			}
			ga, wa := *got.Attrs(), *want.Attrs()
			ga.Statistics, wa.Statistics = nil, nil // rtnl asks for none
			if d := cmp.Diff(wa, ga); d != "" {
				t.Errorf("link (-netlink +rtnl):\n%s", d)
			}
		}
		_, werr := netlink.LinkByName("nosuch")
		_, gerr := c.linkByName("nosuch")
		if gerr == nil || werr == nil || gerr.Error() != werr.Error() || !errors.Is(gerr, unix.ENODEV) {
			t.Errorf("missing link: rtnl %v, netlink %v", gerr, werr)
		}
		if ok, err := c.linkExists("nosuch"); ok || err != nil {
			t.Errorf("linkExists(nosuch) = %v, %v", ok, err)
		}
		if ok, err := c.linkExists("la"); !ok || err != nil {
			t.Errorf("linkExists(la) = %v, %v", ok, err)
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			want, err := netlinksafe.AddrList(want, family)
			if err != nil {
				return err
			}
			got, err := c.addrList(want[0].LinkIndex, family)
			if err != nil {
				return err
			}
			if d := cmp.Diff(want, got); d != "" || len(got) < 2 {
				t.Errorf("family %d: %d addresses (-netlink +rtnl):\n%s", family, len(got), d)
			}
		}
		return nil
	})
}
