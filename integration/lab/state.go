package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// saved is what a kept lab writes to StateDir/lab.json, so that `status` and
// `down` in a later process find it.
type saved struct {
	Name, BinDir, StateDir, ClusterCIDR, Underlay string
	Topology, Underlay2, Agent, Overlay           string
	DualStack                                     bool   `json:",omitempty"`
	ClusterCIDR6                                  string `json:",omitempty"`
	Outside                                       Host
	Router                                        *Host `json:",omitempty"`
	Nodes                                         []savedNode
}

type savedNode struct {
	Host
	Index   int
	Segment int
	Subnet  string
	PodCIDR string
	// PodCIDR6 is the IPv6 pod subnet of a DualStack lab.
	PodCIDR6 string `json:",omitempty"`
	Pods     []savedPod
}

type savedPod struct {
	Host
	ContainerID string
	IfName      string
	Result      json.RawMessage
}

// Save writes the lab's description to StateDir/lab.json.
func (l *Lab) Save() error {
	s := saved{Name: l.Opts.Name, BinDir: l.Opts.BinDir, StateDir: l.Opts.StateDir,
		ClusterCIDR: l.Opts.ClusterCIDR, Underlay: l.Opts.Underlay, Topology: l.Opts.Topology, Underlay2: l.Opts.Underlay2,
		Agent: l.Opts.Agent, Overlay: l.Opts.Overlay, Outside: *l.Outside, Router: l.Router,
		DualStack: l.Opts.DualStack, ClusterCIDR6: l.Opts.ClusterCIDR6}
	for _, n := range l.Nodes {
		sn := savedNode{Host: n.Host, Index: n.Index, Segment: n.Segment, Subnet: n.Subnet.String(), PodCIDR: n.PodCIDR.String()}
		if n.PodCIDR6 != nil {
			sn.PodCIDR6 = n.PodCIDR6.String()
		}
		for _, p := range n.Pods {
			res, err := json.Marshal(p.Result)
			if err != nil {
				return err
			}
			sn.Pods = append(sn.Pods, savedPod{Host: p.Host, ContainerID: p.ContainerID, IfName: p.IfName, Result: res})
		}
		s.Nodes = append(s.Nodes, sn)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Opts.StateDir, "lab.json"), b, 0o600)
}

// Load reads a lab saved in stateDir. The returned lab owns the state
// directory: Down removes it.
func Load(stateDir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "lab.json"))
	if err != nil {
		return nil, err
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", stateDir, err)
	}
	l := &Lab{Opts: Options{Name: s.Name, BinDir: s.BinDir, StateDir: s.StateDir, ClusterCIDR: s.ClusterCIDR,
		Underlay: s.Underlay, Topology: s.Topology, Underlay2: s.Underlay2, Agent: s.Agent, Overlay: s.Overlay,
		DualStack: s.DualStack, ClusterCIDR6: s.ClusterCIDR6, Logf: func(string, ...any) {}}, Router: s.Router, ownState: true}
	out := s.Outside
	l.Outside = &out
	l.Underlay = &Host{Name: s.Name + "-ul"}
	for _, sn := range s.Nodes {
		n := &Node{Host: sn.Host, Index: sn.Index, Segment: sn.Segment}
		if _, n.PodCIDR, err = net.ParseCIDR(sn.PodCIDR); err != nil {
			return nil, err
		}
		if _, n.Subnet, err = net.ParseCIDR(sn.Subnet); err != nil {
			return nil, err
		}
		n.Gateway = hostIP(n.PodCIDR, 1)
		if sn.PodCIDR6 != "" {
			if _, n.PodCIDR6, err = net.ParseCIDR(sn.PodCIDR6); err != nil {
				return nil, err
			}
			n.Gateway6 = hostIP6(n.PodCIDR6, 1)
		}
		dir := filepath.Join(s.StateDir, n.Name)
		if n.Conflist, err = libcni.ConfListFromFile(filepath.Join(dir, "chain.conflist")); err != nil {
			return nil, err
		}
		n.CNI = libcni.NewCNIConfigWithCacheDir([]string{s.BinDir}, filepath.Join(dir, "cache"), nil)
		for _, sp := range sn.Pods {
			p := &Pod{Host: sp.Host, Node: n, ContainerID: sp.ContainerID, IfName: sp.IfName}
			p.Result = &current.Result{}
			if err := json.Unmarshal(sp.Result, p.Result); err != nil {
				return nil, err
			}
			p.setIPs()
			p.rt = &libcni.RuntimeConf{ContainerID: p.ContainerID, NetNS: p.Path(), IfName: p.IfName}
			n.Pods = append(n.Pods, p)
		}
		l.Nodes = append(l.Nodes, n)
	}
	return l, nil
}
