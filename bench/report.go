package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type goneRow struct {
	Variant string
	Res     goneResult
}

type report struct {
	Pods, Rounds      int
	Concs             []int
	Started, Finished time.Time
	Command           string
	OnlyData          bool // -only-dataplane: no control plane, DEL or exec sections
	Machine           []string
	cells             map[int]map[string][]result // concurrency -> variant -> per round
	Gone              []goneRow
	Exec              []execRow
	Data              []dataRow
	Floor             []floorResult // per round at C=1: the kernel's veth create and delete alone
}

func (r *report) add(c int, v string, res result) {
	if r.cells == nil {
		r.cells = map[int]map[string][]result{}
	}
	if r.cells[c] == nil {
		r.cells[c] = map[string][]result{}
	}
	r.cells[c][v] = append(r.cells[c][v], res)
}

// ratios returns, for each round, f(minicni)/f(other), and their median.
func (r *report) ratios(c int, other string, f func(result) float64) ([]float64, float64) {
	a, b := r.cells[c]["minicni"], r.cells[c][other]
	var rs []float64
	for i := range min(len(a), len(b)) {
		if f(b[i]) > 0 {
			rs = append(rs, f(a[i])/f(b[i]))
		}
	}
	return rs, median(rs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func addP50(r result) float64  { return ms(r.Add.P50) }
func delP50(r result) float64  { return ms(r.Del.P50) }
func podsSec(r result) float64 { return r.PodsPerSec }
func addCPU(r result) float64  { return ms(r.AddCPU) }

func machine() []string {
	lines := []string{fmt.Sprintf("Go %s, %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				lines = append(lines, "CPU: "+strings.TrimSpace(strings.SplitN(l, ":", 2)[1]))
				break
			}
		}
	}
	for _, c := range [][]string{{"uname", "-srm"}, {"iptables", "--version"}} {
		if out, err := exec.Command(c[0], c[1:]...).Output(); err == nil {
			lines = append(lines, strings.TrimSpace(string(out)))
		}
	}
	return lines
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// target is one line of the report's targets table.
type target struct {
	Name, Value string
	Met         bool
	// Measured is false when the run lacks the figures (a concurrency or a
	// section left out): the line says so instead of a verdict.
	Measured bool
}

func (t target) verdict() string {
	if !t.Measured {
		return "not measured in this run"
	}
	return verdict(t.Met)
}

// ratioTarget is a target on the median of the per-round ratios of f,
// minicni's over other's at concurrency c: at most limit, or with atLeast,
// at least limit.
func (r *report) ratioTarget(name string, c int, other string, f func(result) float64, limit float64, atLeast bool) target {
	if !slices.Contains(r.Concs, c) {
		return target{Name: name, Value: "-"}
	}
	_, m := r.ratios(c, other, f)
	met := m > 0 && m <= limit
	if atLeast {
		met = m >= limit
	}
	return target{Name: name, Value: fmt.Sprintf("%.2f", m), Met: met, Measured: m > 0}
}

// targets are every target of the report, each with the median of its
// per-round ratios in this run: issue 17's against ref-bridge and the
// no-op binary first, then the earlier ones against ref-equal, the
// cleanliness of DEL and the overlay's throughput.
func (r *report) targets() []target {
	var ts []target
	ts = append(ts,
		r.ratioTarget("ADD p50 ≤ 0.6× ref-bridge, C=1", 1, "ref-bridge", addP50, 0.6, false),
		r.ratioTarget("DEL p50 ≤ 0.85× ref-bridge, C=1 (else: the kernel's veth teardown"+r.floorNote()+")", 1, "ref-bridge", delP50, 0.85, false),
		r.ratioTarget("pods/s ≥ 1.6× ref-bridge, C=32", 32, "ref-bridge", podsSec, 1.6, true))
	for _, c := range r.Concs {
		ts = append(ts, r.ratioTarget(fmt.Sprintf("plugin CPU per pod (ADD) ≤ 0.6× ref-bridge, C=%d", c), c, "ref-bridge", addCPU, 0.6, false))
	}
	if len(r.Exec) > 0 {
		for _, b := range append(slices.Clone(chainBinaries), "portmap") {
			name := fmt.Sprintf("%s starts (VERSION, median) ≤ 1.3× the no-op Go binary", b)
			if b == "portmap" {
				name += " (the reference portmap, unchanged)"
			}
			x := startRatio(r.Exec, b)
			ts = append(ts, target{Name: name, Value: fmt.Sprintf("%.2f", x), Met: x > 0 && x <= 1.3, Measured: x > 0})
		}
	}
	for _, c := range r.Concs {
		ts = append(ts,
			r.ratioTarget(fmt.Sprintf("ADD p50 ≤ 0.35× ref-equal, C=%d", c), c, "ref-equal", addP50, 0.35, false),
			r.ratioTarget(fmt.Sprintf("DEL p50 ≤ 0.5× ref-equal, C=%d", c), c, "ref-equal", delP50, 0.5, false))
	}
	if len(r.Concs) > 0 {
		clean := true
		for _, c := range r.Concs {
			for _, res := range r.cells[c]["minicni"] {
				clean = clean && res.Left.zero() && res.Errors == 0 && res.Duplicates == 0
			}
		}
		for _, g := range r.Gone {
			if g.Variant == "minicni" {
				clean = clean && g.Res.Left.zero() && g.Res.OK == g.Res.Total
			}
		}
		ts = append(ts, target{Name: "minicni: no errors, no duplicate, nothing left after DEL (also with the netns gone)",
			Value: map[bool]string{true: "clean", false: "see below"}[clean], Met: clean, Measured: true})
	}
	if _, m := r.dataRatios(pathVXLAN, pathTwoNodes, gbps); m > 0 {
		ts = append(ts, target{Name: "TCP throughput pod to pod over VXLAN ≥ 0.7× the direct route (two nodes, minicni)",
			Value: fmt.Sprintf("%.2f", m), Met: m >= 0.7, Measured: true})
	}
	return ts
}

// floorNote is the DEL target's evidence from this run: the median over
// the rounds of the kernel's veth delete alone and of minicni's DEL, p50s.
func (r *report) floorNote() string {
	if len(r.Floor) == 0 || len(r.cells[1]["minicni"]) == 0 {
		return ", bench/README.md"
	}
	var del, kernel []float64
	for _, res := range r.cells[1]["minicni"] {
		del = append(del, delP50(res))
	}
	for _, f := range r.Floor {
		kernel = append(kernel, ms(f.Delete.P50))
	}
	return fmt.Sprintf(": the veth delete alone takes %.1f ms of minicni's %.1f, see \"The kernel's part\"", median(kernel), median(del))
}

// floorSection writes the kernel's part of an ADD and a DEL at C=1, round by
// round beside minicni's and ref-bridge's p50s, and what each chain adds to
// the kernel's delete.
func (r *report) floorSection(w func(string, ...any)) {
	if len(r.Floor) == 0 {
		return
	}
	w("\n## The kernel's part, C=1\n\n")
	w("The veth pair minibridge makes (host end a port of the bridge and up, the peer created in the pod's namespace, one\n")
	w("queue each way), made by the driver process itself in one netlink request per pod, one pod after the other, on a fresh\n")
	w("minicni node, then deleted by its host end: the kernel's work that an ADD and a DEL cannot do without, with no process\n")
	w("start, IPAM, addresses or routes. Once per round, after the round's variants. p50s in ms:\n\n")
	w("| round | veth create | veth delete | minicni ADD | minicni DEL | ref-bridge DEL | minicni DEL − veth delete | ref-bridge DEL − veth delete |\n")
	w("|---|---|---|---|---|---|---|---|\n")
	var mini, ref []float64
	for i, f := range r.Floor {
		var m, rb result
		if i < len(r.cells[1]["minicni"]) {
			m = r.cells[1]["minicni"][i]
		}
		if i < len(r.cells[1]["ref-bridge"]) {
			rb = r.cells[1]["ref-bridge"][i]
		}
		kd := ms(f.Delete.P50)
		w("| %d | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", i+1, ms(f.Create.P50), kd, addP50(m), delP50(m), delP50(rb), delP50(m)-kd, delP50(rb)-kd)
		mini, ref = append(mini, delP50(m)-kd), append(ref, delP50(rb)-kd)
	}
	w("\nWhat each chain's DEL adds to the kernel's delete (median of the rounds): minicni %.1f ms, ref-bridge %.1f ms.\n", median(mini), median(ref))
}

// chainProcs are the plugin processes of one ADD per variant whose CPU
// cpuSplit separates (ref-equal's firewall and ipMasq also run iptables).
var chainProcs = map[string][]string{"minicni": {"minibridge", "miniroute"}, "ref-bridge": {"bridge", "host-local"}}

// cpuSplit writes where an ADD's CPU goes at C=1 for minicni and
// ref-bridge: the median CPU per pod over the rounds, what the chain's
// processes cost to start (their VERSION calls' CPU, from the exec table),
// and the rest, the verbs' own work in a fresh process (the kernel's
// included); beside it the floor of the starts, as many no-op starts.
func (r *report) cpuSplit(w func(string, ...any)) {
	if len(r.Exec) == 0 || !slices.Contains(r.Concs, 1) || startCPU(r.Exec, noopBinary) == 0 {
		return
	}
	w("\n## Where an ADD's CPU goes, C=1\n\n")
	w("CPU per pod (ADD, median of the rounds above) split into the chain's process starts (the median CPU of each\n")
	w("binary's VERSION call, exec table) and the rest: the verbs' work in a fresh process, the kernel's included.\n\n")
	w("| variant | processes | CPU per ADD | their starts | as many no-op starts | the rest |\n|---|---|---|---|---|---|\n")
	noop := startCPU(r.Exec, noopBinary)
	for _, v := range []string{"minicni", "ref-bridge"} {
		var cpu []float64
		for _, res := range r.cells[1][v] {
			cpu = append(cpu, addCPU(res))
		}
		var starts time.Duration
		for _, b := range chainProcs[v] {
			starts += startCPU(r.Exec, b)
		}
		total := median(cpu)
		w("| %s | %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |\n", v, strings.Join(chainProcs[v], " + "), total, ms(starts),
			ms(noop)*float64(len(chainProcs[v])), total-ms(starts))
	}
}

// markdown renders the report, section after section in print order.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (`hack/bench.sh`, which builds every plugin into `bin/bench` and runs\n")
	flags := fmt.Sprintf("-pods %d -conc %s -rounds %d", r.Pods, joinInts(r.Concs), r.Rounds)
	if r.OnlyData {
		flags = fmt.Sprintf("-rounds %d -only-dataplane", r.Rounds)
	}
	w("`go run ./bench %s`) on %s, in %s.\n\n", flags,
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	w("Machine: %s.\n\n", strings.Join(r.Machine, "; "))
	w("Each run is a fresh simulated node (a network namespace, see integration/lab) driven through libcni\n")
	w("as a container runtime does: %d pod namespaces are made beforehand (not timed), then ADD for all with\n", r.Pods)
	w("concurrency C, then DEL for all. Variants run interleaved, round by round, after a discarded warm-up\n")
	w("round; a ratio is minicni's figure over the other variant's in the same round, and the report\n")
	w("gives each round's ratio and their median.\n\n")
	w("Variants:\n\n")
	for _, v := range variants {
		w("- `%s`: %s (bench/conflists/%s)\n", v.name, v.desc, v.conflist)
	}

	w("\n## Targets\n\n| target | median of per-round ratios | |\n|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s |\n", t.Name, t.Value, t.verdict())
	}

	for _, c := range r.Concs {
		w("\n## Control plane, C=%d\n\n", c)
		w("| round | variant | ADD p50 | p90 | p99 | max | DEL p50 | p90 | p99 | max | pods/s | CPU/pod ADD | CPU/pod DEL | errors | dup. addresses | left after DEL |\n")
		w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for i := range r.Rounds {
			for _, v := range variants {
				rs := r.cells[c][v.name]
				if i >= len(rs) {
					continue
				}
				x := rs[i]
				w("| %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %d | %d | %s |\n", i+1, v.name,
					ms(x.Add.P50), ms(x.Add.P90), ms(x.Add.P99), ms(x.Add.Max), ms(x.Del.P50), ms(x.Del.P90), ms(x.Del.P99), ms(x.Del.Max),
					x.PodsPerSec, ms(x.AddCPU), ms(x.DelCPU), x.Errors, x.Duplicates, x.Left)
			}
		}
		w("\nTimes in ms; CPU/pod is the user+system CPU time the plugin processes used per pod (RUSAGE_CHILDREN of the driver). Ratios (minicni ÷ other, per round → median):\n\n")
		for _, q := range []struct {
			name, other string
			f           func(result) float64
		}{
			{"ADD p50 vs ref-equal", "ref-equal", addP50}, {"ADD p50 vs ref-bridge", "ref-bridge", addP50},
			{"DEL p50 vs ref-equal", "ref-equal", delP50}, {"DEL p50 vs ref-bridge", "ref-bridge", delP50},
			{"pods/s vs ref-equal", "ref-equal", podsSec}, {"pods/s vs ref-bridge", "ref-bridge", podsSec},
			{"plugin CPU per pod (ADD) vs ref-equal", "ref-equal", addCPU}, {"plugin CPU per pod (ADD) vs ref-bridge", "ref-bridge", addCPU},
		} {
			rs, m := r.ratios(c, q.other, q.f)
			w("- %s: %s → **%.2f**\n", q.name, joinFloats(rs), m)
		}
	}

	r.floorSection(w)

	w("\n## DEL after the pod's netns is gone\n\nPods attached, their namespaces deleted, then DEL with an empty CNI_NETNS (as kubelet and containerd may do).\n\n")
	w("| variant | DEL succeeded | left after DEL |\n|---|---|---|\n")
	for _, g := range r.Gone {
		w("| %s | %d/%d | %s |\n", g.Variant, g.Res.OK, g.Res.Total, g.Res.Left)
	}

	w("\n## Exec cost\n\nBinary size and the wall time of `CNI_COMMAND=VERSION`, %d runs of each binary interleaved (one of each in turn);\n", execRuns)
	w("`noop` is a Go program whose main returns at once (bench/noop), built with the same flags: the floor of any Go plugin's start;\n")
	w("`nooplibs` is the same linking minibridge's libraries (bench/nooplibs): the floor of a plugin that uses them.\n\n")
	w("| binary | size | median exec | mean exec | median ÷ noop's | median CPU |\n|---|---|---|---|---|---|\n")
	for _, e := range r.Exec {
		if e.Err != "" {
			w("| %s | - | error: %s | | | |\n", e.Binary, e.Err)
			continue
		}
		w("| %s | %.1f MiB | %.2f ms | %.2f ms | %.2f | %.2f ms |\n", e.Binary, float64(e.Bytes)/(1<<20), ms(e.P50), ms(e.Mean),
			startRatio(r.Exec, e.Binary), ms(e.CPU))
	}
	r.cpuSplit(w)

	if len(r.Data) > 0 {
		w("\n## Data plane\n\niperf3 TCP for 3 s and the mean of 20 pings between two pods, once per round, paths and variants interleaved;\n")
		w("the baseline is two namespaces joined by a plain veth pair. Median over the rounds, then each round's figure.\n\n")
		w("| path | variant | TCP Gbit/s, median | per round | ping mean, median | per round |\n|---|---|---|---|---|---|\n")
		type key struct{ path, variant string }
		var order []key
		gbps, rtt := map[key][]float64{}, map[key][]float64{}
		for _, d := range r.Data {
			k := key{d.Path, d.Variant}
			if _, ok := gbps[k]; !ok {
				order = append(order, k)
			}
			gbps[k] = append(gbps[k], d.Gbps)
			rtt[k] = append(rtt[k], ms(d.RTT))
		}
		for _, k := range order {
			w("| %s | %s | %.2f | %s | %.3f ms | %s |\n", k.path, k.variant, median(gbps[k]), joinFloats(gbps[k]), median(rtt[k]), joinFloats3(rtt[k]))
		}
		r.overlayRatios(w)
	}
	return b.String()
}

// overlayRatios writes the VXLAN rows' ratios to the direct route and the
// veth pair, round by round.
func (r *report) overlayRatios(w func(string, ...any)) {
	if _, m := r.dataRatios(pathVXLAN, pathTwoNodes, gbps); m == 0 {
		return
	}
	w("\n### Across the overlay\n\n")
	w("minicni's chain with one `minicni-installer agent` per node (integration/lab). `%s`: two nodes on one\n", pathVXLAN)
	w("underlay segment, agents with `--overlay vxlan`, so the only difference from `%s` (the direct route) is the\n", pathTwoNodes)
	w("encapsulation and the smaller pod MTU it needs; `%s`: the lab's routed topology, the nodes on two\n", pathRouted)
	w("subnets joined by a router namespace, agents with their default overlay (auto). Before measuring, each checks that\n")
	w("the node routes the pod-to-pod traffic through the VXLAN device. Ratios (per round → median):\n\n")
	for _, q := range []struct {
		name, a, b string
		f          func(dataRow) float64
	}{
		{"TCP throughput, VXLAN ÷ direct route", pathVXLAN, pathTwoNodes, gbps},
		{"TCP throughput, VXLAN via a router ÷ direct route", pathRouted, pathTwoNodes, gbps},
		{"TCP throughput, VXLAN ÷ veth pair", pathVXLAN, pathVeth, gbps},
		{"TCP throughput, direct route ÷ veth pair", pathTwoNodes, pathVeth, gbps},
		{"ping round trip, VXLAN ÷ direct route", pathVXLAN, pathTwoNodes, rttMs},
		{"ping round trip, VXLAN via a router ÷ direct route", pathRouted, pathTwoNodes, rttMs},
		{"ping round trip, VXLAN ÷ veth pair", pathVXLAN, pathVeth, rttMs},
	} {
		rs, m := r.dataRatios(q.a, q.b, q.f)
		w("- %s: %s → **%.2f**\n", q.name, joinFloats(rs), m)
	}
}

func gbps(d dataRow) float64  { return d.Gbps }
func rttMs(d dataRow) float64 { return ms(d.RTT) }

// dataRatios returns, for each round, f of minicni's (or the baseline's)
// row on path a over f of the one on path b, and their median.
func (r *report) dataRatios(a, b string, f func(dataRow) float64) ([]float64, float64) {
	pick := func(path string, round int) (dataRow, bool) {
		for _, d := range r.Data {
			if d.Path == path && d.Round == round && (d.Variant == "minicni" || d.Variant == "baseline") {
				return d, true
			}
		}
		return dataRow{}, false
	}
	var rs []float64
	for round := 1; round <= r.Rounds; round++ {
		x, okA := pick(a, round)
		y, okB := pick(b, round)
		if okA && okB && f(y) > 0 {
			rs = append(rs, f(x)/f(y))
		}
	}
	return rs, median(rs)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func joinFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, ", ")
}

func joinFloats3(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(s, ", ")
}
