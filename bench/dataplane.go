package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minicni/minicni/integration/lab"
)

// dataRow is one data-plane measurement: TCP throughput (iperf3) and mean
// ping round trip between two endpoints, in one round.
type dataRow struct {
	Path, Variant string
	Round         int
	Gbps          float64
	RTT           time.Duration
}

// dataplane measures every path and variant once per round, interleaved
// like the control plane, so that the medians compare like with like.
func (b *bencher) dataplane(ctx context.Context, rounds int) ([]dataRow, error) {
	var rows []dataRow
	for round := 1; round <= rounds; round++ {
		base, err := vethBaseline(ctx)
		if err != nil {
			return nil, fmt.Errorf("veth baseline: %w", err)
		}
		base.Round = round
		rows = append(rows, base)
		progress("data plane round %d %-10s %-22s %6.2f Gbit/s  rtt %s", round, "baseline", base.Path, base.Gbps, base.RTT)
		for _, nodes := range []int{1, 2} {
			for _, v := range variants {
				row, err := b.podToPod(ctx, v.name, nodes)
				if err != nil {
					return nil, fmt.Errorf("%s, %d node(s): %w", v.name, nodes, err)
				}
				row.Round = round
				rows = append(rows, row)
				progress("data plane round %d %-10s %-22s %6.2f Gbit/s  rtt %s", round, v.name, row.Path, row.Gbps, row.RTT)
			}
		}
		for _, o := range overlays {
			row, err := b.overTheOverlay(ctx, o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.path, err)
			}
			row.Round = round
			rows = append(rows, row)
			progress("data plane round %d %-10s %-22s %6.2f Gbit/s  rtt %s", round, row.Variant, row.Path, row.Gbps, row.RTT)
		}
	}
	return rows, nil
}

// The data-plane paths and the overlay rows' own.
const (
	pathVeth     = "veth pair"
	pathSameNode = "pod to pod, same node"
	pathTwoNodes = "pod to pod, two nodes"
	pathVXLAN    = "pod to pod, two nodes, VXLAN"
	pathRouted   = "pod to pod, two subnets, VXLAN via a router"
)

type overlay struct{ path, topology, overlay string }

// overlays are the VXLAN measurements: minicni's chain with one agent per
// node. On one underlay segment with --overlay vxlan, the only difference
// from the direct route of pathTwoNodes is the encapsulation; across a
// router (the lab's routed topology, default overlay), what a cluster
// spanning subnets gets.
var overlays = []overlay{
	{pathVXLAN, lab.Flat, "vxlan"},
	{pathRouted, lab.Routed, ""},
}

// overTheOverlay: one pod on each of two nodes whose agents route between
// them over VXLAN, checked before measuring (lab.Path).
func (b *bencher) overTheOverlay(ctx context.Context, o overlay) (dataRow, error) {
	l, err := lab.Up(ctx, lab.Options{Name: fmt.Sprintf("bch%d", b.seq.Add(1)), Nodes: 2, BinDir: b.bin,
		Conflist: b.tmpl["minicni"], Topology: o.topology, Overlay: o.overlay, Agent: filepath.Join(b.bin, "minicni-installer")})
	if err != nil {
		return dataRow{}, err
	}
	defer teardown("lab", l.Down)
	src, err := l.AddPod(ctx, l.Nodes[0], "src", nil)
	if err != nil {
		return dataRow{}, err
	}
	dst, err := l.AddPod(ctx, l.Nodes[1], "dst", nil)
	if err != nil {
		return dataRow{}, err
	}
	if path, err := l.Path(src, dst.IP); err != nil || path != lab.PathVXLAN {
		return dataRow{}, fmt.Errorf("%s routes %s to %s %q (%v), want %q", l.Nodes[0].Name, src.IP, dst.IP, path, err, lab.PathVXLAN)
	}
	return measure(ctx, o.path, "minicni", &src.Host, &dst.Host)
}

