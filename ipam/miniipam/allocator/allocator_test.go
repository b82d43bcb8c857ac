package allocator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/ipam/miniipam/store"
	"github.com/minicni/minicni/libmini"
)

var ctx = context.Background()

// env is one test's network: a data dir and a fake boot.
type env struct {
	t       *testing.T
	dataDir string
	bootID  string
	stat    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dataDir: t.TempDir()}
	dir := t.TempDir()
	e.bootID, e.stat = filepath.Join(dir, "boot_id"), filepath.Join(dir, "stat")
	e.boot("boot-1", time.Now().Add(-time.Hour))
	return e
}

func (e *env) boot(id string, at time.Time) {
	e.t.Helper()
	if err := os.WriteFile(e.bootID, []byte(id+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.stat, []byte(fmt.Sprintf("cpu 1\nbtime %d\n", at.Unix())), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// alloc loads ipam (the JSON of the ipam object, without dataDir) plus extra
// top-level keys and returns an allocator on e's data dir and boot.
func (e *env) alloc(ipam string, extra ...string) *Allocator {
	e.t.Helper()
	return e.allocArgs(ipam, "", extra...)
}

func (e *env) allocArgs(ipam, envArgs string, extra ...string) *Allocator {
	e.t.Helper()
	ipam = strings.TrimSuffix(strings.TrimSpace(ipam), "}") + fmt.Sprintf(`,"dataDir":%q}`, e.dataDir)
	stdin := `{"cniVersion":"1.1.0","name":"net","type":"miniipam","ipam":` + ipam
	for _, x := range extra {
		stdin += "," + x
	}
	stdin += "}"
	conf, err := config.LoadConf([]byte(stdin), envArgs)
	if err != nil {
		e.t.Fatalf("LoadConf(%s): %v", stdin, err)
	}
	a := New(conf, nil)
	a.Store.BootIDPath, a.Store.StatPath = e.bootID, e.stat
	return a
}

func (e *env) dir() string { return filepath.Join(e.dataDir, "net") }

// reservations maps the files of the network's directory, without the lock
// and the last_reserved_ip.* bookkeeping, to their contents.
func (e *env) reservations() map[string]string {
	e.t.Helper()
	entries, err := os.ReadDir(e.dir())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, ent := range entries {
		n := ent.Name()
		if n == store.LockName || strings.HasPrefix(n, store.LastReservedPrefix) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(e.dir(), n))
		if err != nil {
			e.t.Fatal(err)
		}
		out[n] = string(data)
	}
	return out
}

func addrs(res *current.Result) []string {
	var out []string
	for _, c := range res.IPs {
		out = append(out, c.Address.String()+" gw "+c.Gateway.String())
	}
	return out
}

func mustAdd(t *testing.T, a *Allocator, id, ifname string) *current.Result {
	t.Helper()
	res, err := a.Add(ctx, id, ifname)
	if err != nil {
		t.Fatalf("Add(%s, %s): %v", id, ifname, err)
	}
	return res
}

func wantCode(t *testing.T, what string, err error, code uint) {
	t.Helper()
	e, ok := err.(*types.Error)
	if !ok || e.Code != code {
		t.Fatalf("%s: got %T %v, want CNI error %d", what, err, err, code)
	}
}

const v4 = `{"ranges":[[{"subnet":"10.0.0.0/29"}]]}` // .1 gateway, .2-.6 assignable

func TestAddRoundRobin(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	var got []string
	add := func(id string) { got = append(got, addrs(mustAdd(t, a, id, "eth0"))...) }
	add("a")
	add("b")
	add("c")
	if err := a.Del(ctx, "b", "eth0"); err != nil {
		t.Fatal(err)
	}
	add("d") // after the last reserved (.4), not the freed .3
	add("e")
	add("f") // wraps around to the freed .3
	want := []string{"10.0.0.2/29 gw 10.0.0.1", "10.0.0.3/29 gw 10.0.0.1", "10.0.0.4/29 gw 10.0.0.1",
		"10.0.0.5/29 gw 10.0.0.1", "10.0.0.6/29 gw 10.0.0.1", "10.0.0.3/29 gw 10.0.0.1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("allocations (-want +got):\n%s", d)
	}
	// Full: the next one is exhausted, naming network and range.
	_, err := a.Add(ctx, "g", "eth0")
	wantCode(t, "Add on a full pool", err, libmini.CodePoolExhausted)
	if msg := err.(*types.Error).Msg; !strings.Contains(msg, "net") || !strings.Contains(msg, "10.0.0.0/29") {
		t.Errorf("exhaustion message %q does not name the network and range", msg)
	}
	if len(e.reservations()) != 5 {
		t.Errorf("reservations after exhaustion: %v", e.reservations())
	}
}

func TestRoundRobinAcrossRanges(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.11","gateway":"10.0.0.11"},
		{"subnet":"10.0.1.0/24","rangeStart":"10.0.1.1","rangeEnd":"10.0.1.2"}]]}`)
	var got []string
	for _, id := range []string{"a", "b"} {
		got = append(got, addrs(mustAdd(t, a, id, "eth0"))...)
	}
	// Each range's gateway (10.0.0.11 given, 10.0.1.1 by default) is skipped.
	want := []string{"10.0.0.10/24 gw 10.0.0.11", "10.0.1.2/24 gw 10.0.1.1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("allocations (-want +got):\n%s", d)
	}
	_, err := a.Add(ctx, "c", "eth0")
	wantCode(t, "Add on a full two-range set", err, libmini.CodePoolExhausted)
}

func TestReAddReturnsSameAddresses(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]}`)
	first := addrs(mustAdd(t, a, "c1", "eth0"))
	second := addrs(mustAdd(t, a, "c1", "eth0"))
	if d := cmp.Diff(first, second); d != "" {
		t.Errorf("re-ADD changed addresses (-first +second):\n%s", d)
	}
	other := addrs(mustAdd(t, a, "c1", "eth1"))
	if other[0] == first[0] || other[1] == first[1] {
		t.Errorf("another ifname of the same container got the same addresses: %v vs %v", other, first)
	}
	if n := len(e.reservations()); n != 4 {
		t.Errorf("%d reservations, want 4", n)
	}
	// Only the missing set is allocated when a config gains a set.
	b := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}],[{"subnet":"10.1.0.0/24"}]]}`)
	third := addrs(mustAdd(t, b, "c1", "eth0"))
	if d := cmp.Diff(first, third[:2]); d != "" || len(third) != 3 {
		t.Errorf("re-ADD with a new set: %v, want %v plus one", third, first)
	}
}

func TestDualStack(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/24","gateway":"10.0.0.254"}],[{"subnet":"fd00::/120"}]],
		"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}`)
	res := mustAdd(t, a, "c1", "eth0")
	want := []string{"10.0.0.1/24 gw 10.0.0.254", "fd00::2/120 gw fd00::1"}
	if d := cmp.Diff(want, addrs(res)); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
	if len(res.Routes) != 2 || res.Routes[1].Dst.String() != "::/0" {
		t.Errorf("routes %v", res.Routes)
	}
	// Converting to every version keeps one address per family.
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		if _, err := res.GetAsVersion(v); err != nil {
			t.Errorf("result as %s: %v", v, err)
		}
	}
}

