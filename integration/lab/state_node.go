package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
)

// NodeState is what a node holds on behalf of pods: veths, IPAM reservations
// and iptables rules (as iptables-save and ip6tables-save print them).
type NodeState struct {
	Veths        []string
	Reservations []string
	Rules        []string
}

func (s NodeState) String() string {
	return fmt.Sprintf("%d veths, %d reservations, %d rules", len(s.Veths), len(s.Reservations), len(s.Rules))
}

// State reads n's veths (other than its underlay eth0), the reservations in
// its IPAM data dir and its iptables rules.
func (l *Lab) State(n *Node) (NodeState, error) {
	var s NodeState
	err := n.Do(func() error {
		links, err := netlinksafe.LinkList()
		if err != nil {
			return err
		}
		for _, link := range links {
			if link.Type() == "veth" && link.Attrs().Name != "eth0" {
				s.Veths = append(s.Veths, link.Attrs().Name)
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	entries, err := os.ReadDir(filepath.Join(l.Opts.StateDir, n.Name, "ipam", n.Conflist.Name))
	if err != nil && !os.IsNotExist(err) {
		return s, err
	}
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			s.Reservations = append(s.Reservations, e.Name())
		}
	}
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command("ip", "netns", "exec", n.Name, bin).CombinedOutput()
		if err != nil {
			return s, fmt.Errorf("%s in %s: %v: %s", bin, n.Name, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-A ") {
				s.Rules = append(s.Rules, bin+" "+line)
			}
		}
	}
	return s, nil
}

// Detach runs the chain's DEL for p without touching its namespace. With
// emptyNetNS, CNI_NETNS is empty, as in containerd's second DEL or after the
// sandbox's namespace is gone.
func (l *Lab) Detach(ctx context.Context, p *Pod, emptyNetNS bool) error {
	rt := *p.rt
	if emptyNetNS {
		rt.NetNS = ""
	}
	if err := p.Node.Do(func() error { return p.Node.CNI.DelNetworkList(ctx, p.Node.Conflist, &rt) }); err != nil {
		return fmt.Errorf("DEL %s: %w", p.Name, err)
	}
	return nil
}
