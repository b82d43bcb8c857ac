package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/minicni/minicni/integration/lab"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/stamps"
	"golang.org/x/sys/unix"
)

// The knobs, read from the environment (hack/chaos.sh sets them).
const (
	seedEnv   = "MINICNI_CHAOS_SEED"   // default defaultSeed
	cyclesEnv = "MINICNI_CHAOS_CYCLES" // default defaultCycles
	reportEnv = "MINICNI_CHAOS_REPORT" // when set, the counts table is written there (markdown)

	defaultSeed   = 20261130
	defaultCycles = 200
	concurrency   = 16
	// epoch is how many cycles run between two quiescent points, where the
	// runtime's GC runs (as CRI-O's at a restart) and the node is audited.
	epoch = 100
)

// The runtime's choices, per cycle.
const (
	pKill        = 0.12                  // per plugin process, in ADD and in DEL
	maxKillDelay = 40 * time.Millisecond // a kill lands uniformly in [0, maxKillDelay)
	pNoDelAfter  = 0.20                  // a failed ADD gets no DEL (the runtime died before sending it)
	pRepeat      = 0.08                  // a pod's ADD is sent again, same container ID, no DEL between
	pResident    = 0.06                  // the pod stays up across cycles (and epochs)
	pSkipDel     = 0.06                  // the pod's namespace goes, no DEL ever comes: only the GC cleans up
	pNetnsGone   = 0.20                  // the namespace goes first, then DEL (its old path or CNI_NETNS="")
	pSecondDel   = 0.50                  // after a normal DEL, containerd's second DEL with CNI_NETNS=""
	pHostPort    = 0.15                  // the pod has a hostPort: portmap adds rules for it
	hostPortBase = 20000                 // pod i's hostPort is hostPortBase+i
	maxResidents = 16
	maxDelTries  = 30
)

var binDir string

func TestMain(m *testing.M) {
	minitest.MainWithPlugins(m, &binDir, "minibridge", "miniipam", "miniroute", "portmap")
}

