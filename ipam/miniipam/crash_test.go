package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minicni/minicni/internal/crashpoint"
)

// TestCrashSafety kills (SIGKILL) a miniipam ADD between every pair of its
// steps, using a binary built with the crashpoints tag that pauses
// at the named point. After each kill the store must hold only whole
// reservations, the next command must clean up the debris, and GC must then
// leave exactly the valid reservations.
func TestCrashSafety(t *testing.T) {
	const ipam = `{"subnet":"10.60.0.0/24"}`
	for k, point := range crashpoint.All {
		t.Run(point, func(t *testing.T) {
			dataDir := t.TempDir()
			dir := filepath.Join(dataDir, "net")
			conf := netConf("1.1.0", "miniipam", dataDir, ipam)
			mustOK(t, call{cmd: "ADD", id: "keep1", stdin: conf})
			mustOK(t, call{cmd: "ADD", id: "keep2", stdin: conf})
			// A reservation from a previous boot, and no boot ID recorded
			// (as after a reboot, or after host-local's GC), so that the
			// reclaim steps run too.
			stale := filepath.Join(dir, "10.60.0.200")
			if err := os.WriteFile(stale, []byte("stale\r\neth0"), 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := os.Chtimes(stale, old, old); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, "last_reserved_ip.boot_id")); err != nil {
				t.Fatal(err)
			}

			killAt(t, call{bin: "miniipam-crash", cmd: "ADD", id: "victim", stdin: conf}, point)

			// What the store holds right after the kill.
			files := storeFiles(t, dir)
			whole := map[string]bool{"keep1\r\neth0": true, "keep2\r\neth0": true, "stale\r\neth0": true, "victim\r\neth0": true}
			var temps []string
			victim := ""
			for name, content := range files {
				switch {
				case strings.HasPrefix(name, ".tmp-"):
					temps = append(temps, name)
				case name == "lock" || strings.HasPrefix(name, "last_reserved_ip."):
				default:
					if !whole[content] {
						t.Errorf("after a kill at %s, %s holds %q: not a whole reservation", point, name, content)
					}
					if content == "victim\r\neth0" {
						victim = name
					}
				}
			}
			at := func(p string) int { return slices.Index(crashpoint.All, p) }
			wantTemp := slices.Contains([]string{crashpoint.BootTemp, crashpoint.TempCreated, crashpoint.TempWritten,
				crashpoint.TempClosed, crashpoint.Linked}, point)
			if (len(temps) > 0) != wantTemp {
				t.Errorf("after a kill at %s: temp files %v, want some: %v", point, temps, wantTemp)
			}
			if (victim != "") != (k >= at(crashpoint.Linked)) {
				t.Errorf("after a kill at %s: victim's reservation %q", point, victim)
			}
			if _, ok := files["10.60.0.200"]; ok != (k < at(crashpoint.BootReleased)) {
				t.Errorf("after a kill at %s: stale reservation present = %v", point, ok)
			}
			if _, ok := files["last_reserved_ip.boot_id"]; ok != (k >= at(crashpoint.BootRecorded)) {
				t.Errorf("after a kill at %s: boot ID recorded = %v", point, ok)
			}
			if k >= at(crashpoint.LastWritten) && files["last_reserved_ip.0"] != victim {
				t.Errorf("after a kill at %s: last_reserved_ip.0 = %q, want %q", point, files["last_reserved_ip.0"], victim)
			}

			// The lock died with the process; the next ADD clears the debris.
			after := addrOf(t, mustOK(t, call{cmd: "ADD", id: "after", stdin: conf}).stdout)
			if after == victim {
				t.Errorf("after a kill at %s: %s handed out again", point, victim)
			}
			for name := range storeFiles(t, dir) {
				if strings.HasPrefix(name, ".tmp-") {
					t.Errorf("after a kill at %s and a new ADD: stray %s", point, name)
				}
			}
			// GC with the live attachments leaves exactly theirs.
			gc := netConf("1.1.0", "miniipam", dataDir, ipam,
				`"cni.dev/valid-attachments":[{"containerID":"keep1","ifname":"eth0"},{"containerID":"keep2","ifname":"eth0"},{"containerID":"after","ifname":"eth0"}]`)
			mustOK(t, call{cmd: "GC", stdin: gc})
			var got []string
			for name, content := range storeFiles(t, dir) {
				if name != "lock" && !strings.HasPrefix(name, "last_reserved_ip.") {
					got = append(got, strings.Split(content, "\r\n")[0])
				}
			}
			slices.Sort(got)
			if want := []string{"after", "keep1", "keep2"}; !slices.Equal(got, want) {
				t.Errorf("after a kill at %s and GC: reservations of %v, want %v", point, got, want)
			}
		})
	}
}

// killAt runs c with its crash point set to point, waits until the process
// announces it has paused there, and kills it with SIGKILL.
func killAt(t *testing.T, c call, point string) {
	t.Helper()
	c.extraEV = append(c.extraEV, crashpoint.Env+"="+point)
	cmd := c.command()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := crashpoint.Await(cmd, stderr, point, 30*time.Second); err != nil {
		t.Fatalf("%s: %v (stdout %s)", c.bin, err, stdout.Bytes())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s at %s: %v, want killed", c.bin, point, err)
	}
}
