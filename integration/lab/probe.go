package lab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// Ping sends one ICMP echo from h's namespace to ip and returns the round-trip
// time the reply took.
func Ping(ctx context.Context, h *Host, ip net.IP) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.Name, "ping", "-n", "-c", "1", "-W", "2", ip.String()).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ping %s from %s: %v: %s", ip, h.Name, err, lastLine(string(out)))
	}
	m := rttRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("ping %s from %s: no round-trip time in %q", ip, h.Name, out)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond)), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// SourceSeen connects over TCP from `from` to a listener in `at` and returns
// the source address the listener saw: the node's address when the pod's
// traffic was masqueraded, the pod's own otherwise.
func SourceSeen(ctx context.Context, from, at *Host) (net.IP, error) {
	var ln net.Listener
	err := at.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(at.IP.String(), "0"))
		return err
	})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	seen := make(chan net.IP, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(seen)
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP
		c.Close()
	}()
	err = from.Do(func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("connect from %s to %s: %w", from.Name, ln.Addr(), err)
	}
	select {
	case ip, ok := <-seen:
		if !ok {
			return nil, fmt.Errorf("listener in %s failed", at.Name)
		}
		return ip.To4(), nil
	case <-time.After(3 * time.Second):
		return nil, fmt.Errorf("listener in %s saw no connection", at.Name)
	}
}

// Check is one cell of the connectivity matrix.
type Check struct {
	From, To *Pod   // To is nil for a host target
	Kind     string // "own node", "other node", "pod same node", "pod other node", "outside"
	Target   net.IP
	RTT      time.Duration
	Err      error
}

// Matrix probes the original minicni walkthrough's connectivity checks, plus
// egress, from every pod: its own node, another node, a pod on the same node,
// a pod on another node, and the outside host (which must see the node's
// address as the source, proving masquerade).
func (l *Lab) Matrix(ctx context.Context) []Check {
	var checks []Check
	for _, n := range l.Nodes {
		for _, p := range n.Pods {
			checks = append(checks, Check{From: p, Kind: "own node", Target: n.IP})
			if o := l.otherNode(n); o != nil {
				checks = append(checks, Check{From: p, Kind: "other node", Target: o.IP})
			}
			if q := otherPod(n.Pods, p); q != nil {
				checks = append(checks, Check{From: p, To: q, Kind: "pod same node", Target: q.IP})
			}
			if o := l.otherNode(n); o != nil && len(o.Pods) > 0 {
				checks = append(checks, Check{From: p, To: o.Pods[0], Kind: "pod other node", Target: o.Pods[0].IP})
			}
			checks = append(checks, Check{From: p, Kind: "outside", Target: l.Outside.IP})
		}
	}
	for i := range checks {
		c := &checks[i]
		c.RTT, c.Err = Ping(ctx, &c.From.Host, c.Target)
		if c.Err == nil && c.Kind == "outside" {
			src, err := SourceSeen(ctx, &c.From.Host, l.Outside)
			if err != nil {
				c.Err = err
			} else if !src.Equal(c.From.Node.IP) {
				c.Err = fmt.Errorf("outside host saw source %s, want the node's %s (no masquerade)", src, c.From.Node.IP)
			}
		}
	}
	return checks
}

func (l *Lab) otherNode(n *Node) *Node {
	for _, o := range l.Nodes {
		if o != n {
			return o
		}
	}
	return nil
}

func otherPod(pods []*Pod, p *Pod) *Pod {
	for _, q := range pods {
		if q != p {
			return q
		}
	}
	return nil
}