func envInt(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// pod is one sandbox as the runtime sees it.
type pod struct {
	idx      int
	ns       *lab.Pod // its namespace (the lab's Host of the pod)
	rt       *libcni.RuntimeConf
	ip       netip.Addr // from the successful ADD
	hostVeth string     // the host end, from the result
	hostPort int        // 0: none
}

// Counts are what a run did; String is its one-line summary.
type Counts struct {
	Seed                                     uint64
	Cycles, Adds, FailedAdds                 int64
	KillsPlanned, Kills                      int64
	NetnsGoneDels, RepeatedAdds, SkippedDels int64
	NoDelAfterFailedAdd, SecondDels          int64
	DelRetries, GCs, PortmapErrors           int64
	Duplicates, Leaks                        int64
	Live                                     int64
	KillsBy                                  map[string]int // hits by plugin
}

func (c *Counts) String() string {
	return fmt.Sprintf("cycles %d, kills %d (of %d drawn), netns-gone DELs %d, repeated ADDs %d, skipped DELs %d (%d after a failed ADD), "+
		"failed ADDs %d (%d portmap's own), DEL retries %d, second DELs %d, GCs %d, live at the end %d, duplicates %d, leaks %d, seed %d",
		c.Cycles, c.Kills, c.KillsPlanned, c.NetnsGoneDels, c.RepeatedAdds, c.SkippedDels+c.NoDelAfterFailedAdd, c.NoDelAfterFailedAdd,
		c.FailedAdds, c.PortmapErrors, c.DelRetries, c.SecondDels, c.GCs, c.Live, c.Duplicates, c.Leaks, c.Seed)
}

// churn is the runtime: it owns the node, the executor and the bookkeeping.
type churn struct {
	t      *testing.T
	l      *lab.Lab
	n      *lab.Node
	kexec  *KillExec
	cni    *libcni.CNIConfig
	seed   uint64
	counts struct {
		cycles, adds, failedAdds, netnsGone, repeated, skipped, noDelAfter, secondDels, delRetries, portmapErrs atomic.Int64
	}

	mu        sync.Mutex
	held      map[netip.Addr]*pod // address -> the pod whose ADD got it and whose DEL has not started
	residents []*pod              // pods that stay up
	handed    map[netip.Addr]bool // every address an ADD ever returned
	dups      []string
	leaks     int64
	gcs       int64
}

// TestChurnWithFaults: pods are added and deleted through libcni at
// concurrency 16 on one simulated node with the default chain, while plugin
// processes are SIGKILLed at random points of ADD and DEL; some DELs come
// after the namespace is gone, some ADDs are repeated, some pods never get a
// DEL. Every epoch ends with the runtime's GC and an audit: no address was
// handed to two pods at once, every live pod passes CHECK and pings its
// gateway and another live pod, and the node holds nothing (reservation,
// veth, libcni cache entry, iptables rule) beyond the live pods.
func TestChurnWithFaults(t *testing.T) {
	minitest.RequireRoot(t)
	seed := envInt(t, seedEnv, defaultSeed)
	cycles := int(envInt(t, cyclesEnv, defaultCycles))
	t.Logf("seed %d (set %s to pick another), %d cycles (%s)", seed, seedEnv, cycles, cyclesEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(cancel)

	_, file, _, _ := runtime.Caller(0)
	tmpl, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "conflist", "10-minicni.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(minitest.Name("x"))
	if len(name) > 8 {
		name = name[len(name)-8:]
	}
	state := t.TempDir()
	l, err := lab.Up(ctx, lab.Options{Name: name, Nodes: 1, BinDir: binDir, Conflist: tmpl, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	c := &churn{t: t, l: l, n: l.Nodes[0], kexec: &KillExec{}, seed: seed,
		held: map[netip.Addr]*pod{}, handed: map[netip.Addr]bool{}}
	// The runtime's own libcni: the plugins run through KillExec, the cache
	// is this test's.
	c.cni = libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(state, "cache"), c.kexec)
	if v := c.n.Conflist.CNIVersion; v != "1.1.0" {
		t.Fatalf("libcni picked cniVersion %s from the default conflist: GC needs 1.1.0", v)
	}

	start := time.Now()
	for first := 0; first < cycles; first += epoch {
		last := min(first+epoch, cycles)
		c.run(ctx, first, last)
		c.gcAndAudit(ctx)
		if t.Failed() {
			break
		}
	}
	c.forgetNode()
	counts := c.summary()
	t.Logf("%d cycles in %s", counts.Cycles, time.Since(start).Round(time.Millisecond))
	t.Logf("kills by plugin: %v", counts.KillsBy)
	t.Logf("chaos: %s", counts)
	if counts.Cycles != int64(cycles) {
		t.Errorf("%d cycles ran, want %d", counts.Cycles, cycles)
	}
	if counts.Kills == 0 || counts.NetnsGoneDels == 0 || counts.RepeatedAdds == 0 || counts.SkippedDels == 0 {
		t.Errorf("a fault never happened: %s", counts)
	}
	if p := os.Getenv(reportEnv); p != "" {
		if err := os.WriteFile(p, []byte(counts.table()), 0o600); err != nil {
			t.Error(err)
		}
	}
}

func (c *churn) summary() *Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Counts{Seed: c.seed, Cycles: c.counts.cycles.Load(), Adds: c.counts.adds.Load(), FailedAdds: c.counts.failedAdds.Load(),
		KillsPlanned: c.kexec.Planned.Load(), Kills: c.kexec.Hit.Load(), NetnsGoneDels: c.counts.netnsGone.Load(),
		RepeatedAdds: c.counts.repeated.Load(), SkippedDels: c.counts.skipped.Load(), NoDelAfterFailedAdd: c.counts.noDelAfter.Load(),
		SecondDels: c.counts.secondDels.Load(), DelRetries: c.counts.delRetries.Load(), GCs: c.gcs,
		PortmapErrors: c.counts.portmapErrs.Load(),
		Duplicates:    int64(len(c.dups)), Leaks: c.leaks, Live: int64(len(c.residents)), KillsBy: c.kexec.Killed()}
}

func (c *Counts) table() string {
	var b strings.Builder
	rows := [][2]any{
		{"cycles (pod sandboxes)", c.Cycles}, {"successful ADDs", c.Adds}, {"failed ADDs", c.FailedAdds},
		{"… of them portmap's own error, not a kill (its race creating its shared chains)", c.PortmapErrors},
		{"SIGKILLs that hit a running plugin", c.Kills}, {"… of minibridge (miniipam runs in it)", c.KillsBy["minibridge"]},
		{"… of miniroute", c.KillsBy["miniroute"]}, {"… of portmap", c.KillsBy["portmap"]}, {"SIGKILLs drawn", c.KillsPlanned},
		{"DELs after the namespace was gone", c.NetnsGoneDels}, {"repeated ADDs", c.RepeatedAdds},
		{"pods that never got a DEL (namespace gone)", c.SkippedDels}, {"failed ADDs that never got a DEL", c.NoDelAfterFailedAdd},
		{"second DELs (CNI_NETNS=\"\")", c.SecondDels}, {"DELs retried after a kill", c.DelRetries},
		{"GCs", c.GCs}, {"pods live at the end", c.Live},
		{"duplicate addresses", c.Duplicates}, {"leaks", c.Leaks}, {"seed", c.Seed},
	}
	b.WriteString("| what | count |\n|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %v | %v |\n", r[0], r[1])
	}
	return b.String()
}

// run runs cycles [first, last) on concurrency workers.
func (c *churn) run(ctx context.Context, first, last int) {
	var next atomic.Int64
	next.Store(int64(first))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= last || ctx.Err() != nil {
					return
				}
				if err := c.cycle(ctx, i); err != nil {
					c.t.Errorf("cycle %d: %v", i, err)
				}
				c.counts.cycles.Add(1)
			}
		})
	}
	wg.Wait()
}

