// Command minicni-bench measures minicni's chain against the reference
// plugins' chains, as a container runtime drives them (libcni, in a fresh
// simulated node per run), and writes docs/benchmarks.md. Variants run
// interleaved in rounds after a discarded warm-up round, because absolute
// times drift on a shared machine; the report gives per-round ratios and their
// median. Run it through `make bench`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type variant struct {
	name, conflist, desc string
}

var variants = []variant{
	{"minicni", "minicni.conflist", "minibridge + miniipam + miniroute (FORWARD accept + masquerade)"},
	{"ref-equal", "ref-equal.conflist", "reference bridge (isGateway, ipMasq) + host-local + firewall: equal function"},
	{"ref-bridge", "ref-bridge.conflist", "reference bridge (isGateway) + host-local: does less (no FORWARD, no masquerade)"},
}

// main parses and checks the flags, runs the rounds and writes the report.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func main() {
	pods := flag.Int("pods", 100, "pods per run")
	concs := flag.String("conc", "1,8,32", "concurrency levels")
	rounds := flag.Int("rounds", 3, "measured rounds (after one warm-up round)")
	bin := flag.String("bin", "bin/bench", "CNI_PATH holding every plugin of every variant")
	confDir := flag.String("conflists", "bench/conflists", "directory of the variants' conflists")
	out := flag.String("out", "docs/benchmarks.md", "report file")
	skipData := flag.Bool("skip-dataplane", false, "skip the iperf3/ping data-plane runs")
	onlyData := flag.Bool("only-dataplane", false, "run only the data plane (a partial report, e.g. with -out elsewhere)")
	starts := flag.Bool("starts", false, "only time VERSION calls of the binaries given as arguments, as the exec table does, and print them")
	startRuns := flag.Int("start-runs", execRuns, "with -starts: calls of each binary")
	flag.Parse()
	if *starts {
		if flag.NArg() == 0 || *startRuns < 1 {
			fail(errors.New("usage: go run ./bench -starts [-start-runs N] BINARY (one or more)"))
		}
		if err := printStarts(flag.Args(), *startRuns); err != nil {
			fail(err)
		}
		return
	}

	ctx := context.Background()
	var cs []int
	for _, s := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fail(fmt.Errorf("bad -conc %q", *concs))
		}
		cs = append(cs, c)
	}
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	tmpl := map[string][]byte{}
	for _, v := range variants {
		b, err := os.ReadFile(filepath.Join(*confDir, v.conflist))
		if err != nil {
			fail(err)
		}
		tmpl[v.name] = b
	}
	r := &report{Pods: *pods, Rounds: *rounds, Concs: cs, Started: time.Now(), Command: "make bench"}
	r.Machine = machine()
	b := &bencher{bin: binDir, tmpl: tmpl, pods: *pods}

	if *onlyData {
		cs, r.Concs, r.OnlyData = nil, nil, true
	}
	for _, c := range cs {
		for round := 0; round <= *rounds; round++ {
			for _, v := range variants {
				res, err := b.lifecycle(ctx, v.name, c)
				if err != nil {
					fail(fmt.Errorf("%s C=%d round %d: %w", v.name, c, round, err))
				}
				tag := "warm-up, discarded"
				if round > 0 {
					tag = fmt.Sprintf("round %d", round)
					r.add(c, v.name, res)
				}
				progress("C=%-2d %-10s %-18s ADD p50 %6.1f ms  DEL p50 %6.1f ms  %6.1f pods/s  CPU/pod %5.2f ms  errors %d  dups %d  left %s",
					c, v.name, tag, ms(res.Add.P50), ms(res.Del.P50), res.PodsPerSec, ms(res.AddCPU), res.Errors, res.Duplicates, res.Left)
			}
			if c == 1 && round > 0 {
				// The kernel's part of the same ADD and DEL, in the same round.
				fr, err := b.kernelFloor(ctx)
				if err != nil {
					fail(fmt.Errorf("kernel floor, round %d: %w", round, err))
				}
				r.Floor = append(r.Floor, fr)
				progress("C=1  kernel     round %-12d veth create p50 %5.2f ms  veth delete p50 %5.2f ms", round, ms(fr.Create.P50), ms(fr.Delete.P50))
			}
		}
	}
	for _, v := range variants {
		if *onlyData {
			break
		}
		res, err := b.delAfterNetnsGone(ctx, v.name, 20)
		if err != nil {
			fail(err)
		}
		r.Gone = append(r.Gone, goneRow{v.name, res})
		progress("DEL with netns gone %-10s ok %d/%d  left %s", v.name, res.OK, res.Total, res.Left)
	}
	if !*onlyData {
		r.Exec = execCost(binDir)
	}
	if !*skipData {
		if r.Data, err = b.dataplane(ctx, *rounds); err != nil {
			fail(err)
		}
	}
	r.Finished = time.Now()
	// The report is a document of the repository: readable by all.
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil { //nolint:gosec // see above
		fail(err)
	}
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil { //nolint:gosec // a document, as above
		fail(err)
	}
	progress("wrote %s", *out)
}

func progress(format string, args ...any) {
	fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "minicni-bench:", err)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// teardown runs down and reports its failure: what a failed teardown leaves
// (namespaces, links, rules) would skew the rounds that follow.
func teardown(what string, down func() error) {
	if err := down(); err != nil {
		fmt.Fprintf(os.Stderr, "minicni-bench: tearing down the %s: %v\n", what, err)
	}
}
