package minitest

import (
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Do runs f with the calling goroutine's thread inside n; an error fails
// the test.
func Do(t testing.TB, n ns.NetNS, f func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// LinkNames lists the names of n's links, sorted.
func LinkNames(t testing.TB, n ns.NetNS) []string {
	t.Helper()
	var names []string
	Do(t, n, func() error {
		links, err := netlinksafe.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	slices.Sort(names)
	return names
}

// GlobalAddrs lists the addresses of link in n as prefixes, without
// link-local ones, sorted.
func GlobalAddrs(t testing.TB, n ns.NetNS, link string) []string {
	t.Helper()
	var out []string
	Do(t, n, func() error {
		l, err := netlinksafe.LinkByName(link)
		if err != nil {
			return err
		}
		addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if !a.IP.IsLinkLocalUnicast() {
				out = append(out, a.IPNet.String())
			}
		}
		return err
	})
	slices.Sort(out)
	return out
}
