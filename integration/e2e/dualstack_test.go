package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The cluster is dual-stack (clusterCIDR and clusterCIDR6): each node has an
// IPv4 and an IPv6 podCIDR and InternalIP, the installer renders both
// families into the conflist, the agents route both, and every pod has an
// address of each family. These helpers run the IPv6 side of each step's
// pings, and the node -> pod pings of both families.

// podIPs6 reads each pod's IPv6 address from its status.podIPs and checks
// it lies in its node's IPv6 podCIDR.
func podIPs6(ctx context.Context, c *cluster, pods map[string]*node) (map[string]net.IP, error) {
	ips := map[string]net.IP{}
	for name, n := range pods {
		out, err := c.kubectl(ctx, "get", "pod", name, "-o", "jsonpath={.status.podIPs[*].ip}")
		if err != nil {
			return nil, err
		}
		for _, s := range strings.Fields(out) {
			if ip := net.ParseIP(s); ip != nil && ip.To4() == nil {
				ips[name] = ip
			}
		}
		cidr := c.podCIDR6[n.name]
		switch {
		case ips[name] == nil:
			return nil, fmt.Errorf("pod %s: no IPv6 address in podIPs %q", name, out)
		case cidr == nil || !cidr.Contains(ips[name]):
			return nil, fmt.Errorf("pod %s got %s, outside %s's IPv6 podCIDR %v", name, ips[name], n.name, cidr)
		}
	}
	return ips, nil
}

// nodePing pings to from the node's network namespace.
func nodePing(ctx context.Context, n *node, to net.IP) error {
	_, err := run(ctx, "ip", "netns", "exec", n.ns, "ping", "-c", "2", "-W", "3", to.String())
	return err
}

// pingCase is one ping of a step: from a pod (kubectl exec) or, with
// fromNode, from a node's namespace; vxlan: the pod's node must forward it
// through its VXLAN device.
type pingCase struct {
	what, from string
	fromNode   *node
	to         net.IP
	vxlan      bool
}

// runPings runs each case as a check. podIP and podNode give, for a vxlan
// case, the pod's address of the target's family and its node.
func runPings(t *testing.T, c *cluster, cases []pingCase, podIP map[string]net.IP, podNode map[string]*node) {
	t.Helper()
	for _, p := range cases {
		from := p.from
		if p.fromNode != nil {
			from = p.fromNode.name
		}
		check(t, fmt.Sprintf("%s (%s → %s)", p.what, from, p.to), 30*time.Second, func(ctx context.Context) error {
			if p.vxlan {
				n := podNode[p.from]
				dev, err := podRouteDev(ctx, n, podIP[p.from], p.to)
				if err != nil {
					return err
				}
				if vx, err := isVXLAN(ctx, n, dev); err != nil || !vx {
					return fmt.Errorf("%s forwards %s → %s through %s, not a VXLAN device (%v)", n.name, podIP[p.from], p.to, dev, err)
				}
			}
			if p.fromNode != nil {
				return nodePing(ctx, p.fromNode, p.to)
			}
			return ping(ctx, c, p.from, p.to)
		})
	}
}

// routeVia6 waits until each node of pairs routes the other's IPv6 podCIDR
// via the other's IPv6 InternalIP (a direct route).
func routeVia6(ctx context.Context, c *cluster, pairs ...[2]*node) error {
	return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		for _, p := range pairs {
			cidr := c.podCIDR6[p[1].name]
			out, err := run(ctx, "ip", "-6", "-n", p[0].ns, "route", "show", cidr.String())
			if err != nil {
				return false, "", err
			}
			if !strings.Contains(out, "via "+p[1].ip6) {
				return false, fmt.Sprintf("%s: route to %s: %q", p[0].name, cidr, out), nil
			}
		}
		return true, "", nil
	})
}
