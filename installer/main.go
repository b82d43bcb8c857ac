// Command minicni-installer puts minicni on a Kubernetes node and keeps it
// there: `install` copies the plugin binaries and writes the conflist for the
// node's podCIDRs (the DaemonSet's init container), `agent` keeps those files
// current and programs the routes to the other nodes' pod subnets, and
// `uninstall` removes what minicni created. The logic lives in the packages
// below this directory; this file only parses flags and wires them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/minicni/minicni/installer/agent"
	"github.com/minicni/minicni/installer/conflist"
	"github.com/minicni/minicni/installer/install"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/nodestatus"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/installer/routes"
	"github.com/minicni/minicni/installer/uninstall"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
)

const usage = `minicni-installer %s: installs minicni on a node and keeps its routes.

Usage:
  minicni-installer install   [flags]   copy binaries, write the conflist, exit
  minicni-installer agent     [flags]   keep files and routes to other nodes current
  minicni-installer uninstall [flags]   remove the conflist, routes, chains (binaries with --remove-binaries)
  minicni-installer version

Run "minicni-installer COMMAND -h" for a command's flags.
`

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, usage, libmini.Version)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "install":
		err = cmdInstall(ctx, log.With("cmd", cmd), args)
	case "agent":
		err = cmdAgent(ctx, log.With("cmd", cmd), args)
	case "uninstall":
		err = cmdUninstall(ctx, log.With("cmd", cmd), args)
	case "version", "--version", "-version":
		fmt.Println("minicni-installer", libmini.Version)
	case "help", "-h", "--help":
		fmt.Fprintf(os.Stdout, usage, libmini.Version)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n"+usage, cmd, libmini.Version)
		os.Exit(2)
	}
	if err != nil {
		log.Error("failed", "cmd", os.Args[1], "err", err)
		os.Exit(1)
	}
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// fileFlags are the install locations shared by every command.
type fileFlags struct {
	binDir, confDir, conflistName, from string
	binaries                            listFlag
}

func (f *fileFlags) register(fs *flag.FlagSet) {
	from := "."
	if exe, err := os.Executable(); err == nil {
		from = filepath.Dir(exe)
	}
	f.binaries = listFlag{"minibridge", "miniipam", "miniroute", "portmap", "loopback", "minicni"}
	fs.StringVar(&f.binDir, "bin-dir", "/opt/cni/bin", "the host's CNI bin dir")
	fs.StringVar(&f.confDir, "conf-dir", "/etc/cni/net.d", "the host's CNI conf dir")
	fs.StringVar(&f.conflistName, "conflist-name", "10-minicni.conflist", "file name of the conflist in --conf-dir")
	fs.StringVar(&f.from, "from", from, "directory holding the binaries to install; by default this binary's own directory")
	fs.Var(&f.binaries, "binaries", "comma-separated binaries to copy from --from; the others than minibridge, miniipam, miniroute (the reference ones, minicni) are skipped when absent")
}

func (f *fileFlags) confPath() string { return filepath.Join(f.confDir, f.conflistName) }

// renderFlags select the node and the conflist's settings.
type renderFlags struct {
	fileFlags
	nodeName, kubeconfig, nodesFile, template, bridge string
	clusterCIDR                                       listFlag
	mtu                                               int
	overlay                                           string
}