// faults returns ctx with a kill plan drawn from r.
func faults(ctx context.Context, r *rand.Rand) context.Context {
	return WithFaults(ctx, &Faults{Rand: rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), P: pKill, MaxDelay: maxKillDelay}) //nolint:gosec // a test's seeded RNG
}

// cycle is one pod sandbox's life as the runtime drives it; r, seeded by
// the run's seed and the cycle's index, makes every choice.
func (c *churn) cycle(ctx context.Context, i int) error {
	r := rand.New(rand.NewPCG(c.seed, uint64(i))) //nolint:gosec // a test's seeded RNG
	ns, err := c.l.NewPod(c.n, fmt.Sprintf("c%d", i), nil)
	if err != nil {
		return err
	}
	p := &pod{idx: i, ns: ns, rt: &libcni.RuntimeConf{ContainerID: ns.ContainerID, NetNS: ns.Path(), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "chaos"}, {"K8S_POD_NAME", fmt.Sprintf("c%d", i)}}}}
	if r.Float64() < pHostPort {
		p.hostPort = hostPortBase + i
		p.rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{
			{"hostPort": p.hostPort, "containerPort": 80, "protocol": "tcp"}}}
	}
	res, err := c.add(faults(ctx, r), p)
	if err != nil {
		c.counts.failedAdds.Add(1)
		if !errors.Is(err, ErrKilled) {
			// The reference portmap races itself creating its shared
			// chains on a node where they do not exist yet (`iptables -N`
			// exits 4 in one of two concurrent ADDs): the runtime DELs and
			// moves on. Any other failure is a bug.
			if !strings.Contains(err.Error(), `plugin type="portmap" failed (add)`) {
				return fmt.Errorf("ADD failed without a kill: %w", err)
			}
			if c.counts.portmapErrs.Add(1) <= 3 {
				c.t.Logf("cycle %d: portmap's ADD failed (not killed): %v", i, err)
			}
		}
		// The runtime sends DEL for a failed ADD (containerd tears the
		// sandbox's network down before it gives up on it), unless it died
		// first: then only the GC can find what the ADD left. Not for a
		// pod with a hostPort: portmap has no GC ("FIXME GC" in its
		// main.go), so nothing could ever remove the rules of its ADD.
		if r.Float64() < pNoDelAfter && p.hostPort == 0 {
			c.counts.noDelAfter.Add(1)
			return netnsDel(ns.Name)
		}
		if err := c.delUntilOK(ctx, r, p, p.rt.NetNS); err != nil {
			return err
		}
		return netnsDel(ns.Name)
	}
	c.counts.adds.Add(1)
	if err := c.attached(p, res); err != nil {
		return err
	}
	if r.Float64() < pRepeat {
		if err := c.repeat(ctx, r, p); err != nil {
			return err
		}
	}
	time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond) // the pod lives a little
	switch x := r.Float64(); {
	case x < pResident:
		if out := c.reside(p, r); out != nil {
			return c.del(ctx, r, out)
		}
		return nil
	case x < pResident+pSkipDel:
		// The namespace goes (a reboot, a crashed runtime) and no DEL ever
		// comes; the address stays held until the GC releases it.
		c.counts.skipped.Add(1)
		return netnsDel(ns.Name)
	case x < pResident+pSkipDel+pNetnsGone:
		c.release(p)
		if err := netnsDel(ns.Name); err != nil {
			return err
		}
		c.counts.netnsGone.Add(1)
		path := p.rt.NetNS
		if r.IntN(2) == 0 {
			path = "" // containerd's DEL at sandbox removal
		}
		return c.delUntilOK(ctx, r, p, path)
	default:
		return c.del(ctx, r, p)
	}
}

