// Package nodestatus is `minicni status`: a read-only look at one node's CNI
// state, section by section (the conflist and the binaries, the bridge, the
// addresses with their veths and libcni cache entries, miniroute's iptables
// rules and mode, the agent's routes and the peers it cannot route), each
// problem with one line saying what to do, and Fix, which removes only what
// is provably orphaned through the code minibridge's and miniipam's GC run.
// The agent exports the same orphan counts on /metrics (Orphans).
//
// Collect runs in the calling thread's network namespace (the node's); it
// takes no lock an ADD waits for: the IPAM store is read without its lock.
package nodestatus

import (
	"context"
	"time"

	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
)

// Options say where to look. The zero value of a path means the node's
// default.
type Options struct {
	ConfDir  string // the runtime's CNI conf dir; default /etc/cni/net.d
	BinDir   string // the CNI bin dir; default /opt/cni/bin
	CacheDir string // libcni's cache dir (entries under results/); default /var/lib/cni
	// BootIDPath and StatPath replace /proc/sys/kernel/random/boot_id and
	// /proc/stat for the IPAM store's "earlier boot" test.
	BootIDPath, StatPath string
	// Grace is how old a reservation with neither veth nor cache entry must
	// be to count as orphaned (a younger one may be an ADD under way);
	// default DefaultGrace.
	Grace time.Duration
	// IPTablesDirs, when set, are the only directories searched for the
	// iptables tools (backend.Exec.Dirs).
	IPTablesDirs []string
	// Nodes, when set and started, lists the cluster's nodes: the peers
	// section then says which cannot be routed and which routes are
	// missing. Self is this node's name, Overlay the agent's --overlay.
	Nodes   nodes.Source
	Self    string
	Overlay overlay.Mode
	// ExecTimeout bounds each binary and iptables run; default 5 s.
	ExecTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultGrace is Options.Grace's default: far longer than any ADD.
const DefaultGrace = 10 * time.Minute

func (o Options) withDefaults() Options {
	if o.ConfDir == "" {
		o.ConfDir = "/etc/cni/net.d"
	}
	if o.BinDir == "" {
		o.BinDir = "/opt/cni/bin"
	}
	if o.CacheDir == "" {
		o.CacheDir = "/var/lib/cni"
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.ExecTimeout <= 0 {
		o.ExecTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Report is everything Collect found. Sections it could not reach are nil.
type Report struct {
	Conflist  Conflist   `json:"conflist"`
	Binaries  []Binary   `json:"binaries"`
	Bridge    *Bridge    `json:"bridge,omitempty"`
	Addresses *Addresses `json:"addresses,omitempty"`
	Miniroute *Miniroute `json:"miniroute,omitempty"`
	Routes    *Routes    `json:"routes,omitempty"`
	// Orphans are the leftovers of every kind (Kind* constants).
	Orphans []Orphan `json:"orphans"`
	// Problems are what is wrong, each with what to do about it.
	Problems []Problem `json:"problems"`
	// Fixed is what `--fix` removed before this report was taken.
	Fixed []string `json:"fixed,omitempty"`
}

// Problem is one thing wrong and what to do about it. CouldNotLook marks a
// part of the node status could not read: the report is incomplete.
type Problem struct {
	Section      string `json:"section"`
	What         string `json:"what"`
	Do           string `json:"do"`
	CouldNotLook bool   `json:"couldNotLook,omitempty"`
}

// Exit statuses of `minicni status`.
const (
	ExitOK      = 0 // all is well
	ExitProblem = 1 // found a problem
	ExitBlind   = 2 // could not look at some part
)

// ExitCode is ExitBlind when some part could not be read, else ExitProblem
// when there is a problem, else ExitOK.
func (r *Report) ExitCode() int {
	code := ExitOK
	for _, p := range r.Problems {
		if p.CouldNotLook {
			return ExitBlind
		}
		code = ExitProblem
	}
	return code
}

func (r *Report) problem(section, what, do string) {
	r.Problems = append(r.Problems, Problem{Section: section, What: what, Do: do})
}

func (r *Report) blind(section, what, do string) {
	r.Problems = append(r.Problems, Problem{Section: section, What: what, Do: do, CouldNotLook: true})
}

// Collect looks at the node, in the calling thread's network namespace,
// and changes nothing.
func Collect(ctx context.Context, opt Options) *Report {
	opt = opt.withDefaults()
	r := &Report{Orphans: []Orphan{}, Problems: []Problem{}}
	net := r.conflist(opt)
	r.binaries(ctx, opt, net)
	if net != nil {
		r.bridge(net)
		r.addresses(opt, net)
		r.miniroute(ctx, opt, net)
	}
	r.routes(ctx, opt)
	return r
}

// Orphans counts the orphans of each kind (every Kind* constant, zero
// included) of the node's minicni network, as Collect would report them,
// looking only at the conflist, the IPAM store, the veths and libcni's
// cache. The agent serves them on /metrics.
func Orphans(opt Options) (map[string]int, error) {
	opt = opt.withDefaults()
	r := &Report{}
	net := r.conflist(opt)
	if net != nil {
		r.addresses(opt, net)
	}
	for _, p := range r.Problems {
		if p.CouldNotLook {
			return nil, &blindError{p}
		}
	}
	counts := map[string]int{}
	for _, k := range Kinds {
		counts[k] = 0
	}
	for _, o := range r.Orphans {
		counts[o.Kind]++
	}
	return counts, nil
}

type blindError struct{ p Problem }

func (e *blindError) Error() string { return e.p.Section + ": " + e.p.What }
