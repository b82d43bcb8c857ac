package bridge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
)

// TestResolveMTURoutes: with mtu 0, resolveMTU takes the MTU of the first
// default route's link in the main table (IPv4 first), whatever else the
// node's tables hold, including thousands of routes (an agent's, one per
// node). Each case also checks that the route dump minibridge used before
// (every route decoded by netlinksafe.RouteList, oldResolveMTU) gives the
// same answer.
func TestResolveMTURoutes(t *testing.T) {
	many := func(n int, format string, a ...string) []string {
		var cmds []string
		for i := range n {
			cmds = append(cmds, fmt.Sprintf(format, i/256, i%256)+" "+strings.Join(a, " "))
		}
		return cmds
	}
	for _, tt := range []struct {
		name   string
		routes []string // ip -batch lines; links la (MTU 1400), lb (1300), lc (1280)
		want   int
	}{
		{"no route at all", nil, DefaultMTU},
		{"IPv4 default", []string{"route add default dev la"}, 1400},
		{"default only in another table", []string{"route add default dev la table 100", "route add ::/0 dev lc table 100"}, DefaultMTU},
		{"unreachable default first", []string{"route add unreachable default metric 10", "route add default dev lb metric 20"}, 1300},
		{"blackhole only", []string{"route add blackhole default"}, DefaultMTU},
		{"lower metric listed first", []string{"route add default dev la metric 200", "route add default dev lb metric 100"}, 1300},
		{"TOS route listed first", []string{"route add default dev la", "route add default tos 0x10 dev lb"}, 1300},
		{"multipath: first nexthop", []string{"route add default nexthop dev lb nexthop dev la"}, 1300},
		{"IPv4 before IPv6", []string{"route add ::/0 dev lc", "route add default dev la"}, 1400},
		{"IPv6 default only", []string{"route add ::/0 dev lc", "route add 10.9.0.0/16 dev la"}, 1280},
		{"5000 IPv4 routes and a default", append(many(5000, "route add 100.%d.%d.0/24 dev lb"), "route add default dev la"), 1400},
		{"5000 IPv4 routes, no default", many(5000, "route add 100.%d.%d.0/24 dev lb"), DefaultMTU},
		{"3000 IPv6 routes and an IPv6 default", append(many(3000, "route add fd00:%d:%d::/64 dev la"), "route add ::/0 dev lc"), 1280},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host := minitest.NewNS(t)
			for _, l := range []struct {
				name, mtu string
			}{{"la", "1400"}, {"lb", "1300"}, {"lc", "1280"}} {
				ipCmd(t, host, "link", "add", l.name, "mtu", l.mtu, "type", "veth", "peer", "name", l.name+"p")
				ipCmd(t, host, "link", "set", l.name, "up")
				ipCmd(t, host, "link", "set", l.name+"p", "up")
			}
			if len(tt.routes) > 0 {
				batch := filepath.Join(t.TempDir(), "routes")
				if err := os.WriteFile(batch, []byte(strings.Join(tt.routes, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				ipCmd(t, host, "-batch", batch)
			}
			var got, old int
			minitest.Do(t, host, func() (err error) {
				if got, err = mtuOf(0); err != nil {
					return err
				}
				old, err = oldResolveMTU()
				return err
			})
			if got != tt.want || old != tt.want {
				t.Errorf("resolveMTU(0) = %d, the full dump gives %d; want %d", got, old, tt.want)
			}
		})
	}
}

// oldResolveMTU is how resolveMTU found the MTU before defaultRoutes: every
// route of the family decoded, the first in the main table with a nil or /0
// destination and a readable link wins.
func oldResolveMTU() (int, error) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlinksafe.RouteList(nil, family)
		if err != nil {
			return 0, err
		}
		for _, r := range routes {
			if r.Dst != nil && !isDefault(r.Dst) {
				continue
			}
			idx := r.LinkIndex
			if idx == 0 && len(r.MultiPath) > 0 {
				idx = r.MultiPath[0].LinkIndex
			}
			if idx == 0 {
				continue
			}
			l, err := netlink.LinkByIndex(idx)
			if err != nil {
				continue
			}
			return l.Attrs().MTU, nil
		}
	}
	return DefaultMTU, nil
}

// mtuOf is resolveMTU with an rtnl of the calling thread's netns.
func mtuOf(mtu int) (got int, _ error) {
	err := withRtnl(func(c *rtnl) (err error) { got, err = resolveMTU(c, mtu); return err })
	return got, err
}