func TestExhaustionRollsBack(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"fd00::/64"}],[{"subnet":"10.0.0.0/30"}]]}`) // one v4 address: .2
	mustAdd(t, a, "c1", "eth0")
	_, err := a.Add(ctx, "c2", "eth0")
	wantCode(t, "Add with the v4 set full", err, libmini.CodePoolExhausted)
	for name, owner := range e.reservations() {
		if strings.HasPrefix(owner, "c2") {
			t.Errorf("failed ADD left %s reserved for c2", name)
		}
	}
	if err := a.Status(ctx); err == nil {
		t.Error("Status with a full set succeeded")
	} else {
		wantCode(t, "Status", err, libmini.CodeNotAvailable)
	}
	if err := a.Del(ctx, "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := a.Status(ctx); err != nil {
		t.Errorf("Status with free addresses: %v", err)
	}
}

func TestStaticRequest(t *testing.T) {
	e := newEnv(t)
	const ranges = `{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]}`
	a := e.allocArgs(ranges, "IgnoreUnknown=1;IP=10.0.0.50")
	res := mustAdd(t, a, "c1", "eth0")
	if got := addrs(res); got[0] != "10.0.0.50/24 gw 10.0.0.1" || got[1] != "fd00::2/64 gw fd00::1" {
		t.Errorf("static request gave %v", got)
	}
	// The same owner asking again: success, same address.
	mustAdd(t, a, "c1", "eth0")
	// Another owner asking for it: taken.
	_, err := a.Add(ctx, "c2", "eth0")
	wantCode(t, "Add of another owner's address", err, libmini.CodeAddressTaken)
	if _, ok := e.reservations()["fd00::3"]; ok {
		t.Error("the failed static ADD kept its IPv6 reservation")
	}
	// Round-robin continues after the static address.
	if got := addrs(mustAdd(t, e.alloc(ranges), "c3", "eth0")); got[0] != "10.0.0.51/24 gw 10.0.0.1" {
		t.Errorf("dynamic after static gave %v", got)
	}
	// A new static request of the same attachment moves it.
	b := e.alloc(ranges, `"runtimeConfig":{"ips":["10.0.0.60"]}`)
	if got := addrs(mustAdd(t, b, "c1", "eth0")); got[0] != "10.0.0.60/24 gw 10.0.0.1" {
		t.Errorf("moved static gave %v", got)
	}
	r := e.reservations()
	if _, ok := r["10.0.0.50"]; ok {
		t.Error("the replaced address stayed reserved")
	}
	if r["10.0.0.60"] != "c1\r\neth0" {
		t.Errorf("10.0.0.60 holds %q", r["10.0.0.60"])
	}
}

func TestDel(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	// Nothing there yet: success, and no directory made.
	if err := a.Del(ctx, "c1", "eth0"); err != nil {
		t.Fatalf("Del on a missing store: %v", err)
	}
	if _, err := os.Stat(e.dir()); !os.IsNotExist(err) {
		t.Errorf("Del created %s", e.dir())
	}
	mustAdd(t, a, "c1", "eth0")
	mustAdd(t, a, "c1", "eth1")
	mustAdd(t, a, "c2", "eth0")
	for range 2 { // the second DEL finds nothing: success
		if err := a.Del(ctx, "c1", "eth0"); err != nil {
			t.Fatalf("Del: %v", err)
		}
	}
	want := map[string]string{"10.0.0.3": "c1\r\neth1", "10.0.0.4": "c2\r\neth0"}
	if d := cmp.Diff(want, e.reservations()); d != "" {
		t.Errorf("after Del (-want +got):\n%s", d)
	}
	// A legacy reservation (container ID only) is released by any ifname.
	if err := os.WriteFile(filepath.Join(e.dir(), "10.0.0.6"), []byte("c9"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Del(ctx, "c9", "eth3"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.reservations()["10.0.0.6"]; ok {
		t.Error("legacy reservation not released")
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	const ranges = `{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/64"}]]}`
	a := e.alloc(ranges)
	err := a.Check(ctx, "c1", "eth0")
	wantCode(t, "Check before any ADD", err, libmini.CodeCheckFailed)
	mustAdd(t, a, "c1", "eth0")
	mustAdd(t, a, "c2", "eth0")
	prev := func(ips ...string) string {
		var list []string
		for _, ip := range ips {
			list = append(list, fmt.Sprintf(`{"address":%q}`, ip))
		}
		return `"prevResult":{"cniVersion":"1.1.0","ips":[` + strings.Join(list, ",") + `]}`
	}
	tests := []struct {
		name  string
		extra []string
		id    string
		ok    bool
	}{
		{"no prevResult, reserved", nil, "c1", true},
		{"no prevResult, unknown", nil, "c3", false},
		{"matching prevResult", []string{prev("10.0.0.2/24", "fd00::2/64")}, "c1", true},
		{"prevResult with an unrelated address too", []string{prev("10.0.0.2/24", "fd00::2/64", "192.168.1.1/24")}, "c1", true},
		{"prevResult missing an address", []string{prev("10.0.0.2/24")}, "c1", false},
		{"prevResult with another's address", []string{prev("10.0.0.3/24", "fd00::2/64")}, "c1", false},
		{"prevResult of another attachment", []string{prev("10.0.0.2/24", "fd00::2/64")}, "c2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.alloc(ranges, tt.extra...).Check(ctx, tt.id, "eth0")
			if tt.ok && err != nil {
				t.Errorf("Check: %v", err)
			}
			if !tt.ok {
				wantCode(t, "Check", err, libmini.CodeCheckFailed)
			}
		})
	}
	// Released: check fails.
	if err := a.Del(ctx, "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Check after DEL", a.Check(ctx, "c1", "eth0"), libmini.CodeCheckFailed)
}

