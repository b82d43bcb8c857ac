package routes

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

// TestUpdateMatchesSync drives one reconciler through node events with
// Update only (the agent's pass after an event) and checks after each that
// the kernel holds exactly what a full Sync wants: a second reconciler's
// Sync, which reads everything back, finds nothing to change. The steps
// cover the incremental path (a VXLAN peer added, moved, made direct, its
// subnet changed, an overlap refusing two nodes and its end) and the
// fallbacks to a Sync (the first pass; the last VXLAN peer gone, which
// removes the device; the first one back).
func TestUpdateMatchesSync(t *testing.T) {
	a, _ := twonode.NewRouted(t)
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24", "fd00:18::/64")
	b := node("b", []string{"10.99.1.12"}, "172.18.1.0/24", "fd00:18:0:1::/64")
	var log bytes.Buffer
	r := withOverlay(New(a.H, logTo(&log)), overlay.Auto)

	steps := []struct {
		name  string
		list  []nodes.Node
		logs  []string // substrings of the pass's log, in order
		paths map[Path]int
	}{
		{"first pass", []nodes.Node{self, b}, []string{"created device", "added route"}, map[Path]int{VXLAN: 1}},
		{"VXLAN peer added", []nodes.Node{self, b, node("c", []string{"192.168.7.7"}, "172.18.2.0/24")},
			[]string{"added FDB entry 0a:58:c0:a8:07:07 dst 192.168.7.7 node c", "set neighbour 172.18.2.0", "added route"}, map[Path]int{VXLAN: 2}},
		{"VXLAN peer moves", []nodes.Node{self, b, node("c", []string{"192.168.7.8"}, "172.18.2.0/24")},
			[]string{"deleted FDB entry 0a:58:c0:a8:07:07 dst 192.168.7.7", "added FDB entry 0a:58:c0:a8:07:08", "set neighbour 172.18.2.0 lladdr 0a:58:c0:a8:07:08"}, map[Path]int{VXLAN: 2}},
		{"peer becomes direct", []nodes.Node{self, b, node("c", []string{"10.99.0.13"}, "172.18.2.0/24")},
			[]string{"deleted FDB entry 0a:58:c0:a8:07:08", "deleted neighbour 172.18.2.0", "replaced route"}, map[Path]int{VXLAN: 1, Direct: 1}},
		{"direct peer's subnet changes", []nodes.Node{self, b, node("c", []string{"10.99.0.13"}, "172.18.3.0/24")},
			[]string{`deleted route" dst=172.18.2.0/24`, `added route" dst=172.18.3.0/24`}, map[Path]int{VXLAN: 1, Direct: 1}},
		{"overlapping node refuses both", []nodes.Node{self, b, node("c", []string{"10.99.0.13"}, "172.18.3.0/24"), node("d", []string{"10.99.0.14"}, "172.18.3.0/25")},
			[]string{"ignoring node", "ignoring node", `deleted route" dst=172.18.3.0/24`}, map[Path]int{VXLAN: 1, Invalid: 2}},
		{"overlap gone", []nodes.Node{self, b, node("c", []string{"10.99.0.13"}, "172.18.3.0/24")},
			[]string{`added route" dst=172.18.3.0/24`}, map[Path]int{VXLAN: 1, Direct: 1}},
		{"last VXLAN peer removed", []nodes.Node{self, node("c", []string{"10.99.0.13"}, "172.18.3.0/24")},
			[]string{"deleted VXLAN device"}, map[Path]int{Direct: 1}},
		{"VXLAN peer back", []nodes.Node{self, b, node("c", []string{"10.99.0.13"}, "172.18.3.0/24")},
			[]string{"created device", `added route" dst=172.18.1.0/24`}, map[Path]int{VXLAN: 1, Direct: 1}},
	}
	for _, s := range steps {
		log.Reset()
		st, err := r.Update("a", s.list)
		if err != nil {
			t.Fatalf("%s: Update: %v", s.name, err)
		}
		got := log.String()
		for _, want := range s.logs {
			i := strings.Index(got, want)
			if i < 0 {
				t.Errorf("%s: the log lacks %q (in order):\n%s", s.name, want, log.String())
				break
			}
			got = got[i+len(want):]
		}
		for p, n := range s.paths {
			if st.Peers[p] != n {
				t.Errorf("%s: peers by path %v, want %v", s.name, st.Peers, s.paths)
			}
		}
		check := withOverlay(New(a.H, nil), overlay.Auto)
		if st, err := check.Sync("a", s.list); err != nil || st.Changes != 0 || st.OverlayChanges != 0 {
			t.Errorf("%s: a full Sync after the Update changed %d routes and %d overlay items (err %v): Update left the kernel wrong\n%s",
				s.name, st.Changes, st.OverlayChanges, err, strings.Join(overlayState(t, a.H), "\n"))
		}
		if routes := overlayRoutes(t, a.H); st.Programmed != len(routes) {
			t.Errorf("%s: Programmed %d, kernel %v", s.name, st.Programmed, routes)
		}
	}
}

