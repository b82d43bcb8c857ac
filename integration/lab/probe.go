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

	"github.com/vishvananda/netlink"
)

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// Ping sends one ICMP echo from h's namespace to ip and returns the round-trip
// time the reply took.
func Ping(ctx context.Context, h *Host, ip net.IP) (time.Duration, error) {
	return PingDF(ctx, h, ip, 0)
}

// PingDF is Ping with size bytes of ICMP payload and the don't-fragment
// bit set, when size > 0: the echo passes only when every link on the way
// carries a packet of size+28 bytes (IPv4) whole.
func PingDF(ctx context.Context, h *Host, ip net.IP, size int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	args := []string{"netns", "exec", h.Name, "ping", "-n", "-c", "1", "-W", "2"}
	if size > 0 {
		args = append(args, "-M", "do", "-s", strconv.Itoa(size))
	}
	out, err := exec.CommandContext(ctx, "ip", append(args, ip.String())...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ping %s from %s: %v: %s", ip, h.Name, err, pingError(string(out)))
	}
	m := rttRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("ping %s from %s: no round-trip time in %q", ip, h.Name, out)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond)), err
}

// pingError is the line of ping's output that says why it failed: an
// ICMP error ("From … Frag needed …") or a local one ("ping: …"), else
// the last line (the statistics).
func pingError(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "From ") || strings.HasPrefix(l, "ping: ") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// SourceSeen connects over TCP from `from` to a listener in `at` and returns
// the source address the listener saw: the node's address when the pod's
// traffic was masqueraded, the pod's own otherwise.
func SourceSeen(ctx context.Context, from, at *Host) (net.IP, error) {
	return SourceSeenAt(ctx, from, at, at.IP)
}

// SourceSeenAt is SourceSeen with the listener on addr, one of at's
// addresses: IPv4 or IPv6.
func SourceSeenAt(ctx context.Context, from, at *Host, addr net.IP) (net.IP, error) {
	var ln net.Listener
	err := at.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
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
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
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
		if v4 := ip.To4(); v4 != nil {
			return v4, nil
		}
		return ip, nil
	case <-time.After(3 * time.Second):
		return nil, fmt.Errorf("listener in %s saw no connection", at.Name)
	}
}

// The kinds of Check.
const (
	KindOwnNode     = "own node"
	KindOtherNode   = "other node"
	KindPodSameNode = "pod same node"
	KindPodOther    = "pod other node"
	KindPodOtherDF  = "pod other node, DF"
	KindOutside     = "outside"
)

// Check is one cell of the connectivity matrix.
type Check struct {
	From *Pod
	// Src is the pod's address of the target's family: From.IP, or
	// From.IP6 in an IPv6 cell.
	Src    net.IP
	To     *Host // the target's namespace: a pod's, a node's or the outside host's
	Kind   string
	Target net.IP
	// Size is, for KindPodOtherDF, the ICMP payload sent with DF set: the
	// pod's MTU minus 28 (IPv4 and ICMP headers; 48 for IPv6 and ICMPv6),
	// the largest that fits.
	Size int
	// Want is the path the cell must take (see Path); Path is the one the
	// node's routes gave.
	Want, Path string
	// Masq: the target (another node, the outside host) saw the node's
	// address (of the cell's family) as the source.
	Masq bool
	RTT  time.Duration
	Err  error
}

// PathLabel is the path and, when masqueraded, ", masq".
func (c Check) PathLabel() string {
	if c.Masq {
		return c.Path + ", masq"
	}
	return c.Path
}

// Label is the check's name in the matrix: its kind, and the size of a
// DF ping.
func (c Check) Label() string {
	if c.Size > 0 {
		return fmt.Sprintf("%s %d B", c.Kind, c.Size)
	}
	return c.Kind
}

