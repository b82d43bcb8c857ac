package main

import (
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

// execCost times execRuns VERSION calls of every binary, interleaved
// (one call of each in turn), so that a change of the machine's load
// weighs on all of them alike; each row has the median and the mean.
func execCost(binDir string) []execRow {
	rows := make([]execRow, len(binaries))
	times := make([][]time.Duration, len(binaries))
	cpus := make([][]time.Duration, len(binaries))
	for i, name := range binaries {
		rows[i].Binary = name
		fi, err := os.Stat(filepath.Join(binDir, name))
		if err != nil {
			rows[i].Err = err.Error()
			continue
		}
		rows[i].Bytes = fi.Size()
	}
	for range execRuns {
		for i, name := range binaries {
			if rows[i].Err != "" {
				continue
			}
			cmd := exec.Command(filepath.Join(binDir, name))
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
