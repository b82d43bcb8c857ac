// Command minicni is the operator's command on a node. `minicni status`
// reports the node's CNI state (package installer/nodestatus) as a table or
// as JSON, exits 0 when all is well, 1 when it found a problem, 2 when it
// could not look, and with --fix removes what is provably orphaned. See
// README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/nodestatus"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/libmini"
)

// usage starts like a plugin's about line (libmini.About), so that status,
// finding this binary in the CNI bin dir, knows its version.
const usage = `minicni %s (minicni): the node's CNI state

  minicni status [flags]   what minicni looks like on this node, and what to do about it
  minicni version          this binary's version

Run 'minicni status -h' for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, libmini.Version)
		return nodestatus.ExitBlind
	}
	switch args[0] {
	case "status":
		return status(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "minicni %s\n", libmini.Version)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n"+usage, args[0], libmini.Version)
	return nodestatus.ExitBlind
}

func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt nodestatus.Options
	output := fs.String("o", "table", "output: table or json")
	fix := fs.Bool("fix", false, "remove what is provably orphaned (a host veth whose pod namespace is gone, a reservation with neither veth nor cache entry older than --grace, reservations of an earlier boot), print it, then report")
	fs.StringVar(&opt.ConfDir, "conf-dir", "/etc/cni/net.d", "the CNI conf dir the runtime reads")
	fs.StringVar(&opt.BinDir, "bin-dir", "/opt/cni/bin", "the CNI bin dir")
	fs.StringVar(&opt.CacheDir, "cache-dir", "/var/lib/cni", "libcni's cache dir (entries in results/)")
	fs.StringVar(&opt.BootIDPath, "boot-id-file", "", "file holding this boot's id (default /proc/sys/kernel/random/boot_id)")
	fs.StringVar(&opt.StatPath, "proc-stat", "", "file with the boot time's btime line (default /proc/stat)")
	fs.DurationVar(&opt.Grace, "grace", nodestatus.DefaultGrace, "age from which a reservation with neither veth nor cache entry is orphaned")
	iptDirs := fs.String("iptables-dirs", "", "comma-separated directories holding the iptables tools (default: PATH, then the sbin directories)")
	nodesFile := fs.String("nodes-file", "", `node list as the agent's --nodes-file (JSON [{"name","internalIPs","podCIDRs"}]): check the peers`)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to list the nodes with (e.g. /etc/kubernetes/kubelet.conf): check the peers")
	fs.StringVar(&opt.Self, "node-name", defaultNodeName(), "this node's name (default $NODE_NAME, else the host name)")
	ov := fs.String("overlay", string(overlay.Auto), "the agent's --overlay: auto, vxlan or none")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return nodestatus.ExitBlind
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "-o %q: want table or json\n", *output)
		return nodestatus.ExitBlind
	}
	if *iptDirs != "" {
		opt.IPTablesDirs = strings.Split(*iptDirs, ",")
	}
	mode, err := overlay.ParseMode(*ov)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nodestatus.ExitBlind
	}
	opt.Overlay = mode
	if *nodesFile != "" || *kubeconfig != "" {
		src, err := nodeSource(ctx, *nodesFile, *kubeconfig)
		if err != nil {
			fmt.Fprintln(stderr, "nodes:", err)
			return nodestatus.ExitBlind
		}
		opt.Nodes = src
	}

	var fixed []string
	if *fix {
		var err error
		fixed, err = nodestatus.Fix(ctx, opt, nodestatus.Collect(ctx, opt))
		if *output == "table" {
			for _, line := range fixed {
				fmt.Fprintln(stdout, "fixed:", line)
			}
			if len(fixed) == 0 {
				fmt.Fprintln(stdout, "fixed: nothing was provably orphaned")
			}
			fmt.Fprintln(stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "fix:", err)
		}
	}
	rep := nodestatus.Collect(ctx, opt)
	rep.Fixed = fixed
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, err)
			return nodestatus.ExitBlind
		}
	} else if err := nodestatus.WriteTable(stdout, rep, time.Now()); err != nil {
		fmt.Fprintln(stderr, err)
		return nodestatus.ExitBlind
	}
	return rep.ExitCode()
}

func defaultNodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// nodeSource is the nodes file, else the apiserver, listed once.
func nodeSource(ctx context.Context, file, kubeconfig string) (nodes.Source, error) {
	var src nodes.Source = nodes.NewFile(file)
	if file == "" {
		k, err := nodes.NewKubernetes(kubeconfig)
		if err != nil {
			return nil, err
		}
		src = k
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := src.Start(ctx); err != nil {
		return nil, err
	}
	return src, nil
}
