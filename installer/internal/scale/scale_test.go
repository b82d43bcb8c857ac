package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestEventCostFollowsTheChange runs the agent against 100 and then 200
// nodes, direct and over VXLAN, and checks that the pass after a single
// node event sends the kernel the same, fixed number of requests whatever
// the cluster's size: one address dump (the local subnets), then one
// request per route, FDB or neighbour entry that changes, and reads no
// route or entry back, and lists no node but the one that changed. Times
// are not asserted (a shared machine); Run
// itself checks every route is in place after convergence and after the
// events, and that a full resync then changes nothing.
func TestEventCostFollowsTheChange(t *testing.T) {
	// Requests per pass: AddrList, then the writes.
	want := map[bool]map[string]int{
		false: {"add": 1 + 1, "change": 1 + 1, "remove": 1 + 1}, // route replaced / deleted
		// add: FDB entry, neighbour entry, route; change (new underlay
		// address, so new MAC): FDB entry deleted and added, neighbour
		// entry replaced, route unchanged; remove: FDB entry, neighbour
		// entry, route deleted.
		true: {"add": 1 + 3, "change": 1 + 3, "remove": 1 + 3},
	}
	for _, vxlan := range []bool{false, true} {
		for _, size := range []int{100, 200} {
			t.Run(fmt.Sprintf("vxlan=%v/nodes=%d", vxlan, size), func(t *testing.T) {
				res := Run(t, Config{Nodes: size, VXLAN: vxlan, Events: 4, Resyncs: 1})
				for name, e := range map[string]Event{"add": res.Add, "change": res.Change, "remove": res.Remove} {
					if e.MinRequests != want[vxlan][name] || e.Requests != want[vxlan][name] {
						t.Errorf("%s: %d to %d netlink requests per pass, want %d", name, e.MinRequests, e.Requests, want[vxlan][name])
					}
					if e.Writes != want[vxlan][name]-1 {
						t.Errorf("%s: %d writes per pass, want %d", name, e.Writes, want[vxlan][name]-1)
					}
					if e.Lists != 0 {
						t.Errorf("%s: the event pass listed every node", name)
					}
				}
				// A full pass reads every route back: it grows with the
				// cluster, which is why events no longer run one.
				if res.Resync.Entries < size {
					t.Errorf("a full resync read %d entries back, want at least one per node (%d)", res.Resync.Entries, size)
				}
			})
		}
	}
}

// TestWriteSection: the section replaces what is between the markers and
// nothing else, or is appended to a file without them (as the chain
// benchmark writes it).
func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nchain figures\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(mustRead(t, path), "after\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nchain figures\n\n" + BeginMarker + "\n\nsecond\n\n" + EndMarker + "\nafter\n"
	if got := string(mustRead(t, path)); got != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
