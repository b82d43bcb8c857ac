package integration

import (
	"testing"

	"github.com/minicni/minicni/integration/lab"
)

// TestDualStackMatrix: a dual-stack lab (IPv4 and IPv6 pod subnets on every
// node, IPv6 on the underlay) through the default conflist, whose template
// has IPv4 only: every pod gets an address in each of its node's subnets,
// and every cell of the matrix (own node, other node, pod on the same node,
// pod on another node, with DF at the pod MTU, outside) passes in both
// families, on the path its topology calls for; the outside host and the
// other nodes see the node's IPv6 address as the source of IPv6 traffic
// (masquerade). Flat with the agents and with static routes, and routed
// (the third node over VXLAN, for IPv6 pod subnets too).
func TestDualStackMatrix(t *testing.T) {
	for _, tt := range []struct {
		name, routes, topology string
		nodes                  int
	}{
		{"flat-agent", agentRoutes, lab.Flat, 2},
		{"flat-static", staticRoutes, lab.Flat, 2},
		{"routed-agent", agentRoutes, lab.Routed, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, ctx := newLab(t, tt.nodes, "10-minicni.conflist", tt.routes, func(o *lab.Options) {
				o.DualStack, o.Topology = true, tt.topology
			})
			podsOnEveryNode(t, ctx, l, "a", "b")
			for _, n := range l.Nodes {
				for _, p := range n.Pods {
					if p.IP6 == nil || !n.PodCIDR.Contains(p.IP) || !n.PodCIDR6.Contains(p.IP6) {
						t.Errorf("pod %s got %s and %v, want one address in %s and one in %s", p.Name, p.IP, p.IP6, n.PodCIDR, n.PodCIDR6)
					}
				}
			}
			checks := l.Matrix(ctx)
			requireAllPass(t, checks, lab.KindOwnNode, lab.KindOtherNode, lab.KindPodSameNode, lab.KindPodOther, lab.KindPodOtherDF, lab.KindOutside)
			// Every IPv4 cell has its IPv6 twin: same kind, same target
			// host, same path.
			type cell struct{ from, to, kind, path string }
			v4, v6 := map[cell]int{}, map[cell]int{}
			for _, c := range checks {
				k := cell{c.From.Name, c.To.Name, c.Kind, c.PathLabel()}
				switch {
				case c.Src.To4() != nil && c.Target.To4() != nil:
					v4[k]++
				case c.Src.To4() == nil && c.Target.To4() == nil && c.Src.Equal(c.From.IP6):
					v6[k]++
				default:
					t.Errorf("%s -> %s: source %s and target %s of different families", c.From.Name, c.Label(), c.Src, c.Target)
				}
				if (c.Kind == lab.KindOutside || c.Kind == lab.KindOtherNode) && !c.Masq {
					t.Errorf("%s -> %s %s: the target did not see the node's address", c.From.Name, c.Label(), c.Target)
				}
				if c.Kind == lab.KindPodOtherDF && c.Target.To4() == nil && c.Size == 0 {
					t.Errorf("%s -> %s %s: no DF size", c.From.Name, c.Label(), c.Target)
				}
			}
			if len(v4) == 0 || len(v4) != len(v6) {
				t.Errorf("%d IPv4 cells, %d IPv6 cells: want as many", len(v4), len(v6))
			}
			for k, n := range v4 {
				if v6[k] != n {
					t.Errorf("IPv4 cell %+v (x%d) has %d IPv6 twins", k, n, v6[k])
				}
			}
			delAllPods(t, ctx, l)
			for _, n := range l.Nodes {
				if s := stateOf(t, l, n); len(s.Veths) != 0 || len(s.Reservations) != 0 {
					t.Errorf("node %s after every DEL: %s", n.Name, s)
				}
			}
		})
	}
}
