package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// execRow is the cost of starting one binary: its size, the wall time of a
// VERSION call, the cheapest thing a plugin does, and the CPU time (user and
// system) the process used for it.
type execRow struct {
	Binary string
	Bytes  int64
	P50    time.Duration
	Mean   time.Duration
	CPU    time.Duration // median
	Err    string
}

// noopBinary is the floor every start is compared with (bench/noop).
const noopBinary = "noop"

// chainBinaries are the binaries of minicni's default chain
// (conflist/10-minicni.conflist) that minicni builds, with miniipam, which
// minibridge runs in-process there but which ships for other chains.
var chainBinaries = []string{"minibridge", "miniipam", "miniroute"}

// binaries are every binary timed: the floor, minicni's, then the
// reference plugins of the variants and the default chain's portmap.
// nooplibs (bench/nooplibs) is the second floor: noop linking minibridge's
// libraries.
var binaries = append(append([]string{noopBinary, "nooplibs"}, chainBinaries...), "bridge", "host-local", "firewall", "portmap")

const execRuns = 200

// execCost times execRuns VERSION calls of every binary of binDir
// (timeStarts).
func execCost(binDir string) []execRow {
	paths := make([]string, len(binaries))
	for i, name := range binaries {
		paths[i] = filepath.Join(binDir, name)
	}
	rows := timeStarts(paths, execRuns)
	for i := range rows {
		rows[i].Binary = binaries[i]
	}
	return rows
}

// timeStarts times runs VERSION calls of each binary at paths, interleaved
// (one call of each in turn), so that a change of the machine's load weighs
// on all of them alike; each row has the binary's size, the median and mean
// wall time and the median CPU time.
func timeStarts(paths []string, runs int) []execRow {
	rows := make([]execRow, len(paths))
	times := make([][]time.Duration, len(paths))
	cpus := make([][]time.Duration, len(paths))
	for i, path := range paths {
		rows[i].Binary = path
		fi, err := os.Stat(path)
		if err != nil {
			rows[i].Err = err.Error()
			continue
		}
		rows[i].Bytes = fi.Size()
	}
	for range runs {
		for i, path := range paths {
			if rows[i].Err != "" {
				continue
			}
			cmd := exec.Command(path)
			cmd.Env = []string{"CNI_COMMAND=VERSION"}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				rows[i].Err = err.Error() + ": " + string(out)
				continue
			}
			times[i] = append(times[i], time.Since(start))
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				cpus[i] = append(cpus[i], time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
			}
		}
	}
	for i := range rows {
		if rows[i].Err != "" {
			continue
		}
		var sum time.Duration
		for _, d := range times[i] {
			sum += d
		}
		rows[i].Mean = sum / time.Duration(len(times[i]))
		rows[i].P50 = percentiles(times[i]).P50
		if len(cpus[i]) > 0 {
			rows[i].CPU = percentiles(cpus[i]).P50
		}
	}
	return rows
}

// printStarts is -starts: the given binaries timed as the exec table times
// them, each median over the first binary's (give the no-op binary first,
// then two builds of a plugin to compare them).
func printStarts(paths []string, runs int) error {
	rows := timeStarts(paths, runs)
	for _, r := range rows {
		if r.Err != "" {
			return fmt.Errorf("%s: %s", r.Binary, r.Err)
		}
	}
	for _, r := range rows {
		fmt.Printf("%-40s median %5.2f ms  CPU %5.2f ms  %.2f× the first\n", r.Binary, ms(r.P50), ms(r.CPU), float64(r.P50)/float64(rows[0].P50))
	}
	return nil
}

// startCPU is a binary's median CPU time for a VERSION call (0 when
// missing).
func startCPU(rows []execRow, name string) time.Duration {
	for _, r := range rows {
		if r.Binary == name && r.Err == "" {
			return r.CPU
		}
	}
	return 0
}

// startRatio is a binary's median start over the no-op binary's (0 when
// either is missing).
func startRatio(rows []execRow, name string) float64 {
	var floor, x time.Duration
	for _, r := range rows {
		if r.Err != "" {
			continue
		}
		if r.Binary == noopBinary {
			floor = r.P50
		}
		if r.Binary == name {
			x = r.P50
		}
	}
	if floor == 0 || x == 0 {
		return 0
	}
	return float64(x) / float64(floor)
}
