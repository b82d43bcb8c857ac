package integration

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/integration/lab"
)

func stateOf(t *testing.T, l *lab.Lab, n *lab.Node) lab.NodeState {
	t.Helper()
	s, err := l.State(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func requireAllPass(t *testing.T, checks []lab.Check, kinds ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range checks {
		seen[c.Kind]++
		if c.Err != nil {
			t.Errorf("%s -> %s (%s %s): %v", c.From.Name, c.Kind, c.Target, c.From.Node.Name, c.Err)
		}
	}
	for _, k := range kinds {
		if seen[k] == 0 {
			t.Errorf("no %q check ran", k)
		}
	}
}

// TestOneNode: pod to pod, pod to node (gateway and the node's own address)
// and pod to an outside host that must see the node's address (FORWARD and
// masquerade), then CHECK, then DEL leaves nothing behind.
func TestOneNode(t *testing.T) {
	l, ctx := newLab(t, 1, "10-minicni.conflist", noRoutes)
	n := l.Nodes[0]
	before := stateOf(t, l, n)
	a, err := l.AddPod(ctx, n, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddPod(ctx, n, "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*lab.Pod{a, b} {
		if !n.PodCIDR.Contains(p.IP) {
			t.Errorf("pod %s got %s, outside the node subnet %s", p.Name, p.IP, n.PodCIDR)
		}
		if err := l.CheckPod(ctx, p); err != nil {
			t.Errorf("CHECK %s: %v", p.Name, err)
		}
		if _, err := lab.Ping(ctx, &p.Host, n.Gateway); err != nil {
			t.Errorf("pod %s to the gateway: %v", p.Name, err)
		}
	}
	requireAllPass(t, l.Matrix(ctx), "own node", "pod same node", "outside")

	for _, p := range []*lab.Pod{a, b} {
		if err := l.DelPod(ctx, p, false); err != nil {
			t.Fatal(err)
		}
	}
	after := stateOf(t, l, n)
	if len(after.Veths) != 0 || len(after.Reservations) != 0 {
		t.Errorf("after DEL: veths %v, reservations %v", after.Veths, after.Reservations)
	}
	if len(before.Rules) != 0 {
		t.Errorf("rules existed before any pod: %v", before.Rules)
	}
}

// TestTwoNodes: each node has its own /24 of one /16, and learns the other's
// either from miniroute's static routes or from minicni-installer's agent fed
// a nodes file (as it reads Node objects on a cluster), directly or, with
// --overlay vxlan, over VXLAN. The four checks of the original minicni
// walkthrough, an MTU-sized ping with DF across nodes, and egress; the
// matrix fails a cell whose path is not the one wanted.
func TestTwoNodes(t *testing.T) {
	for _, tt := range []struct {
		name, routes, overlay, want string
	}{
		{"static", staticRoutes, "", lab.PathDirect},
		{"agent", agentRoutes, "", lab.PathDirect},
		{"agent-vxlan", agentRoutes, "vxlan", lab.PathVXLAN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, ctx := newLab(t, 2, "10-minicni.conflist", tt.routes, func(o *lab.Options) { o.Overlay = tt.overlay })
			podsOnEveryNode(t, ctx, l, "a", "b")
			checks := l.Matrix(ctx)
			requireAllPass(t, checks, "own node", "other node", "pod same node", "pod other node", "pod other node, DF", "outside")
			requirePaths(t, checks, map[string]string{lab.KindPodOther: tt.want, lab.KindPodOtherDF: tt.want})
			delAllPods(t, ctx, l)
		})
	}
}

// TestRouted: three nodes on two underlay segments joined by a router, the
// agents with their default overlay (auto): the two nodes on one segment
// route each other's pods directly, the third is reached over VXLAN both
// ways, an MTU-sized ping with DF passes on both paths, and the outside
// host, on the first segment, still sees every node's address.
func TestRouted(t *testing.T) {
	l, ctx := newLab(t, 3, "10-minicni.conflist", agentRoutes, func(o *lab.Options) { o.Topology = lab.Routed })
	if l.Nodes[0].Segment != l.Nodes[1].Segment || l.Nodes[0].Segment == l.Nodes[2].Segment {
		t.Fatalf("segments %d %d %d: want two nodes on one, the third on the other",
			l.Nodes[0].Segment, l.Nodes[1].Segment, l.Nodes[2].Segment)
	}
	podsOnEveryNode(t, ctx, l, "a", "b")
	checks := l.Matrix(ctx)
	requireAllPass(t, checks, "own node", "other node", "pod same node", "pod other node", "pod other node, DF", "outside")
	seen := map[string]int{}
	for _, c := range checks {
		if c.Kind == lab.KindPodOther || c.Kind == lab.KindPodOtherDF {
			seen[c.Path]++
		}
	}
	// 6 pods; n0 and n1's 4 pods reach 1 direct and 1 VXLAN peer, n2's 2
	// pods 2 VXLAN peers; each twice (default and DF ping).
	if seen[lab.PathDirect] != 8 || seen[lab.PathVXLAN] != 16 {
		t.Errorf("pod to other node paths %v, want 8 direct and 16 vxlan", seen)
	}
	// The DF cells send the largest ping the pod MTU allows: one byte
	// more, with DF, does not leave the pod.
	for _, c := range checks {
		if c.Kind == lab.KindPodOtherDF && c.Path == lab.PathVXLAN {
			if _, err := lab.PingDF(ctx, &c.From.Host, c.Target, c.Size+1); err == nil {
				t.Errorf("%s -> %s: a DF ping of %d B passed, more than the pod MTU allows", c.From.Name, c.Target, c.Size+1)
			}
			break
		}
	}
	delAllPods(t, ctx, l)
}

func podsOnEveryNode(t *testing.T, ctx context.Context, l *lab.Lab, names ...string) {
	t.Helper()
	for _, n := range l.Nodes {
		for _, name := range names {
			if _, err := l.AddPod(ctx, n, name, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func delAllPods(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, n := range l.Nodes {
		for _, p := range append([]*lab.Pod(nil), n.Pods...) {
			if err := l.DelPod(ctx, p, false); err != nil {
				t.Error(err)
			}
		}
	}
}

// requirePaths fails when a check of a kind in want took another path.
func requirePaths(t *testing.T, checks []lab.Check, want map[string]string) {
	t.Helper()
	for _, c := range checks {
		if w, ok := want[c.Kind]; ok && c.Path != w {
			t.Errorf("%s -> %s %s: path %q, want %q", c.From.Name, c.Label(), c.Target, c.Path, w)
		}
	}
}

// TestHostPort: the chain with portmap; a hostPort on the node reaches the pod
// from outside the cluster.
func TestHostPort(t *testing.T) {
	l, ctx := newLab(t, 1, "10-minicni.conflist", noRoutes)
	n := l.Nodes[0]
	const hostPort, podPort = 8080, 80
	p, err := l.AddPod(ctx, n, "web", map[string]any{"portMappings": []map[string]any{
		{"hostPort": hostPort, "containerPort": podPort, "protocol": "tcp"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := p.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", podPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", p.Name)
			c.Close()
		}
	}()
	var got string
	err = l.Outside.Do(func() error {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", n.IP, hostPort), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		k, err := c.Read(buf)
		got = string(buf[:k])
		return err
	})
	if err != nil || !strings.Contains(got, p.Name) {
		t.Fatalf("outside -> %s:%d: %q, %v", n.IP, hostPort, got, err)
	}
	if err := l.DelPod(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	if s := stateOf(t, l, n); len(s.Veths)+len(s.Reservations) != 0 {
		t.Errorf("after DEL: %+v", s)
	}
}

// TestGCAndStatus: GC through libcni releases a reservation left behind by a
// pod that was never deleted; STATUS answers.
func TestGCAndStatus(t *testing.T) {
	l, ctx := newLab(t, 1, "50-minicni-1.1.0.conflist", noRoutes)
	n := l.Nodes[0]
	keep, err := l.AddPod(ctx, n, "keep", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddPod(ctx, n, "leak", nil); err != nil {
		t.Fatal(err)
	}
	if got := len(stateOf(t, l, n).Reservations); got != 2 {
		t.Fatalf("%d reservations, want 2", got)
	}
	err = n.Do(func() error {
		if err := n.CNI.GetStatusNetworkList(ctx, n.Conflist); err != nil {
			return fmt.Errorf("STATUS: %w", err)
		}
		return n.CNI.GCNetworkList(ctx, n.Conflist, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{
			{ContainerID: keep.ContainerID, IfName: keep.IfName},
		}})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, l, n)
	if len(s.Reservations) != 1 || s.Reservations[0] != keep.IP.String() {
		t.Errorf("after GC: reservations %v, want only %s", s.Reservations, keep.IP)
	}
	if err := l.CheckPod(ctx, keep); err != nil {
		t.Errorf("CHECK of the kept pod after GC: %v", err)
	}
}

// TestRulesDoNotGrowWithPods: after 100 pods the node holds exactly the rules
// it held after 1; after every DEL no veth, reservation or per-pod rule is left.
func TestRulesDoNotGrowWithPods(t *testing.T) {
	l, ctx := newLab(t, 1, "10-minicni.conflist", noRoutes)
	n := l.Nodes[0]
	if _, err := l.AddPod(ctx, n, "p0", nil); err != nil {
		t.Fatal(err)
	}
	one := stateOf(t, l, n)
	if len(one.Rules) == 0 {
		t.Fatal("no iptables rule after the first pod: miniroute did nothing")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 99)
	sem := make(chan struct{}, 8)
	for i := 1; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := l.AddPod(ctx, n, fmt.Sprintf("p%d", i), nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hundred := stateOf(t, l, n)
	if len(hundred.Veths) != 100 || len(hundred.Reservations) != 100 {
		t.Errorf("100 pods: %d veths, %d reservations", len(hundred.Veths), len(hundred.Reservations))
	}
	if strings.Join(one.Rules, "\n") != strings.Join(hundred.Rules, "\n") {
		t.Errorf("rules after 1 pod:\n%s\nafter 100 pods:\n%s", strings.Join(one.Rules, "\n"), strings.Join(hundred.Rules, "\n"))
	}
	for _, p := range append([]*lab.Pod(nil), n.Pods...) {
		if err := l.DelPod(ctx, p, p.Name[len(p.Name)-1]%2 == 0); err != nil {
			t.Error(err)
		}
	}
	after := stateOf(t, l, n)
	if len(after.Veths) != 0 || len(after.Reservations) != 0 {
		t.Errorf("after DEL: veths %v, reservations %v", after.Veths, after.Reservations)
	}
	if strings.Join(one.Rules, "\n") != strings.Join(after.Rules, "\n") {
		t.Errorf("per-pod rules left after DEL:\n%s", strings.Join(after.Rules, "\n"))
	}
}

// TestConflistVariants: every conflist an admin may pick attaches a pod that
// reaches its gateway (over IPv6 too for the dual-stack one), passes CHECK and
// leaves nothing after DEL.
func TestConflistVariants(t *testing.T) {
	files, err := filepath.Glob(conflistPath("*.conflist"))
	if err != nil || len(files) < 5 {
		t.Fatalf("conflists: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			l, ctx := newLab(t, 1, filepath.Base(f), noRoutes)
			n := l.Nodes[0]
			p, err := l.AddPod(ctx, n, "a", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lab.Ping(ctx, &p.Host, n.Gateway); err != nil {
				t.Error(err)
			}
			for _, ipc := range p.Result.IPs {
				if ipc.Address.IP.To4() == nil {
					if ipc.Gateway == nil {
						t.Fatalf("IPv6 address %s without a gateway", ipc.Address.String())
					}
					if _, err := lab.Ping(ctx, &p.Host, ipc.Gateway); err != nil {
						t.Errorf("IPv6: %v", err)
					}
				}
			}
			if err := l.CheckPod(ctx, p); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			if err := l.DelPod(ctx, p, false); err != nil {
				t.Fatal(err)
			}
			if s := stateOf(t, l, n); len(s.Veths)+len(s.Reservations) != 0 {
				t.Errorf("after DEL: %+v", s)
			}
		})
	}
}
