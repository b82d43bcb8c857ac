package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// execRow is the cost of starting one binary: its size and the mean wall time
// of a VERSION call, the cheapest thing a plugin does.
type execRow struct {
	Binary string
	Bytes  int64
	Mean   time.Duration
	Err    string
}

// binaries are every plugin the variants run, minicni's first.
var binaries = []string{"minibridge", "miniipam", "miniroute", "bridge", "host-local", "firewall"}

const execRuns = 100

func execCost(binDir string) []execRow {
	var rows []execRow
	for _, name := range binaries {
		path := filepath.Join(binDir, name)
		row := execRow{Binary: name}
		fi, err := os.Stat(path)
		if err != nil {
			row.Err = err.Error()
			rows = append(rows, row)
			continue
		}
		row.Bytes = fi.Size()
		start := time.Now()
		for range execRuns {
			cmd := exec.Command(path)
			cmd.Env = []string{"CNI_COMMAND=VERSION"}
			if out, err := cmd.CombinedOutput(); err != nil {
				row.Err = err.Error() + ": " + string(out)
				break
			}
		}
		row.Mean = time.Since(start) / execRuns
		rows = append(rows, row)
	}
	return rows
}