// add runs the chain's ADD from the node's namespace.
func (c *churn) add(ctx context.Context, p *pod) (*current.Result, error) {
	var res types.Result
	err := c.n.Do(func() error {
		var err error
		res, err = c.cni.AddNetworkList(ctx, c.n.Conflist, p.rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// attached records a successful ADD: its address must not be held by any
// other pod whose DEL has not started.
func (c *churn) attached(p *pod, res *current.Result) error {
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP.To4()); ok && ipc.Address.IP.To4() != nil {
			p.ip = a
		}
	}
	for _, ifc := range res.Interfaces {
		if ifc.Sandbox == "" && strings.HasPrefix(ifc.Name, "mbr") {
			p.hostVeth = ifc.Name
		}
	}
	if !p.ip.IsValid() || p.hostVeth == "" {
		return fmt.Errorf("ADD result without an IPv4 address or a host end: %v", res)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handed[p.ip] = true
	if q, ok := c.held[p.ip]; ok && q != p {
		c.dups = append(c.dups, fmt.Sprintf("%s handed to pod c%d while pod c%d held it", p.ip, p.idx, q.idx))
		c.t.Errorf("duplicate: %s handed to pod c%d while pod c%d held it", p.ip, p.idx, q.idx)
	}
	c.held[p.ip] = p
	return nil
}

// release marks p's address free from the moment its DEL starts (the host
// end goes before the reservation, so the address may be handed out again
// while the DEL still runs).
func (c *churn) release(p *pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[p.ip] == p {
		delete(c.held, p.ip)
	}
}

// repeat sends ADD again for a pod that is up (a runtime retrying an ADD
// whose answer it lost; the spec forbids it, runtimes do it). Whether it
// fails (minibridge refuses: the host end exists) or is killed, the pod
// must keep its attachment; if it succeeds it must give the same address.
func (c *churn) repeat(ctx context.Context, r *rand.Rand, p *pod) error {
	c.counts.repeated.Add(1)
	res, err := c.add(faults(ctx, r), p)
	var cniErr *types.Error
	switch {
	case errors.Is(err, ErrKilled):
		return nil // the audit checks the pod kept everything
	case errors.As(err, &cniErr) && cniErr.Code == 104:
		return nil // minibridge: the host end exists; the audit checks the pod kept everything
	case err != nil:
		return fmt.Errorf("repeated ADD: %w, want minibridge's refusal (104) or a kill", err)
	}
	again := &pod{idx: p.idx}
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP.To4()); ok && ipc.Address.IP.To4() != nil {
			again.ip = a
		}
	}
	if again.ip != p.ip {
		return fmt.Errorf("repeated ADD gave %s, the pod has %s", again.ip, p.ip)
	}
	return nil
}

// reside keeps p up; when there are already enough residents, a random one
// leaves and is returned, for the caller to DEL.
func (c *churn) reside(p *pod, r *rand.Rand) *pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.residents) < maxResidents {
		c.residents = append(c.residents, p)
		return nil
	}
	k := r.IntN(len(c.residents))
	out := c.residents[k]
	c.residents[k] = p
	return out
}

// del is a normal teardown: DEL with the namespace, sometimes containerd's
// second DEL with CNI_NETNS="", then the namespace goes.
func (c *churn) del(ctx context.Context, r *rand.Rand, p *pod) error {
	c.release(p)
	if err := c.delUntilOK(ctx, r, p, p.rt.NetNS); err != nil {
		return err
	}
	if r.Float64() < pSecondDel {
		c.counts.secondDels.Add(1)
		if err := c.delUntilOK(ctx, r, p, ""); err != nil {
			return err
		}
	}
	return netnsDel(p.ns.Name)
}