// Matrix probes the original minicni walkthrough's connectivity checks, plus
// egress, from every pod: its own node, every other node, a pod on the same
// node, a pod on every other node (once with a default ping, once with the
// largest ping the pod MTU allows and DF set) and the outside host (which
// must see the node's address as the source, proving masquerade). Each cell
// also reads the path the node gives the packet (Path) and fails when it is
// not the one the lab's topology and routing call for: a pod on a peer on
// the same segment directly, one on the other segment over VXLAN (with the
// agents' default overlay). With DualStack, each pod's cells are followed
// by the same cells over IPv6: from its IPv6 address to each target's.
func (l *Lab) Matrix(ctx context.Context) []Check {
	var checks []Check
	for _, n := range l.Nodes {
		for _, p := range n.Pods {
			first := len(checks)
			checks = append(checks, Check{From: p, To: &n.Host, Kind: KindOwnNode, Target: n.IP, Want: PathLocal})
			for _, o := range l.Nodes {
				if o != n {
					checks = append(checks, Check{From: p, To: &o.Host, Kind: KindOtherNode, Target: o.IP, Want: underlayPath(n, o.Segment)})
				}
			}
			if q := otherPod(n.Pods, p); q != nil {
				checks = append(checks, Check{From: p, To: &q.Host, Kind: KindPodSameNode, Target: q.IP, Want: PathBridge})
			}
			for _, o := range l.Nodes {
				if o != n && len(o.Pods) > 0 {
					q, want := o.Pods[0], l.wantPath(n, o)
					checks = append(checks, Check{From: p, To: &q.Host, Kind: KindPodOther, Target: q.IP, Want: want},
						Check{From: p, To: &q.Host, Kind: KindPodOtherDF, Target: q.IP, Want: want})
				}
			}
			checks = append(checks, Check{From: p, To: l.Outside, Kind: KindOutside, Target: l.Outside.IP, Want: underlayPath(n, 0)})
			for i := first; i < len(checks); i++ {
				checks[i].Src = p.IP
			}
			if p.IP6 == nil || !l.Opts.DualStack {
				continue
			}
			for _, c := range checks[first:] {
				c.Src, c.Target = p.IP6, c.To.IP6
				checks = append(checks, c)
			}
		}
	}
	for i := range checks {
		checks[i].Err = l.probe(ctx, &checks[i])
	}
	return checks
}

// probe runs one cell: the path, the ping, and for a host off the pod
// network the source address it sees.
func (l *Lab) probe(ctx context.Context, c *Check) error {
	if c.Src == nil {
		c.Src = c.From.IP
	}
	v6 := c.Target.To4() == nil
	if c.Kind == KindPodOtherDF {
		mtu, err := c.From.MTU()
		if err != nil {
			return err
		}
		c.Size = mtu - 28
		if v6 {
			c.Size = mtu - 48
		}
	}
	var err error
	if c.Path, err = l.PathFrom(c.From, c.Src, c.Target); err != nil {
		return err
	}
	if c.RTT, err = PingDF(ctx, &c.From.Host, c.Target, c.Size); err != nil {
		return err
	}
	if c.Kind == KindOtherNode || c.Kind == KindOutside {
		src, err := SourceSeenAt(ctx, &c.From.Host, c.To, c.Target)
		if err != nil {
			return err
		}
		node := c.From.Node.IP
		if v6 {
			node = c.From.Node.IP6
		}
		c.Masq = src.Equal(node)
		if !c.Masq && c.Kind == KindOutside {
			return fmt.Errorf("outside host saw source %s, want the node's %s (no masquerade)", src, node)
		}
	}
	if c.Want != "" && c.Path != c.Want {
		return fmt.Errorf("the node routed it %s, want %s", c.Path, c.Want)
	}
	return nil
}

// MTU is the MTU of the pod's interface.
func (p *Pod) MTU() (int, error) {
	var mtu int
	err := p.Do(func() error {
		link, err := netlink.LinkByName(p.IfName)
		if err != nil {
			return fmt.Errorf("pod %s: %s: %w", p.Name, p.IfName, err)
		}
		mtu = link.Attrs().MTU
		return nil
	})
	return mtu, err
}

func otherPod(pods []*Pod, p *Pod) *Pod {
	for _, q := range pods {
		if q != p {
			return q
		}
	}
	return nil
}
