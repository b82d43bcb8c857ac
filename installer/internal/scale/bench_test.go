package scale

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

var (
	sizes  = flag.String("sizes", "1000,5000", "cluster sizes (nodes) for BenchmarkAgentScale, comma-separated")
	report = flag.String("report", "", "BenchmarkAgentScale: write the figures into this markdown file, between the agent-scale markers")
)

// BenchmarkAgentScale measures the agent against each size of -sizes,
// direct and over VXLAN, once (use -benchtime=1x), and writes the figures
// to -report. The command, from the module root:
//
//	go test -run='^$' -bench=AgentScale -benchtime=1x -timeout=30m ./installer/internal/scale -args -report=$PWD/docs/benchmarks.md
func BenchmarkAgentScale(b *testing.B) {
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			b.Fatalf("-sizes: %q is not a cluster size", s)
		}
		ns = append(ns, n)
	}
	var results []Result
	for range b.N {
		results = results[:0]
		for _, vx := range []bool{false, true} {
			for _, n := range ns {
				r := Run(b, Config{Nodes: n, VXLAN: vx, Events: 50, Resyncs: 5})
				results = append(results, r)
				mode := "direct"
				if vx {
					mode = "vxlan"
				}
				b.Logf("%s %d nodes: converged in %v + %v; add %v (%d req), change %v (%d req), remove %v (%d req), full pass on add %v (%d req), resync %v (%d req, %d entries)",
					mode, n, r.Converge.Informer, r.Converge.Pass, r.Add.Pass, r.Add.Requests, r.Change.Pass, r.Change.Requests,
					r.Remove.Pass, r.Remove.Requests, r.FullAdd.Pass, r.FullAdd.Requests, r.Resync.Pass, r.Resync.Requests, r.Resync.Entries)
			}
		}
	}
	if *report == "" {
		return
	}
	cmd := "go test -run='^$' -bench=AgentScale -benchtime=1x -timeout=30m ./installer/internal/scale -args -report=$PWD/docs/benchmarks.md"
	if *sizes != "1000,5000" {
		cmd += " -sizes=" + *sizes
	}
	if err := WriteSection(*report, Markdown(results, cmd, machine())); err != nil {
		b.Fatal(err)
	}
}

func machine() string {
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) > 0 {
		return fmt.Sprintf("%s, %d CPUs, %s, load average %s when the report was written", host, runtime.NumCPU(), runtime.Version(), f[0])
	}
	return fmt.Sprintf("%s, %d CPUs, %s", host, runtime.NumCPU(), runtime.Version())
}