func TestGC(t *testing.T) {
	for _, key := range []string{"cni.dev/valid-attachments", "cni.dev/attachments"} {
		t.Run(key, func(t *testing.T) {
			e := newEnv(t)
			a := e.alloc(v4)
			mustAdd(t, a, "keep", "eth0")
			mustAdd(t, a, "keep", "eth1")
			mustAdd(t, a, "gone", "eth0")
			for name, content := range map[string]string{"10.0.0.5": "keep", "10.0.0.6": "gone-legacy"} {
				if err := os.WriteFile(filepath.Join(e.dir(), name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			gc := e.alloc(v4, fmt.Sprintf(`%q:[{"containerID":"keep","ifname":"eth0"}]`, key))
			if err := gc.GC(ctx); err != nil {
				t.Fatalf("GC: %v", err)
			}
			want := map[string]string{"10.0.0.2": "keep\r\neth0", "10.0.0.5": "keep"}
			if d := cmp.Diff(want, e.reservations()); d != "" {
				t.Errorf("after GC (-want +got):\n%s", d)
			}
		})
	}
	t.Run("no list", func(t *testing.T) {
		e := newEnv(t)
		mustAdd(t, e.alloc(v4), "c1", "eth0")
		wantCode(t, "GC without a list", e.alloc(v4).GC(ctx), libmini.CodeInvalidConfig)
		if len(e.reservations()) != 1 {
			t.Errorf("GC without a list released something: %v", e.reservations())
		}
		if err := e.alloc(v4, `"cni.dev/valid-attachments":[]`).GC(ctx); err != nil {
			t.Fatal(err)
		}
		if len(e.reservations()) != 0 {
			t.Errorf("GC with an empty list kept %v", e.reservations())
		}
	})
	t.Run("missing store", func(t *testing.T) {
		e := newEnv(t)
		if err := e.alloc(v4, `"cni.dev/valid-attachments":[]`).GC(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(e.dir()); !os.IsNotExist(err) {
			t.Errorf("GC created %s", e.dir())
		}
	})
}

// TestReleaseWhere: exactly the reservations pick accepts are released and
// returned; a missing store releases nothing.
func TestReleaseWhere(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	mustAdd(t, a, "keep", "eth0")
	mustAdd(t, a, "drop", "eth0")
	released, err := a.ReleaseWhere(ctx, "released", func(r store.Reservation) bool { return r.ContainerID == "drop" })
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 1 || released[0].Addr.String() != "10.0.0.3" || released[0].ContainerID != "drop" {
		t.Errorf("released %+v", released)
	}
	if d := cmp.Diff(map[string]string{"10.0.0.2": "keep\r\neth0"}, e.reservations()); d != "" {
		t.Errorf("after ReleaseWhere (-want +got):\n%s", d)
	}
	none, err := newEnv(t).alloc(v4).ReleaseWhere(ctx, "released", func(store.Reservation) bool { return true })
	if err != nil || none != nil {
		t.Errorf("ReleaseWhere on a missing store = %v, %v", none, err)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/30"}],[{"subnet":"fd00::/64"}]]}`)
	if err := a.Status(ctx); err != nil {
		t.Fatalf("Status of an empty store: %v", err)
	}
	mustAdd(t, a, "c1", "eth0")
	wantCode(t, "Status with the v4 set full", a.Status(ctx), libmini.CodeNotAvailable)
	// After a reboot the old reservation counts as free before any command
	// reclaims it: a node must not stay NotReady because of it.
	if err := os.Chtimes(filepath.Join(e.dir(), "10.0.0.2"), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.boot("boot-2", time.Now().Add(-time.Minute))
	if err := a.Status(ctx); err != nil {
		t.Errorf("Status after a reboot: %v", err)
	}
}

func TestBootReclaim(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	for _, id := range []string{"old1", "old2", "old3", "old4"} {
		mustAdd(t, a, id, "eth0")
	}
	// Age them: they were made an hour ago, in the previous boot.
	past := time.Now().Add(-time.Hour)
	for name := range e.reservations() {
		if err := os.Chtimes(filepath.Join(e.dir(), name), past, past); err != nil {
			t.Fatal(err)
		}
	}
	// Reboot 10 minutes ago; host-local allocated .6 after it, before any
	// miniipam command.
	e.boot("boot-2", time.Now().Add(-10*time.Minute))
	if err := os.WriteFile(filepath.Join(e.dir(), "10.0.0.6"), []byte("hl\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := mustAdd(t, a, "new", "eth0")
	got := e.reservations()
	want := map[string]string{"10.0.0.6": "hl\r\neth0"}
	want[strings.Split(res.IPs[0].Address.String(), "/")[0]] = "new\r\neth0"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("after the reboot (-want +got):\n%s", d)
	}
}

func TestDebrisIsCleared(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(`{"ranges":[[{"subnet":"10.0.0.0/30"}]]}`) // only .2
	mustAdd(t, a, "c1", "eth0")
	if err := a.Del(ctx, "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	// A host-local that died between its O_EXCL create and its write, and
	// a miniipam that died before its link.
	for _, name := range []string{"10.0.0.2", ".tmp-1-2"} {
		if err := os.WriteFile(filepath.Join(e.dir(), name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := addrs(mustAdd(t, a, "c2", "eth0")); got[0] != "10.0.0.2/30 gw 10.0.0.1" {
		t.Errorf("got %v", got)
	}
	if d := cmp.Diff(map[string]string{"10.0.0.2": "c2\r\neth0"}, e.reservations()); d != "" {
		t.Errorf("store (-want +got):\n%s", d)
	}
}

func TestLockTimeout(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	mustAdd(t, a, "c1", "eth0")
	holder, err := a.Store.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	a.Store.LockTimeout = 20 * time.Millisecond
	_, err = a.Add(ctx, "c2", "eth0")
	wantCode(t, "Add while the lock is held", err, libmini.CodeTryAgainLater)
	wantCode(t, "Del while the lock is held", a.Del(ctx, "c1", "eth0"), libmini.CodeTryAgainLater)
	// STATUS does not wait for the lock.
	if err := a.Status(ctx); err != nil {
		t.Errorf("Status while the lock is held: %v", err)
	}
}

func TestInvalidOwner(t *testing.T) {
	e := newEnv(t)
	a := e.alloc(v4)
	for _, o := range [][2]string{{"a/b", "eth0"}, {"", "eth0"}, {"a\r\nb", "eth0"}, {"c1", "0123456789abcdef"}, {"c1", ""}, {"c1", "a b"}} {
		_, err := a.Add(ctx, o[0], o[1])
		wantCode(t, fmt.Sprintf("Add(%q, %q)", o[0], o[1]), err, libmini.CodeInvalidEnv)
	}
	if _, err := os.Stat(e.dir()); !os.IsNotExist(err) {
		t.Errorf("invalid owners created %s", e.dir())
	}
}

func TestResolvConf(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# comment\nnameserver 10.96.0.10\nnameserver fd00::a\nsearch ns.svc.cluster.local cluster.local\ndomain example\noptions ndots:5\n; other\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res := mustAdd(t, e.alloc(fmt.Sprintf(`{"subnet":"10.0.0.0/24","resolvConf":%q}`, path)), "c1", "eth0")
	want := types.DNS{Nameservers: []string{"10.96.0.10", "fd00::a"}, Domain: "example",
		Search: []string{"ns.svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}
	if d := cmp.Diff(want, res.DNS); d != "" {
		t.Errorf("DNS (-want +got):\n%s", d)
	}
	_, err := e.alloc(`{"subnet":"10.0.0.0/24","resolvConf":"/nonexistent/resolv.conf"}`).Add(ctx, "c2", "eth0")
	wantCode(t, "Add with a missing resolvConf", err, libmini.CodeInvalidConfig)
}

// TestInProcessConcurrency runs many allocators at once in one process: the
// flock is per open file, so goroutines serialize like processes do.
func TestInProcessConcurrency(t *testing.T) {
	e := newEnv(t)
	const n = 40
	errs := make(chan error, n)
	results := make(chan string, n)
	for i := range n {
		go func() {
			res, err := e.alloc(`{"subnet":"10.0.0.0/24"}`).Add(ctx, fmt.Sprintf("c%d", i), "eth0")
			if err != nil {
				errs <- err
				return
			}
			results <- res.IPs[0].Address.String()
			errs <- nil
		}()
	}
	seen := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(results)
	for r := range results {
		if seen[r] {
			t.Errorf("%s handed out twice", r)
		}
		seen[r] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct addresses, want %d", len(seen), n)
	}
}