// delUntilOK sends DEL, with kills, until it succeeds, as a runtime retries
// a sandbox's teardown. A DEL that fails without being killed is a bug: DEL
// is best effort.
func (c *churn) delUntilOK(ctx context.Context, r *rand.Rand, p *pod, netns string) error {
	rt := *p.rt
	rt.NetNS = netns
	for try := range maxDelTries {
		err := c.n.Do(func() error { return c.cni.DelNetworkList(faults(ctx, r), c.n.Conflist, &rt) })
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrKilled) {
			return fmt.Errorf("DEL (try %d, CNI_NETNS=%q) failed without a kill: %w", try+1, netns, err)
		}
		c.counts.delRetries.Add(1)
	}
	return fmt.Errorf("DEL still killed after %d tries", maxDelTries)
}

func netnsDel(name string) error {
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, out)
	}
	return nil
}

// gcAndAudit runs at a quiescent point: the runtime's GC with the live
// attachments (no kills), then the audit.
func (c *churn) gcAndAudit(ctx context.Context) {
	t := c.t
	c.mu.Lock()
	live := slices.Clone(c.residents)
	c.mu.Unlock()
	var valid []types.GCAttachment
	for _, p := range live {
		valid = append(valid, types.GCAttachment{ContainerID: p.rt.ContainerID, IfName: p.rt.IfName})
	}
	if err := c.n.Do(func() error {
		return c.cni.GCNetworkList(ctx, c.n.Conflist, &libcni.GCArgs{ValidAttachments: valid})
	}); err != nil {
		t.Errorf("GC: %v", err)
	}
	c.mu.Lock()
	c.gcs++
	// What the GC collected is free again.
	c.held = map[netip.Addr]*pod{}
	for _, p := range live {
		c.held[p.ip] = p
	}
	c.mu.Unlock()
	leaks := c.audit(live)
	for _, l := range leaks {
		t.Errorf("leak: %s", l)
	}
	c.mu.Lock()
	c.leaks += int64(len(leaks))
	c.mu.Unlock()
	c.connectivity(ctx, live)
}

// audit lists what the node holds beyond the live pods.
func (c *churn) audit(live []*pod) []string {
	t := c.t
	var leaks []string
	want := map[string]*pod{} // address -> pod
	veths := map[string]bool{}
	cids := map[string]bool{}
	for _, p := range live {
		want[p.ip.String()] = p
		veths[p.hostVeth] = true
		cids[p.rt.ContainerID] = true
	}
	// The IPAM store: one file per live pod's address, naming that pod;
	// besides them only the lock and the cursors.
	dir := filepath.Join(c.l.Opts.StateDir, c.n.Name, "ipam", c.n.Conflist.Name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	reserved := map[string]bool{}
	for _, e := range entries {
		switch name := e.Name(); {
		case name == "lock" || strings.HasPrefix(name, "last_reserved_ip."):
		case net.ParseIP(name) != nil:
			reserved[name] = true
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := want[name]
			if !ok {
				leaks = append(leaks, fmt.Sprintf("reservation %s (%q) of no live pod", name, b))
			} else if string(b) != p.rt.ContainerID+"\r\n"+p.rt.IfName {
				leaks = append(leaks, fmt.Sprintf("reservation %s holds %q, live pod c%d has it", name, b, p.idx))
			}
		default:
			leaks = append(leaks, "file "+name+" in the IPAM store")
		}
	}
	for ip, p := range want {
		if !reserved[ip] {
			t.Errorf("live pod c%d's address %s is not reserved", p.idx, ip)
		}
	}
	st, err := c.l.State(c.n)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.Veths {
		if !veths[v] {
			leaks = append(leaks, "host veth "+v+" of no live pod")
		}
	}
	if len(st.Veths) != len(live) {
		t.Errorf("%d host veths for %d live pods", len(st.Veths), len(live))
	}
	cached, err := c.cni.GetCachedAttachments("")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cached {
		if !cids[a.ContainerID] {
			leaks = append(leaks, "libcni cache entry of "+a.ContainerID)
		}
	}
	if len(cached) != len(live) {
		t.Errorf("%d libcni cache entries for %d live pods", len(cached), len(live))
	}
	leaks = append(leaks, c.auditRules(st.Rules, live)...)
	return leaks
}

// auditRules: miniroute's rules are per node, and portmap's per pod are
// those of the live pods with a hostPort. A rule belongs to a pod when it
// names the pod's container ID (portmap's jump to the pod's DNAT chain) or
// is in that chain; every other rule is the node's, and names no container
// and no pod address.
func (c *churn) auditRules(rules []string, live []*pod) []string {
	var leaks []string
	chainOf := map[string]string{} // CNI-DN-… chain -> container ID
	for _, r := range rules {
		if cid := quotedID(r); cid != "" {
			if i := strings.Index(r, "-j CNI-DN-"); i >= 0 {
				chainOf[strings.Fields(r[i+3:])[0]] = cid
			}
		}
	}
	liveCID := map[string]*pod{}
	for _, p := range live {
		liveCID[p.rt.ContainerID] = p
	}
	jumps := map[string]bool{} // live container IDs with a DNAT jump
	prefix := "lab-" + c.l.Opts.Name + "-"
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rules {
		owner := quotedID(r)
		if f := strings.Fields(r); owner == "" && len(f) > 2 && strings.HasPrefix(f[2], "CNI-DN-") {
			owner = chainOf[f[2]]
			if owner == "" {
				leaks = append(leaks, "iptables rule in a DNAT chain no jump leads to: "+r)
				continue
			}
		}
		switch {
		case owner != "" && liveCID[owner] != nil:
			if strings.Contains(r, "-j CNI-DN-") {
				jumps[owner] = true
			}
		case owner != "":
			leaks = append(leaks, "iptables rule of a pod that is gone: "+r)
		case strings.Contains(r, prefix) || strings.Contains(r, "CNI-DN-"):
			leaks = append(leaks, "iptables rule naming a pod: "+r)
		default:
			for a := range c.handed {
				if strings.Contains(r, a.String()+"/32") || strings.Contains(r, a.String()+" ") || strings.Contains(r, a.String()+":") {
					leaks = append(leaks, "node iptables rule naming pod address "+a.String()+": "+r)
				}
			}
		}
	}
	for _, p := range live {
		if p.hostPort != 0 && !jumps[p.rt.ContainerID] {
			c.t.Errorf("live pod c%d has hostPort %d but no DNAT rule", p.idx, p.hostPort)
		}
	}
	if !slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, "MINICNI-") }) {
		c.t.Error("no minicni iptables rule on the node: miniroute did nothing")
	}
	return leaks
}

