// Command minicni-lab brings up a simulated minicni cluster on this machine,
// made of network namespaces (see package lab), attaches pods through the
// real plugin chain and prints the connectivity matrix of the original
// minicni walkthrough, with the path each check took. It exits non-zero
// when any check fails.
//
//	minicni-lab up [--topology flat|routed] [--nodes 2 (flat), 3 (routed)] [--pods 2] [--dual-stack] [--keep]
//	               [--routes agent|static] [--overlay auto|vxlan|none] [--bin bin] [--conflist conflist/10-minicni.conflist]
//	minicni-lab status [--name lab]
//	minicni-lab down [--name lab]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/minicni/minicni/integration/lab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, os.Args[2:])
	case "status":
		err = status(ctx, os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "minicni-lab:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: minicni-lab up|status|down [flags]   (minicni-lab up -h for flags)")
	os.Exit(2)
}

// stateDir is where a kept lab records itself for status and down.
func stateDir(name string) string { return filepath.Join("/run/minicni-lab", name) }

// up brings the lab up, runs the matrix and prints each step as it goes.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func up(ctx context.Context, args []string) (retErr error) {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	name := fs.String("name", "lab", "prefix of every namespace the lab creates (1-8 bytes)")
	topology := fs.String("topology", lab.Flat, "flat (every node on one underlay segment) or routed (two segments joined by a router namespace, the first half of the nodes on the first)")
	nodes := fs.Int("nodes", 0, "simulated nodes (default 2 with --topology flat, 3 with routed)")
	pods := fs.Int("pods", 2, "pods per node")
	keep := fs.Bool("keep", false, "keep the lab up after the checks (then: minicni-lab status|down)")
	bin := fs.String("bin", "bin", "directory holding the plugin binaries (CNI_PATH)")
	conflist := fs.String("conflist", "conflist/10-minicni.conflist", "chain template")
	routes := fs.String("routes", "agent", "how nodes learn each other's pod subnets: agent (one minicni-installer agent per node, fed a nodes file) or static (miniroute's routes key)")
	overlay := fs.String("overlay", "", "the agents' --overlay: auto, vxlan or none (default: the agent's, auto)")
	dualStack := fs.Bool("dual-stack", false, "IPv6 too: every node an IPv6 pod subnet (fd18:0:0:<i>::/64) and underlay address (fd99::<11+i>), every pod an IPv6 address, the matrix in both families")
	_ = fs.Parse(args)

	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	tmpl, err := os.ReadFile(*conflist)
	if err != nil {
		return err
	}
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	dir := stateDir(*name)
	if _, err := os.Stat(filepath.Join(dir, "lab.json")); err == nil {
		return fmt.Errorf("a lab named %q is already up: minicni-lab down --name %s", *name, *name)
	}
	_ = lab.DownByName(*name) // debris of a crashed run
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if *nodes == 0 {
		*nodes = 2
		if *topology == lab.Routed {
			*nodes = 3
		}
	}
	opts := lab.Options{Name: *name, Nodes: *nodes, BinDir: binDir, Conflist: tmpl, StateDir: dir, Topology: *topology,
		Overlay: *overlay, DualStack: *dualStack, Logf: logf}
	how := *routes
	switch *routes {
	case "agent":
		opts.Agent = filepath.Join(binDir, "minicni-installer")
		if *overlay != "" {
			how += ", overlay " + *overlay
		}
	case "static":
		opts.StaticRoutes = true
		if *overlay != "" {
			return fmt.Errorf("--overlay is the agents': not with --routes static")
		}
	default:
		return fmt.Errorf("--routes must be agent or static, not %q", *routes)
	}
	family := ""
	if *dualStack {
		family = ", dual-stack"
	}
	logf("bringing up %d node(s), %s topology%s, with %s, routes between nodes: %s", *nodes, *topology, family, *conflist, how)
	l, err := lab.Up(ctx, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	defer func() {
		if retErr != nil || !*keep {
			logf("tearing down")
			retErr = errors.Join(retErr, l.Down(), os.RemoveAll(dir))
		}
	}()
	for _, n := range l.Nodes {
		for i := range *pods {
			if _, err := l.AddPod(ctx, n, fmt.Sprintf("p%d", i), nil); err != nil {
				return err
			}
		}
	}
	logf("checking connectivity")
	failed := printMatrix(os.Stdout, l.Matrix(ctx))
	if err := l.Save(); err != nil {
		return err
	}
	if *keep {
		fmt.Printf("\nThe lab stays up. Enter a pod:   ip netns exec %s sh\n", l.Nodes[0].Pods[0].Name)
		fmt.Printf("Enter a node:  ip netns exec %s sh\nThen:          minicni-lab status --name %s;  minicni-lab down --name %s\n", l.Nodes[0].Name, *name, *name)
	}
	if failed > 0 {
		return fmt.Errorf("%d connectivity check(s) failed", failed)
	}
	logf("all checks passed")
	return nil
}

func printMatrix(w io.Writer, checks []lab.Check) (failed int) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM POD\tADDRESS\tNODE\tCHECK\tTARGET\tPATH\tRESULT\tRTT")
	for _, c := range checks {
		res, rtt, path := "pass", fmt.Sprintf("%.3f ms", float64(c.RTT.Microseconds())/1000), c.PathLabel()
		if c.Err != nil {
			res, rtt, failed = "FAIL: "+c.Err.Error(), "-", failed+1
		}
		if path == "" {
			path = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\t%s\t%s\n", c.From.Name, c.Src, c.From.Node.Name, c.Label(),
			c.Target, c.To.Name, path, res, rtt)
	}
	tw.Flush()
	return failed
}

func status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	name := fs.String("name", "lab", "lab name")
	_ = fs.Parse(args)
	l, err := lab.Load(stateDir(*name))
	if err != nil {
		return fmt.Errorf("no lab %q is up: %w", *name, err)
	}
	if l.Router != nil {
		fmt.Printf("router %s  %s on the first segment  (ip netns exec %s sh)\n", l.Router.Name, l.Router.IP, l.Router.Name)
	}
	for _, n := range l.Nodes {
		ones, _ := n.Subnet.Mask.Size()
		if n.PodCIDR6 != nil {
			fmt.Printf("node %s  underlay %s/%d %s/64  pod subnets %s %s  (ip netns exec %s sh)\n", n.Name, n.IP, ones, n.IP6, n.PodCIDR, n.PodCIDR6, n.Name)
		} else {
			fmt.Printf("node %s  underlay %s/%d  pod subnet %s  (ip netns exec %s sh)\n", n.Name, n.IP, ones, n.PodCIDR, n.Name)
		}
		for _, p := range n.Pods {
			if p.IP6 != nil {
				fmt.Printf("  pod %s  %s %s  (ip netns exec %s sh)\n", p.Name, p.IP, p.IP6, p.Name)
			} else {
				fmt.Printf("  pod %s  %s  (ip netns exec %s sh)\n", p.Name, p.IP, p.Name)
			}
		}
	}
	if failed := printMatrix(os.Stdout, l.Matrix(ctx)); failed > 0 {
		return fmt.Errorf("%d connectivity check(s) failed", failed)
	}
	return nil
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	name := fs.String("name", "lab", "lab name")
	_ = fs.Parse(args)
	return errors.Join(lab.DownByName(*name), os.RemoveAll(stateDir(*name)))
}
