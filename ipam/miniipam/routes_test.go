package main

import (
	"encoding/json"
	"testing"

	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini/minitest"
)

// TestRouteKeysInResult: every key of a route in ipam.routes (dst, gw, mtu,
// advmss, priority, table, scope) reaches the ADD result unchanged, in
// every version whose result has them (0.3.0 on); 0.1.0 and 0.2.0 results
// give a route only dst and gw.
func TestRouteKeysInResult(t *testing.T) {
	const route = `{"dst":"10.70.0.0/16","gw":"10.21.0.254","mtu":1400,"advmss":1360,"priority":50,"table":100,"scope":0}`
	ipam := `{"subnet":"10.21.0.0/24","routes":[` + route + `]}`
	minitest.ForEachVersion(t, func(t *testing.T, ver string) {
		out := mustOK(t, call{cmd: "ADD", id: "c1", stdin: netConf(ver, "miniipam", t.TempDir(), ipam)})
		var res struct {
			Routes []json.RawMessage `json:"routes"`
			IP4    struct {
				Routes []json.RawMessage `json:"routes"`
			} `json:"ip4"`
		}
		if err := json.Unmarshal(out.stdout, &res); err != nil {
			t.Fatal(err)
		}
		got, want := res.Routes, route
		if ok, _ := cniversion.GreaterThanOrEqualTo(ver, "0.3.0"); !ok {
			got, want = res.IP4.Routes, `{"dst":"10.70.0.0/16","gw":"10.21.0.254"}`
		}
		if len(got) != 1 {
			t.Fatalf("routes in the %s result: %s", ver, out.stdout)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got[0], &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("route in the %s result (-want +got):\n%s", ver, d)
		}
	})
}
