package routes

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

// TestModelMatchesDesired changes random nodes one at a time (added,
// changed, removed; subnets that collide, addresses that are invalid,
// shared or off the local subnets) and checks after each change the model
// accepts that it equals Desired over the whole new list: the same routes,
// refused and unreachable nodes with the same reasons, paths and VXLAN
// peers. A change it refuses leaves it equal to Desired over the old list;
// the test then rebuilds it, as the reconciler does.
func TestModelMatchesDesired(t *testing.T) {
	self := node("a", []string{"10.99.0.11"}, "172.18.0.0/24")
	for _, mode := range []overlay.Mode{overlay.Auto, overlay.None, overlay.VXLAN} {
		t.Run(string(mode), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(17, uint64(len(mode))))
			random := func(name string) nodes.Node {
				var ip string
				switch r := rng.IntN(20); {
				case r < 10:
					ip = fmt.Sprintf("10.99.0.%d", 12+rng.IntN(40)) // on the local subnet
				case r < 18:
					ip = fmt.Sprintf("192.168.7.%d", 1+rng.IntN(40)) // elsewhere: VXLAN, MACs may collide
				case r < 19:
					ip = "10.99.0.11" // this node's: invalid
				default:
					ip = "not-an-ip"
				}
				n := node(name, []string{ip})
				switch rng.IntN(8) {
				case 0: // no podCIDR yet
				case 1:
					n.PodCIDRs = []string{fmt.Sprintf("172.18.%d.0/23", 2*(1+rng.IntN(30)))}
				default:
					n.PodCIDRs = []string{fmt.Sprintf("172.18.%d.0/24", 1+rng.IntN(60))}
				}
				if rng.IntN(6) == 0 {
					n.PodCIDRs = append(n.PodCIDRs, fmt.Sprintf("fd00:18:0:%x::/64", 1+rng.IntN(60)))
				}
				return n
			}
			list := map[string]nodes.Node{"a": self}
			for i := range 30 {
				list[fmt.Sprintf("n%d", i)] = random(fmt.Sprintf("n%d", i))
			}
			all := func() []nodes.Node { return slices.Collect(maps.Values(list)) }
			_, m := desired("a", all(), local, mode)
			applied := 0
			for step := range 500 {
				name := fmt.Sprintf("n%d", rng.IntN(40))
				var n *nodes.Node
				if rng.IntN(5) > 0 {
					v := random(name)
					n = &v
				}
				_, _, _, _, ok := m.apply(name, n)
				if !ok {
					checkModel(t, step, m, all(), mode) // unchanged
				}
				if n != nil {
					list[name] = *n
				} else {
					delete(list, name)
				}
				if !ok {
					_, m = desired("a", all(), local, mode)
					continue
				}
				applied++
				checkModel(t, step, m, all(), mode)
				if t.Failed() {
					return
				}
			}
			if applied < 150 {
				t.Errorf("only %d of 500 changes applied node by node: the test does not exercise the model", applied)
			}
		})
	}
}

func checkModel(t *testing.T, step int, m *model, list []nodes.Node, mode overlay.Mode) {
	t.Helper()
	rep := Desired("a", list, local, mode)
	routes := map[netip.Prefix]Route{}
	invalid, unreachable, paths := map[string]string{}, map[string]string{}, map[Path]int{}
	peers := 0
	for name, e := range m.nodes {
		if !e.valid() {
			invalid[name] = rep.Invalid[name] // conflicts: Desired's reason is the reference
			if e.err != "" {
				invalid[name] = e.err
			}
		} else if e.unreachable != "" {
			unreachable[name] = e.unreachable
		}
		if p, ok := e.path(); ok {
			paths[p]++
		}
		if e.valid() {
			for _, r := range e.routes {
				routes[r.Dst] = r
			}
			if e.vxlan() {
				peers++
			}
		}
	}
	want := map[Path]int{}
	for _, p := range rep.Paths {
		want[p]++
	}
	got := map[Path]int{}
	for p, n := range m.paths {
		if n > 0 {
			got[p] = n
		}
	}
	switch {
	case !maps.Equal(routes, rep.Desired):
		t.Errorf("step %d: routes\n%v\nwant\n%v", step, routes, rep.Desired)
	case !maps.Equal(invalid, rep.Invalid):
		t.Errorf("step %d: invalid\n%v\nwant\n%v", step, invalid, rep.Invalid)
	case !maps.Equal(unreachable, rep.Unreachable):
		t.Errorf("step %d: unreachable\n%v\nwant\n%v", step, unreachable, rep.Unreachable)
	case !maps.Equal(paths, want) || !maps.Equal(got, want):
		t.Errorf("step %d: paths %v, counted %v, want %v", step, paths, got, want)
	case peers != len(rep.Peers) || m.peers != peers:
		t.Errorf("step %d: %d VXLAN peers, counted %d, want %d", step, peers, m.peers, len(rep.Peers))
	}
}
