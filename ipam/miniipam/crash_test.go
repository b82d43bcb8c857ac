package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minicni/minicni/internal/crashpoint"
)

// TestCrashSafety kills (SIGKILL) a miniipam ADD between every pair of its
// steps, using a binary built with the crashpoints tag that pauses
// at the named point. After each kill the store must hold only whole
// reservations, the next command must clean up the debris, and GC must then
// leave exactly the valid reservations. It runs both ways of writing a
// reservation: through an unnamed O_TMPFILE file (the default; the test's
// temp dir must allow it, as ext4, xfs, btrfs and tmpfs do), where no kill
// may leave a temp file of the reservation, and through a named temp file
// (forced by crashpoint.NoTmpfileEnv, as where O_TMPFILE is refused).
func TestCrashSafety(t *testing.T) {
	for _, mode := range []struct {
		name   string
		points []string
		env    []string
		// temps are the points where a kill leaves a temp file.
		temps []string
	}{
		{name: "unnamed", points: crashpoint.Unnamed, temps: []string{crashpoint.BootTemp}},
		{name: "named", points: crashpoint.All, env: []string{crashpoint.NoTmpfileEnv + "=1"},
			temps: []string{crashpoint.BootTemp, crashpoint.TempCreated, crashpoint.TempWritten, crashpoint.TempClosed, crashpoint.Linked}},
	} {
		t.Run(mode.name, func(t *testing.T) { crashSafety(t, mode.points, mode.env, mode.temps) })
	}
}

func crashSafety(t *testing.T, points, env, tempPoints []string) {
	const ipam = `{"subnet":"10.60.0.0/24"}`
	for k, point := range points {
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

			var open []string // the victim's open files in the store when it paused
			killAt(t, call{bin: "miniipam-crash", cmd: "ADD", id: "victim", stdin: conf, extraEV: env}, point, func(pid int) {
				open = openFilesIn(t, pid, dir)
			})
			if env == nil && (point == crashpoint.TempCreated || point == crashpoint.TempWritten) {
				// The unnamed path really ran: an open file of the store
				// with no name ("/dir/#<inode> (deleted)").
				if !slices.ContainsFunc(open, func(f string) bool { return strings.HasSuffix(f, " (deleted)") }) {
					t.Errorf("paused at %s: open files in the store %q, want an unnamed O_TMPFILE one", point, open)
				}
			}

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
			at := func(p string) int { return slices.Index(points, p) }
			wantTemp := slices.Contains(tempPoints, point)
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

// openFilesIn returns the targets of pid's descriptors that lie in dir.
func openFilesIn(t *testing.T, pid int, dir string) []string {
	t.Helper()
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out
}

// killAt runs c with its crash point set to point, waits until the process
// announces it has paused there, calls paused with its pid, and kills it
// with SIGKILL.
func killAt(t *testing.T, c call, point string, paused func(pid int)) {
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
	if paused != nil {
		paused(cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s at %s: %v, want killed", c.bin, point, err)
	}
}