func (r *renderFlags) register(fs *flag.FlagSet) {
	r.fileFlags.register(fs)
	fs.StringVar(&r.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (defaults to $NODE_NAME)")
	fs.StringVar(&r.kubeconfig, "kubeconfig", "", "kubeconfig file; empty: the in-cluster config")
	fs.StringVar(&r.nodesFile, "nodes-file", "", `static node list instead of the apiserver: JSON [{"name","internalIPs","podCIDRs"}]`)
	fs.StringVar(&r.template, "template", "", "conflist template file; empty: the built-in copy of conflist/10-minicni.conflist")
	fs.StringVar(&r.bridge, "bridge", "", "bridge name; empty: the template's")
	fs.Var(&r.clusterCIDR, "cluster-cidr", "comma-separated cluster pod CIDRs for miniroute; empty: the template's")
	fs.IntVar(&r.mtu, "mtu", -1, "MTU of the bridge and veths, 0 = automatic, -1 = the template's")
	fs.StringVar(&r.overlay, "overlay", string(overlay.Auto), "VXLAN overlay: auto (direct routes where possible, VXLAN otherwise), vxlan (always), none (direct routes only); auto and vxlan make an automatic MTU leave room for the encapsulation")
}

// mode parses --overlay.
func (r *renderFlags) mode() (overlay.Mode, error) { return overlay.ParseMode(r.overlay) }

// files returns the file installer the flags describe; h is the namespace
// whose links give the overlay's MTU.
func (r *renderFlags) files(h netlinksafe.Handle) (*agent.Files, error) {
	tmpl := conflist.DefaultTemplate
	if r.template != "" {
		var err error
		if tmpl, err = os.ReadFile(r.template); err != nil {
			return nil, err
		}
	}
	s := conflist.Settings{ClusterCIDRs: r.clusterCIDR, Bridge: r.bridge}
	if r.mtu >= 0 {
		s.MTU = &r.mtu
	}
	var optional []string
	for _, b := range r.binaries {
		if !slices.Contains(uninstall.Own, b) {
			optional = append(optional, b)
		}
	}
	f := &agent.Files{Template: tmpl, Settings: s, Plan: install.Plan{
		From: r.from, Binaries: r.binaries, Optional: optional, BinDir: r.binDir, ConfPath: r.confPath(),
	}}
	mode, err := r.mode()
	if err != nil {
		return nil, err
	}
	if mode != overlay.None {
		f.OverlayMTU = func(internalIPs []string) (int, error) {
			var ips []netip.Addr
			for _, s := range internalIPs {
				if ip, err := nodes.ParseIP(s); err == nil {
					ips = append(ips, ip)
				}
			}
			return overlay.PodMTU(h, ips)
		}
	}
	return f, nil
}

// source returns the node source the flags name, not started.
func (r *renderFlags) source() (nodes.Source, error) {
	if r.nodesFile != "" {
		return nodes.NewFile(r.nodesFile), nil
	}
	return nodes.NewKubernetes(r.kubeconfig)
}

func cmdInstall(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("install", flag.ExitOnError)
	var r renderFlags
	r.register(fs)
	var podCIDR listFlag
	fs.Var(&podCIDR, "pod-cidr", "this node's pod CIDRs, comma-separated (one per family), instead of reading its Node")
	wait := fs.Duration("wait", 0, "give up when the node has no podCIDR after this long (0: wait forever)")
	_ = fs.Parse(args)

	h, err := netlinksafe.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	files, err := r.files(h)
	if err != nil {
		return err
	}
	cidrs := []string(podCIDR)
	var internalIPs []string
	if len(cidrs) == 0 {
		if r.nodeName == "" {
			return errors.New("--node-name (or $NODE_NAME) is required without --pod-cidr")
		}
		src, err := r.source()
		if err != nil {
			return err
		}
		wctx := ctx
		if *wait > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, *wait)
			defer cancel()
		}
		if err := src.Start(wctx); err != nil {
			return err
		}
		n, err := agent.WaitForPodCIDRs(wctx, src, r.nodeName, log, 5*time.Second)
		if err != nil {
			return err
		}
		cidrs, internalIPs = n.PodCIDRs, n.InternalIPs
	}
	res, err := files.Apply(cidrs, internalIPs)
	for _, p := range res.Written {
		log.Info("installed file", "path", p)
	}
	if err != nil {
		return fmt.Errorf("nothing more written: %w", err)
	}
	log.Info("install done", "podCIDRs", strings.Join(cidrs, ","), "written", len(res.Written), "unchanged", len(res.Unchanged))
	return nil
}

