package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minicni/minicni/libmini"
)

// TestInteropHostLocal allocates alternately with the reference host-local
// and miniipam in one dataDir: they share the round-robin cursor, never hand
// out an address twice, and each one's DEL, CHECK and re-ADD understand the
// other's reservations.
func TestInteropHostLocal(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "net")
	const ipam = `{"subnet":"10.40.0.0/24","rangeStart":"10.40.0.10","rangeEnd":"10.40.0.29"}` // 20 addresses
	conf := map[string]string{
		"host-local": netConf("1.0.0", "host-local", dataDir, ipam),
		"miniipam":   netConf("1.0.0", "miniipam", dataDir, ipam),
	}
	plugins := []string{"host-local", "miniipam"}
	owner := map[string]string{} // address -> container
	var order []string
	for i := range 20 {
		p := plugins[i%2]
		id := fmt.Sprintf("c%d", i)
		o := mustOK(t, call{bin: p, cmd: "ADD", id: id, stdin: conf[p]})
		a := addrOf(t, o.stdout)
		if prev, dup := owner[a]; dup {
			t.Fatalf("%s gave %s to %s, already %s's", p, a, id, prev)
		}
		owner[a] = id
		order = append(order, a)
	}
	// One shared cursor: the addresses come in order whoever allocates.
	for i, a := range order {
		if want := fmt.Sprintf("10.40.0.%d", 10+i); a != want {
			t.Errorf("allocation %d (%s) got %s, want %s", i, plugins[i%2], a, want)
		}
	}
	// Both see the pool as full.
	wantError(t, "miniipam ADD on the full pool", runPlugin(t, call{cmd: "ADD", id: "x1", stdin: conf["miniipam"]}), libmini.CodePoolExhausted)
	if o := runPlugin(t, call{bin: "host-local", cmd: "ADD", id: "x2", stdin: conf["host-local"]}); o.exit == 0 {
		t.Fatalf("host-local allocated on the full pool: %s", o.stdout)
	}

	// miniipam re-ADDs host-local's attachment (c0 is host-local's) and
	// returns the same address; CHECK agrees in both directions.
	if a := addrOf(t, mustOK(t, call{cmd: "ADD", id: "c0", stdin: conf["miniipam"]}).stdout); a != "10.40.0.10" {
		t.Errorf("miniipam re-ADD of host-local's c0 gave %s", a)
	}
	prev := func(a string) string {
		return `"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"` + a + `/24"}]}`
	}
	mustOK(t, call{cmd: "CHECK", id: "c0", stdin: netConf("1.0.0", "miniipam", dataDir, ipam, prev("10.40.0.10"))})
	mustOK(t, call{bin: "host-local", cmd: "CHECK", id: "c1", stdin: netConf("1.0.0", "host-local", dataDir, ipam, prev("10.40.0.11"))})

	// DEL by the other one releases: c0 (host-local's) by miniipam, c1
	// (miniipam's) by host-local.
	mustOK(t, call{cmd: "DEL", id: "c0", stdin: conf["miniipam"]})
	mustOK(t, call{bin: "host-local", cmd: "DEL", id: "c1", stdin: conf["host-local"]})
	files := storeFiles(t, dir)
	for _, a := range []string{"10.40.0.10", "10.40.0.11"} {
		if _, ok := files[a]; ok {
			t.Errorf("%s still reserved after DEL by the other plugin", a)
		}
	}
	// The freed addresses are handed out again, once each.
	got := map[string]bool{
		addrOf(t, mustOK(t, call{cmd: "ADD", id: "n1", stdin: conf["miniipam"]}).stdout):                      true,
		addrOf(t, mustOK(t, call{bin: "host-local", cmd: "ADD", id: "n2", stdin: conf["host-local"]}).stdout): true,
	}
	if !got["10.40.0.10"] || !got["10.40.0.11"] {
		t.Errorf("re-allocation of the freed addresses gave %v", got)
	}

	// host-local's GC (it deletes files it does not know) leaves miniipam's
	// files alone, and miniipam keeps working after it.
	valid := []string{}
	for _, id := range []string{"n1", "n2", "c2", "c3"} {
		valid = append(valid, fmt.Sprintf(`{"containerID":%q,"ifname":"eth0"}`, id))
	}
	gc := `"cni.dev/valid-attachments":[` + strings.Join(valid, ",") + `]`
	mustOK(t, call{bin: "host-local", cmd: "GC", stdin: netConf("1.1.0", "host-local", dataDir, ipam, gc)})
	if _, ok := storeFiles(t, dir)["last_reserved_ip.boot_id"]; !ok {
		t.Error("host-local's GC deleted miniipam's boot ID file")
	}
	mustOK(t, call{cmd: "GC", stdin: netConf("1.1.0", "miniipam", dataDir, ipam, gc)})
	var left []string
	for name := range storeFiles(t, dir) {
		if !strings.HasPrefix(name, "last_reserved_ip.") && name != "lock" {
			left = append(left, name)
		}
	}
	if len(left) != 4 {
		t.Errorf("after both GCs %d reservations are left (%v), want 4", len(left), left)
	}
}

// TestInteropConcurrent starts host-local and miniipam processes at once on
// one /24: they take the same lock, so no address is handed out twice.
func TestInteropConcurrent(t *testing.T) {
	dataDir := t.TempDir()
	const ipam = `{"subnet":"10.41.0.0/24"}`
	const perPlugin = 40
	type res struct {
		plugin, id string
		o          outcome
	}
	results := make(chan res, 2*perPlugin)
	var wg sync.WaitGroup
	for i := range 2 * perPlugin {
		p := []string{"host-local", "miniipam"}[i%2]
		id := fmt.Sprintf("%s-%d", p, i)
		wg.Go(func() {
			results <- res{p, id, runPlugin(t, call{bin: p, cmd: "ADD", id: id, stdin: netConf("1.0.0", p, dataDir, ipam)})}
		})
	}
	wg.Wait()
	close(results)
	owner := map[string]string{}
	for r := range results {
		if r.o.exit != 0 {
			t.Errorf("%s ADD %s: %s", r.plugin, r.id, r.o)
			continue
		}
		a := addrOf(t, r.o.stdout)
		if prev, dup := owner[a]; dup {
			t.Errorf("%s handed out twice: %s and %s", a, prev, r.id)
		}
		owner[a] = r.id
	}
	files := storeFiles(t, filepath.Join(dataDir, "net"))
	for a, id := range owner {
		if files[a] != id+"\r\neth0" {
			t.Errorf("%s holds %q, want %s's reservation", a, files[a], id)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, ".tmp-") {
			t.Errorf("stray temp file %s", name)
		}
	}
	if len(owner) != 2*perPlugin {
		t.Errorf("%d distinct addresses, want %d", len(owner), 2*perPlugin)
	}
}