// quotedID returns the container ID portmap writes in a rule's comment
// (id: "…"), or "".
func quotedID(rule string) string {
	const key = `id: \"`
	i := strings.Index(rule, key)
	if i < 0 {
		return ""
	}
	rest := rule[i+len(key):]
	j := strings.Index(rest, `\"`)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// forgetNode does what whoever deletes a node's namespace must (the lab
// does it again in Down): forget miniroute's stamps and cached iptables
// mode of the namespace; then nothing in their directory, a killed
// writer's temporary file included, may name the namespace.
func (c *churn) forgetNode() {
	var cookie uint64
	err := c.n.Do(func() error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err != nil {
			return err
		}
		return errors.Join(stamps.Default().Forget(), backend.ModeCache{Dir: stamps.DefaultDir}.Forget())
	})
	if err != nil {
		c.t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(stamps.DefaultDir, fmt.Sprintf("*%016x*", cookie)))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, f := range left {
		c.t.Errorf("leak: %s, of the node's namespace, after Forget", f)
	}
	c.mu.Lock()
	c.leaks += int64(len(left))
	c.mu.Unlock()
}

// connectivity: every live pod passes the chain's CHECK and pings its
// gateway and the next live pod, from inside its namespace.
func (c *churn) connectivity(ctx context.Context, live []*pod) {
	t := c.t
	for k, p := range live {
		if err := c.n.Do(func() error { return c.cni.CheckNetworkList(ctx, c.n.Conflist, p.rt) }); err != nil {
			t.Errorf("CHECK of live pod c%d: %v", p.idx, err)
		}
		if _, err := lab.Ping(ctx, &p.ns.Host, c.n.Gateway); err != nil {
			t.Errorf("live pod c%d to its gateway: %v", p.idx, err)
		}
		if len(live) > 1 {
			q := live[(k+1)%len(live)]
			if _, err := lab.Ping(ctx, &p.ns.Host, q.ip.AsSlice()); err != nil {
				t.Errorf("live pod c%d to live pod c%d: %v", p.idx, q.idx, err)
			}
		}
	}
}
