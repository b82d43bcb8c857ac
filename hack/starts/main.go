// Command starts times CNI_COMMAND=VERSION calls of the binaries it is
// given, interleaved (one call of each in turn, -n rounds), as the bench's
// exec table does, and prints each binary's median wall and CPU time and
// its median wall over the first binary's. Give it the no-op binary first
// and two builds of a plugin to compare them:
//
//	go run ./hack/starts -n 400 bin/bench/noop /tmp/before/minibridge /tmp/after/minibridge
//
// Every figure of bench/README.md about a change to a plugin's start was
// taken this way.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

func main() {
	rounds := flag.Int("n", 400, "calls of each binary")
	flag.Parse()
	bins := flag.Args()
	if len(bins) == 0 {
		fmt.Fprintln(os.Stderr, "usage: starts [-n N] BINARY...")
		os.Exit(2)
	}
	wall := make([][]time.Duration, len(bins))
	cpu := make([][]time.Duration, len(bins))
	for range *rounds {
		for i, b := range bins {
			cmd := exec.Command(b)
			cmd.Env = []string{"CNI_COMMAND=VERSION"}
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v: %s\n", b, err, out)
				os.Exit(1)
			}
			wall[i] = append(wall[i], time.Since(start))
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu[i] = append(cpu[i], time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
		}
	}
	floor := median(wall[0])
	for i, b := range bins {
		w := median(wall[i])
		fmt.Printf("%-40s wall %5.2f ms  cpu %5.2f ms  %.2f× the first\n", b, ms(w), ms(median(cpu[i])), float64(w)/float64(floor))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
