package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minicni/minicni/libmini"
)

// TestConcurrentProcesses starts n miniipam ADDs at once against one /24
// (254 addresses, the gateway .1 excluded: 253 assignable). They are all
// started while the test holds the network's lock, then released together.
func TestConcurrentProcesses(t *testing.T) {
	for _, tt := range []struct{ n, wantOK int }{{100, 100}, {300, 253}} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			dataDir := t.TempDir()
			dir := filepath.Join(dataDir, "net")
			conf := netConf("1.0.0", "miniipam", dataDir, `{"subnet":"10.50.0.0/24"}`)

			// Hold the lock so that every process is running and waiting on
			// it before the first one allocates.
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			cmds := make([]*exec.Cmd, tt.n)
			outs := make([]*bytes.Buffer, tt.n)
			for i := range tt.n {
				c := call{cmd: "ADD", id: fmt.Sprintf("ctr%03d", i), stdin: conf}.command()
				outs[i] = &bytes.Buffer{}
				c.Stdout, c.Stderr = outs[i], &bytes.Buffer{}
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				cmds[i] = c
			}
			if err := lock.Close(); err != nil { // release them all
				t.Fatal(err)
			}
			owner := map[string]string{}
			var exhausted int
			for i, c := range cmds {
				err := c.Wait()
				o := outcome{stdout: outs[i].Bytes(), stderr: c.Stderr.(*bytes.Buffer).Bytes()}
				if ee, ok := err.(*exec.ExitError); ok {
					o.exit = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("ctr%03d", i)
				if o.exit != 0 {
					e := o.cniError()
					if o.exit != 1 || e == nil || e.Code != libmini.CodePoolExhausted || !strings.Contains(e.Msg, "10.50.0.0/24") {
						t.Errorf("%s: %s; want success or a clean exhaustion error", id, o)
					}
					exhausted++
					continue
				}
				a := addrOf(t, o.stdout)
				if prev, dup := owner[a]; dup {
					t.Errorf("%s handed out to %s and %s", a, prev, id)
				}
				owner[a] = id
			}
			t.Logf("%d processes in %s", tt.n, time.Since(start))
			if len(owner) != tt.wantOK || exhausted != tt.n-tt.wantOK {
				t.Errorf("%d successes and %d exhaustion errors, want %d and %d", len(owner), exhausted, tt.wantOK, tt.n-tt.wantOK)
			}
			files := storeFiles(t, dir)
			var reservations int
			for name, content := range files {
				switch {
				case strings.HasPrefix(name, ".tmp-"):
					t.Errorf("stray temp file %s", name)
				case name == "lock" || strings.HasPrefix(name, "last_reserved_ip."):
				default:
					reservations++
					if owner[name]+"\r\neth0" != content {
						t.Errorf("%s holds %q, but the result gave it to %q", name, content, owner[name])
					}
				}
			}
			if reservations != len(owner) {
				t.Errorf("%d reservation files for %d successful ADDs", reservations, len(owner))
			}
			if _, ok := files["10.50.0.1"]; ok {
				t.Error("the gateway was handed out")
			}
		})
	}
}