// TestUpdateAfterDrift: Update trusts its memory, so a device deleted
// behind its back makes the next Update fail; the one after is a Sync and
// repairs everything.
func TestUpdateAfterDrift(t *testing.T) {
	a, _ := twonode.NewRouted(t)
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24")
	b := node("b", []string{"10.99.1.12"}, "172.18.1.0/24")
	c := node("c", []string{"192.168.7.7"}, "172.18.2.0/24")
	r := withOverlay(New(a.H, nil), overlay.Auto)
	if _, err := r.Update("a", []nodes.Node{self, b}); err != nil {
		t.Fatal(err)
	}
	vx, err := a.H.LinkByName(overlay.DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.H.LinkDel(vx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Update("a", []nodes.Node{self, b, c}); err == nil {
		t.Error("Update onto a deleted device succeeded")
	}
	st, err := r.Update("a", []nodes.Node{self, b, c})
	if err != nil || st.Programmed != 2 {
		t.Fatalf("the Update after a failed one: %+v %v, want a Sync programming 2 routes", st, err)
	}
	check := withOverlay(New(a.H, nil), overlay.Auto)
	if st, err := check.Sync("a", []nodes.Node{self, b, c}); err != nil || st.Changes != 0 || st.OverlayChanges != 0 {
		t.Errorf("not repaired: a Sync changed %+v (%v)\n%s", st, err, strings.Join(overlayState(t, a.H), "\n"))
	}
	want := []string{"route 172.18.1.0/24 via 172.18.1.0 dev minicni.vxlan onlink", "route 172.18.2.0/24 via 172.18.2.0 dev minicni.vxlan onlink"}
	if diff := cmp.Diff(want, overlayRoutes(t, a.H)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// overlayRoutes is the route lines of overlayState.
func overlayRoutes(t *testing.T, h netlinksafe.Handle) []string {
	t.Helper()
	var out []string
	for _, l := range overlayState(t, h) {
		if strings.HasPrefix(l, "route ") {
			out = append(out, l)
		}
	}
	return out
}

// TestUpdateNodes: single-node changes applied without the list leave the
// kernel as a full Sync wants it; a change that reaches another node (an
// overlapping subnet) or the device (the first VXLAN peer) is declined
// with nothing applied, and Update with the whole list then does it.
func TestUpdateNodes(t *testing.T) {
	a, _ := twonode.NewRouted(t)
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24")
	b := node("b", []string{"10.99.0.12"}, "172.18.1.0/24")
	var log bytes.Buffer
	r := withOverlay(New(a.H, logTo(&log)), overlay.Auto)
	list := map[string]nodes.Node{"a": self, "b": b}
	all := func() []nodes.Node { return slices.Collect(maps.Values(list)) }
	if _, ok, _ := r.UpdateNodes("a", []nodes.Node{b}, nil); ok {
		t.Fatal("UpdateNodes applied a change with nothing remembered")
	}
	if _, err := r.Update("a", all()); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		st, err := withOverlay(New(a.H, nil), overlay.Auto).Sync("a", all())
		if err != nil || st.Changes != 0 || st.OverlayChanges != 0 {
			t.Errorf("%s: a full Sync then changed %+v (%v)\n%s", what, st, err, strings.Join(overlayState(t, a.H), "\n"))
		}
	}
	steps := []struct {
		name    string
		changed []nodes.Node
		removed []string
		ok      bool
		log     string
	}{
		{"direct peer added", []nodes.Node{node("c", []string{"10.99.0.13"}, "172.18.2.0/24")}, nil, true, `msg="added route" dst=172.18.2.0/24`},
		{"first VXLAN peer: the device comes", []nodes.Node{node("d", []string{"192.168.7.7"}, "172.18.3.0/24")}, nil, false, ""},
		{"second VXLAN peer", []nodes.Node{node("e", []string{"192.168.7.8"}, "172.18.4.0/24")}, nil, true, "added FDB entry 0a:58:c0:a8:07:08"},
		{"VXLAN peer moves", []nodes.Node{node("e", []string{"192.168.7.9"}, "172.18.4.0/24")}, nil, true, "deleted FDB entry 0a:58:c0:a8:07:08"},
		{"a subnet overlapping c's", []nodes.Node{node("f", []string{"10.99.0.16"}, "172.18.2.0/25")}, nil, false, ""},
		{"the overlapping node removed (refused for a conflict)", nil, []string{"f"}, false, ""},
		{"peer with an invalid value", []nodes.Node{node("g", []string{"not-an-ip"}, "172.18.6.0/24")}, nil, true, `msg="ignoring node: invalid value" node=g`},
		{"peer changes path", []nodes.Node{node("c", []string{"192.168.7.3"}, "172.18.2.0/24")}, nil, true, `msg="peer path" overlay=auto node=c path=vxlan was=direct`},
		{"peers removed", nil, []string{"c", "g"}, true, `msg="deleted route" dst=172.18.2.0/24`},
	}
	for _, s := range steps {
		log.Reset()
		before := overlayState(t, a.H)
		_, ok, err := r.UpdateNodes("a", s.changed, s.removed)
		if err != nil || ok != s.ok {
			t.Fatalf("%s: UpdateNodes ok %v, err %v; want ok %v", s.name, ok, err, s.ok)
		}
		for _, n := range s.changed {
			list[n.Name] = n
		}
		for _, name := range s.removed {
			delete(list, name)
		}
		if !ok {
			if diff := cmp.Diff(before, overlayState(t, a.H)); diff != "" {
				t.Errorf("%s: declined, but changed the kernel:\n%s", s.name, diff)
			}
			if _, err := r.Update("a", all()); err != nil {
				t.Fatalf("%s: Update: %v", s.name, err)
			}
		} else if !strings.Contains(log.String(), s.log) {
			t.Errorf("%s: the log lacks %q:\n%s", s.name, s.log, log.String())
		}
		check(s.name)
	}
}