// vethBaseline: two namespaces joined by a plain veth pair.
func vethBaseline(ctx context.Context) (dataRow, error) {
	a, z := &lab.Host{Name: "bchv-a", IP: net.IPv4(10, 250, 0, 1)}, &lab.Host{Name: "bchv-z", IP: net.IPv4(10, 250, 0, 2)}
	defer teardown("veth baseline", func() error { return lab.DownByName("bchv") })
	for _, args := range [][]string{
		{"netns", "add", a.Name}, {"netns", "add", z.Name},
		{"link", "add", "eth0", "netns", a.Name, "type", "veth", "peer", "name", "eth0", "netns", z.Name},
		{"-n", a.Name, "addr", "add", "10.250.0.1/24", "dev", "eth0"},
		{"-n", z.Name, "addr", "add", "10.250.0.2/24", "dev", "eth0"},
		{"-n", a.Name, "link", "set", "eth0", "up"}, {"-n", z.Name, "link", "set", "eth0", "up"},
		{"-n", a.Name, "link", "set", "lo", "up"}, {"-n", z.Name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return dataRow{}, fmt.Errorf("ip %v: %v %s", args, err, out)
		}
	}
	return measure(ctx, pathVeth, "baseline", a, z)
}

// podToPod: two pods on one node, or one on each of two nodes.
func (b *bencher) podToPod(ctx context.Context, v string, nodes int) (dataRow, error) {
	l, err := b.up(ctx, v, nodes, true)
	if err != nil {
		return dataRow{}, err
	}
	defer teardown("lab", l.Down)
	if nodes == 2 && !strings.Contains(string(b.tmpl[v]), "miniroute") {
		// The reference chains have no route plugin: add by hand what
		// miniroute's static routes (or the installer's agent) would.
		for i, n := range l.Nodes {
			o := l.Nodes[1-i]
			if out, err := exec.Command("ip", "-n", n.Name, "route", "replace", o.PodCIDR.String(), "via", o.IP.String()).CombinedOutput(); err != nil {
				return dataRow{}, fmt.Errorf("route: %v %s", err, out)
			}
		}
	}
	src, err := l.AddPod(ctx, l.Nodes[0], "src", nil)
	if err != nil {
		return dataRow{}, err
	}
	dst, err := l.AddPod(ctx, l.Nodes[nodes-1], "dst", nil)
	if err != nil {
		return dataRow{}, err
	}
	path := pathSameNode
	if nodes == 2 {
		path = pathTwoNodes
	}
	return measure(ctx, path, v, &src.Host, &dst.Host)
}

var rttAvgRE = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)

// iperfGbps reads the received throughput of iperf3 -J output; an error or a
// zero figure is an error.
func iperfGbps(out []byte) (float64, error) {
	var ip struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &ip); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if ip.Error != "" || ip.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3: no throughput (%q)", ip.Error)
	}
	return ip.End.SumReceived.BitsPerSecond / 1e9, nil
}

// measure runs iperf3 for 3 s from src to an iperf3 server in dst, then 20
// pings, all over dst.IP.
func measure(ctx context.Context, path, variant string, src, dst *lab.Host) (dataRow, error) {
	row := dataRow{Path: path, Variant: variant}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A long-running server (killed below): a one-off (-1) server can be
	// used up by a client attempt made before it listened properly.
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", dst.Name, "iperf3", "-s", "-B", dst.IP.String())
	if err := srv.Start(); err != nil {
		return row, err
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait() // killed by us: its exit status says nothing
	}()
	var out []byte
	var err error
	for range 50 { // until the server listens and a whole test ran
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", src.Name, "iperf3", "-c", dst.IP.String(), "-t", "3", "-J").Output()
		if err == nil {
			if row.Gbps, err = iperfGbps(out); err == nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return row, fmt.Errorf("iperf3: %v: %s", err, out)
	}
	out, err = exec.CommandContext(ctx, "ip", "netns", "exec", src.Name, "ping", "-n", "-q", "-c", "20", "-i", "0.01", dst.IP.String()).CombinedOutput()
	if err != nil {
		return row, fmt.Errorf("ping: %v: %s", err, out)
	}
	m := rttAvgRE.FindStringSubmatch(string(out))
	if m == nil {
		return row, fmt.Errorf("ping output: %s", out)
	}
	avg, _ := strconv.ParseFloat(m[1], 64)
	row.RTT = time.Duration(avg * float64(time.Millisecond))
	return row, nil
}
