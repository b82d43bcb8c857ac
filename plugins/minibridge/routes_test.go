package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
)

// podRoutes renders the routes of every table on ifname in n, one string
// each, as "dst via gw table T metric P scope S mtu M advmss A" (the parts
// that are zero left out, except table).
func podRoutes(t *testing.T, n ns.NetNS, ifname string) []string {
	t.Helper()
	var out []string
	minitest.Do(t, n, func() error {
		l, err := netlinksafe.LinkByName(ifname)
		if err != nil {
			return err
		}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := netlinksafe.RouteListFiltered(fam, &netlink.Route{LinkIndex: l.Attrs().Index, Table: 0},
				netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
			if err != nil {
				return err
			}
			for _, r := range routes {
				out = append(out, renderRoute(r))
			}
		}
		return nil
	})
	return out
}

func renderRoute(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		if ones, _ := r.Dst.Mask.Size(); ones != 0 {
			dst = r.Dst.String()
		}
	}
	s := dst
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	s += fmt.Sprintf(" table %d", r.Table)
	for _, kv := range []struct {
		k string
		v int
	}{{"metric", r.Priority}, {"scope", int(r.Scope)}, {"mtu", r.MTU}, {"advmss", r.AdvMSS}} {
		if kv.v != 0 {
			s += fmt.Sprintf(" %s %d", kv.k, kv.v)
		}
	}
	return s
}