// cmdAgent runs `minicni-installer agent`: flags, their checks, then the
// route loop and the HTTP server.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func cmdAgent(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	var r renderFlags
	r.register(fs)
	resync := fs.Duration("resync", 30*time.Second, "full reconcile period without events")
	listen := fs.String("listen", "127.0.0.1:9655", "address of /healthz, /readyz and /metrics (empty: none)")
	staleAfter := fs.Duration("stale-after", agent.DefaultStaleAfter, "age past which the view of the nodes is stale: /readyz fails, /healthz says so (must exceed --resync)")
	probeTimeout := fs.Duration("apiserver-probe-timeout", nodes.DefaultProbeTimeout, "bound of each pass's check that the apiserver answers (GET /version); must be shorter than --resync")
	manageFiles := fs.Bool("manage-files", true, "keep the binaries and the conflist current (false: routes only)")
	cacheDir := fs.String("cni-cache-dir", "/var/lib/cni", "libcni's cache dir, for the orphan counts on /metrics (as minicni status --cache-dir)")
	ov := overlay.DefaultConfig()
	fs.StringVar(&ov.Device, "vxlan-device", ov.Device, "name of the VXLAN device (at most 15 bytes)")
	fs.IntVar(&ov.VNI, "vxlan-vni", ov.VNI, "VXLAN network identifier, 1-16777215, the same on every node")
	fs.IntVar(&ov.Port, "vxlan-port", ov.Port, "VXLAN UDP port, 1-65535, the same on every node")
	_ = fs.Parse(args)
	if r.nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}
	if *resync <= 0 {
		return fmt.Errorf("invalid --resync %s: must be more than 0", *resync)
	}
	if *staleAfter <= *resync {
		return fmt.Errorf("invalid --stale-after %s: must be longer than --resync %s (a view is confirmed once per pass)", *staleAfter, *resync)
	}
	if *probeTimeout <= 0 || *probeTimeout >= *resync {
		return fmt.Errorf("invalid --apiserver-probe-timeout %s: must be more than 0 and shorter than --resync %s", *probeTimeout, *resync)
	}
	var err error
	if ov.Mode, err = r.mode(); err != nil {
		return err
	}
	if err := ov.Validate(); err != nil {
		return err
	}

	h, err := netlinksafe.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	metrics := agent.NewMetrics()
	metrics.StaleAfter = *staleAfter
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: agent.Handler(metrics, 3**resync+30*time.Second), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	}

	src, err := r.source()
	if err != nil {
		return err
	}
	if k, ok := src.(*nodes.Kubernetes); ok {
		k.ProbeTimeout = *probeTimeout
	}
	if err := src.Start(ctx); err != nil {
		return err
	}
	a := &agent.Agent{
		Self:    r.nodeName,
		Source:  src,
		Routes:  routes.New(h, log),
		Resync:  *resync,
		Log:     log,
		Metrics: metrics,
	}
	a.Routes.Overlay = ov
	a.Orphans = func() (map[string]int, error) {
		return nodestatus.Orphans(nodestatus.Options{ConfDir: r.confDir, BinDir: r.binDir, CacheDir: *cacheDir})
	}
	if *manageFiles {
		if a.Files, err = r.files(h); err != nil {
			return err
		}
	}
	log.Info("agent started", "node", r.nodeName, "resync", resync.String(), "routeProtocol", int(routes.Protocol),
		"overlay", string(ov.Mode), "vxlanDevice", ov.Device, "vni", ov.VNI, "port", ov.Port)
	return a.Run(ctx)
}

func cmdUninstall(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("uninstall", flag.ExitOnError)
	var f fileFlags
	f.register(fs)
	removeBinaries := fs.Bool("remove-binaries", false, "also remove the binaries (reference plugins only when identical to the ones in --from)")
	_ = fs.Parse(args)
	h, err := netlinksafe.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	return uninstall.Run(ctx, uninstall.Options{
		ConfPath:       f.confPath(),
		RemoveBinaries: *removeBinaries,
		Binaries:       f.binaries,
		BinDir:         f.binDir,
		From:           f.from,
		Routes:         h,
		Stamps:         stamps.Default(),
		Log:            log,
	})
}