// TestRouteKeys: routes from the IPAM with mtu, advmss, priority, table
// and scope are programmed in the pod as given (the plugins library's
// ipam.ConfigureIface would drop mtu and advmss), in every CNI version,
// with miniipam and host-local; the result carries them; CHECK verifies
// each, naming a missing or changed one; a 1.1.0 result gives every
// interface's mtu, older ones do not. Results of 0.1.0 and 0.2.0 have no
// such keys: there the IPAM's routes come with dst and gw only, in-process
// miniipam's as the binary's.
func TestRouteKeys(t *testing.T) {
	routes := []map[string]any{
		{"dst": "0.0.0.0/0"},
		{"dst": "10.60.0.0/16", "gw": "10.52.0.254", "mtu": 1400, "advmss": 1360, "priority": 50},
		{"dst": "10.61.0.0/16", "table": 100, "priority": 7},
		{"dst": "10.62.0.0/16", "scope": 253},
		{"dst": "fd00:60::/64", "mtu": 1300, "priority": 300},
	}
	// As the kernel shows them (IPv6 routes get metric 1024 when none is
	// given; a route's scope is 0, universe, unless given).
	want := []string{
		"default via 10.52.0.1 table 254",
		"10.60.0.0/16 via 10.52.0.254 table 254 metric 50 mtu 1400 advmss 1360",
		"10.61.0.0/16 via 10.52.0.1 table 100 metric 7",
		"10.62.0.0/16 table 254 scope 253",
		"fd00:60::/64 via fd00:52::1 table 254 metric 300 mtu 1300",
		"default via fd00:52::1 table 254 metric 1024", // isDefaultGateway
	}
	wantOld := []string{
		"default via 10.52.0.1 table 254",
		"10.60.0.0/16 via 10.52.0.254 table 254",
		"10.61.0.0/16 via 10.52.0.1 table 254",
		"10.62.0.0/16 via 10.52.0.1 table 254",
		"fd00:60::/64 via fd00:52::1 table 254 metric 1024",
		"default via fd00:52::1 table 254 metric 1024",
	}
	// The result's routes, sorted.
	wantResult := []string{
		`{"dst":"0.0.0.0/0"}`,
		`{"dst":"10.60.0.0/16","gw":"10.52.0.254","mtu":1400,"advmss":1360,"priority":50}`,
		`{"dst":"10.61.0.0/16","priority":7,"table":100}`,
		`{"dst":"10.62.0.0/16","scope":253}`,
		`{"dst":"::/0","gw":"fd00:52::1"}`,
		`{"dst":"fd00:60::/64","mtu":1300,"priority":300}`,
	}
	wantResultOld := []string{
		`{"dst":"0.0.0.0/0"}`,
		`{"dst":"10.60.0.0/16","gw":"10.52.0.254"}`,
		`{"dst":"10.61.0.0/16"}`,
		`{"dst":"10.62.0.0/16"}`,
		`{"dst":"::/0","gw":"fd00:52::1"}`,
		`{"dst":"fd00:60::/64"}`,
	}
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			minitest.ForEachVersion(t, func(t *testing.T, ver string) {
				t.Parallel()
				host := minitest.NewNS(t)
				n := newNetwork(t, ipam, "10.52.0.0/24", "fd00:52::/64")
				n.extra["mtu"] = 1450
				n.ipamExtra["routes"] = routes
				p := newPod(t)
				out := run(t, host, p.call("ADD", n.conf(t, ver, nil)))
				res := parseResult(t, ver, out)

				wantPod, wantResult := want, wantResult
				if preV03(ver) {
					// Results of 0.1.0 and 0.2.0 give a route only dst and gw:
					// the IPAM's result in that version has no more.
					wantPod, wantResult = wantOld, wantResultOld
				}
				got := podRoutes(t, p.ns, p.if_)
				for _, w := range wantPod {
					if !slices.Contains(got, w) {
						t.Errorf("pod lacks route %q; it has:\n%s", w, strings.Join(got, "\n"))
					}
				}
				var inResult []string
				for _, r := range res.Routes {
					b, _ := json.Marshal(r)
					inResult = append(inResult, string(b))
				}
				slices.Sort(inResult)
				if d := cmp.Diff(wantResult, inResult); d != "" {
					t.Errorf("result routes (-want +got):\n%s", d)
				}

				var raw struct {
					Interfaces []map[string]any `json:"interfaces"`
				}
				if err := json.Unmarshal(out, &raw); err != nil {
					t.Fatal(err)
				}
				if preV03(ver) != (len(raw.Interfaces) == 0) {
					t.Errorf("%s result has %d interfaces", ver, len(raw.Interfaces))
				}
				for _, iface := range raw.Interfaces {
					mtu, has := iface["mtu"]
					if ver == "1.1.0" && mtu != float64(1450) {
						t.Errorf("1.1.0 result: interface %v has mtu %v, want 1450", iface["name"], mtu)
					}
					if ver != "1.1.0" && has {
						t.Errorf("%s result: interface %v carries mtu, which this version lacks", ver, iface["name"])
					}
				}

				if canCheck(ver) {
					check := p.call("CHECK", n.conf(t, ver, out))
					run(t, host, check)
					v6 := []string{"-6", "route"}
					drifts := []struct {
						name      string
						cmd, undo [][]string
						mention   string
					}{
						{"table route gone", [][]string{{"route", "del", "10.61.0.0/16", "table", "100"}},
							[][]string{{"route", "add", "10.61.0.0/16", "via", "10.52.0.1", "table", "100", "metric", "7"}},
							"route 10.61.0.0/16 via 10.52.0.1 table 100 metric 7 is missing"},
						{"mtu changed", [][]string{{"route", "change", "10.60.0.0/16", "via", "10.52.0.254", "metric", "50", "mtu", "1200", "advmss", "1360"}},
							[][]string{{"route", "change", "10.60.0.0/16", "via", "10.52.0.254", "metric", "50", "mtu", "1400", "advmss", "1360"}},
							"route 10.60.0.0/16 via 10.52.0.254 metric 50 mtu 1400 advmss 1360 differs: mtu 1200, want 1400"},
						{"advmss changed", [][]string{{"route", "change", "10.60.0.0/16", "via", "10.52.0.254", "metric", "50", "mtu", "1400", "advmss", "1000"}},
							[][]string{{"route", "change", "10.60.0.0/16", "via", "10.52.0.254", "metric", "50", "mtu", "1400", "advmss", "1360"}},
							"advmss 1000, want 1360"},
						{"scope changed", [][]string{{"route", "replace", "10.62.0.0/16", "dev", p.if_, "scope", "host"}},
							[][]string{{"route", "replace", "10.62.0.0/16", "dev", p.if_, "scope", "link"}},
							"route 10.62.0.0/16 scope 253 differs: scope 254, want 253"},
						{"metric changed", [][]string{
							append(v6, "del", "fd00:60::/64", "metric", "300"),
							append(v6, "add", "fd00:60::/64", "via", "fd00:52::1", "metric", "301", "mtu", "1300")},
							[][]string{
								append(v6, "del", "fd00:60::/64", "metric", "301"),
								append(v6, "add", "fd00:60::/64", "via", "fd00:52::1", "metric", "300", "mtu", "1300")},
							"route fd00:60::/64 via fd00:52::1 metric 300 mtu 1300 differs: priority 301, want 300"},
					}
					for _, d := range drifts {
						for _, c := range d.cmd {
							ipCmd(t, p.ns, c...)
						}
						_, cniErr, err := execIn(host, check)
						for _, c := range d.undo {
							ipCmd(t, p.ns, c...)
						}
						if err != nil {
							t.Fatal(err)
						}
						if cniErr == nil || cniErr.Code != libmini.CodeCheckFailed || !strings.Contains(cniErr.Msg, d.mention) {
							t.Errorf("CHECK with %s: %+v, want code %d naming %q", d.name, cniErr, libmini.CodeCheckFailed, d.mention)
						}
						run(t, host, check)
					}
				}
				run(t, host, p.call("DEL", n.conf(t, ver, out)))
				expectDetached(t, host, n, p)
			})
		})
	}
}
