package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"golang.org/x/sys/unix"
)

// newDisk returns a store in a fresh temp dir whose boot is described by
// files the test controls: boot ID "boot-1", booted one hour ago.
func newDisk(t *testing.T) *Disk {
	t.Helper()
	d := New(t.TempDir(), "net")
	dir := t.TempDir()
	d.BootIDPath = filepath.Join(dir, "boot_id")
	d.StatPath = filepath.Join(dir, "stat")
	setBoot(t, d, "boot-1", time.Now().Add(-time.Hour))
	return d
}

func setBoot(t *testing.T, d *Disk, id string, at time.Time) {
	t.Helper()
	if err := os.WriteFile(d.BootIDPath, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("cpu  1 2 3 4\nintr 5\nctxt 6\nbtime %d\nprocesses 7\n", at.Unix())
	if err := os.WriteFile(d.StatPath, []byte(stat), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lock(t *testing.T, d *Disk) *Tx {
	t.Helper()
	tx, err := d.Lock(context.Background(), true)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	t.Cleanup(func() { _ = tx.Close() })
	return tx
}

func write(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

var ip = netip.MustParseAddr

func TestReserveLayout(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d)
	for _, a := range []netip.Addr{ip("10.0.0.2"), ip("fd00::2")} {
		ok, err := tx.Reserve(a, Owner{ContainerID: "c1", IfName: "eth0"})
		if err != nil || !ok {
			t.Fatalf("Reserve(%s) = %v, %v", a, ok, err)
		}
	}
	if ok, err := tx.Reserve(ip("10.0.0.2"), Owner{ContainerID: "c2", IfName: "eth0"}); ok || err != nil {
		t.Errorf("Reserve of a taken address = %v, %v; want false, nil", ok, err)
	}
	if err := tx.SetLastReserved(0, ip("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	if got := tx.LastReserved(0); got != ip("10.0.0.2") {
		t.Errorf("LastReserved(0) = %s", got)
	}
	if got := tx.LastReserved(1); got.IsValid() {
		t.Errorf("LastReserved(1) = %s, want none", got)
	}
	want := []string{"10.0.0.2", "fd00::2", "last_reserved_ip.0", BootIDName, "lock"}
	if d := cmp.Diff(want, minitest.DirNames(t, d.Dir)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	data, err := os.ReadFile(filepath.Join(d.Dir, "10.0.0.2"))
	if err != nil || string(data) != "c1\r\neth0" {
		t.Errorf("reservation holds %q (%v), want %q", data, err, "c1\r\neth0")
	}
	for _, name := range []string{"", "10.0.0.2", "lock", "last_reserved_ip.0"} {
		fi, err := os.Stat(filepath.Join(d.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if name == "" {
			want = os.ModeDir | 0o700
		}
		if fi.Mode() != want {
			t.Errorf("%q has mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

func TestLoadRemovesDebris(t *testing.T) {
	d := newDisk(t)
	lock(t, d).Close()
	write(t, filepath.Join(d.Dir, ".tmp-123-456"), "c9\r\neth0", time.Time{}) // miniipam died before its link
	write(t, filepath.Join(d.Dir, "10.0.0.3"), "", time.Time{})               // host-local died before its write
	write(t, filepath.Join(d.Dir, "10.0.0.4"), "c4\r\neth0\n", time.Time{})   // a trailing newline is tolerated
	write(t, filepath.Join(d.Dir, "10.0.0.5"), "legacy-id", time.Time{})      // host-local before ifnames
	write(t, filepath.Join(d.Dir, "notes.txt"), "", time.Time{})              // not ours: left alone
	write(t, filepath.Join(d.Dir, "010.0.0.6"), "x", time.Time{})             // not a canonical address
	tx := lock(t, d)
	want := []Reservation{
		{Addr: ip("10.0.0.4"), ContainerID: "c4", IfName: "eth0"},
		{Addr: ip("10.0.0.5"), ContainerID: "legacy-id", Legacy: true},
	}
	if d := cmp.Diff(want, tx.All(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("reservations (-want +got):\n%s", d)
	}
	wantFiles := []string{"010.0.0.6", "10.0.0.4", "10.0.0.5", BootIDName, "lock", "notes.txt"}
	if d := cmp.Diff(wantFiles, minitest.DirNames(t, d.Dir)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
}

func TestOwned(t *testing.T) {
	d := newDisk(t)
	lock(t, d).Close()
	write(t, filepath.Join(d.Dir, "10.0.0.2"), "a\r\neth0", time.Time{})
	write(t, filepath.Join(d.Dir, "10.0.0.3"), "a\r\neth1", time.Time{})
	write(t, filepath.Join(d.Dir, "10.0.0.4"), "a", time.Time{})
	write(t, filepath.Join(d.Dir, "10.0.0.5"), "b", time.Time{})
	tx := lock(t, d)
	addrs := func(rs []Reservation) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Addr.String())
		}
		return out
	}
	tests := []struct {
		owner Owner
		want  []string
	}{
		{Owner{"a", "eth0"}, []string{"10.0.0.2"}},
		{Owner{"a", "eth1"}, []string{"10.0.0.3"}},
		{Owner{"a", "eth2"}, []string{"10.0.0.4"}}, // only the legacy one matches
		{Owner{"b", "eth0"}, []string{"10.0.0.5"}},
		{Owner{"c", "eth0"}, nil},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, addrs(tx.Owned(tt.owner))); d != "" {
			t.Errorf("Owned(%v) (-want +got):\n%s", tt.owner, d)
		}
	}
}

func TestLockWithoutCreate(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "data"), "net")
	if _, err := d.Lock(context.Background(), false); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Lock without create on a missing dir: %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(filepath.Dir(d.Dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lock without create made %s (%v)", filepath.Dir(d.Dir), err)
	}
	taken, err := d.Taken()
	if err != nil || taken != nil {
		t.Errorf("Taken on a missing dir = %v, %v", taken, err)
	}
}

func TestLockTimeout(t *testing.T) {
	d := newDisk(t)
	d.LockTimeout = 50 * time.Millisecond
	holder := lock(t, d)
	start := time.Now()
	_, err := d.Lock(context.Background(), true)
	if e, ok := libmini.AsCNIError(err); !ok || e.Code != libmini.CodeTryAgainLater {
		t.Fatalf("Lock while held: %v, want CNI error 11", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Lock gave up after %s", el)
	}
	// A context ending first wins too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.LockTimeout = time.Hour
	if _, err := d.Lock(ctx, true); err == nil {
		t.Fatal("Lock with a cancelled context succeeded while the lock was held")
	}
	// Once released, the abandoned waiters let go and the lock is usable.
	holder.Close()
	d.LockTimeout = 10 * time.Second
	lock(t, d).Close()
}

// TestHostLocalLock checks that miniipam's lock and host-local's are the same
// lock, and that each reads the other's reservations, using host-local's own
// disk backend in-process.
func TestHostLocalLock(t *testing.T) {
	d := newDisk(t)
	hl, err := disk.New("net", filepath.Dir(d.Dir))
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	if err := hl.Lock(); err != nil {
		t.Fatal(err)
	}
	d.LockTimeout = 50 * time.Millisecond
	if _, err := d.Lock(context.Background(), true); err == nil {
		t.Fatal("miniipam locked the store while host-local held it")
	}
	if ok, err := hl.Reserve("hl-id", "eth0", net.ParseIP("10.0.0.7"), "0"); !ok || err != nil {
		t.Fatalf("host-local Reserve: %v %v", ok, err)
	}
	if err := hl.Unlock(); err != nil {
		t.Fatal(err)
	}

	d.LockTimeout = 5 * time.Second
	tx := lock(t, d)
	if r, ok := tx.Get(ip("10.0.0.7")); !ok || !r.Is(Owner{"hl-id", "eth0"}) {
		t.Errorf("miniipam reads host-local's reservation as %+v, %v", r, ok)
	}
	if got := tx.LastReserved(0); got != ip("10.0.0.7") {
		t.Errorf("miniipam reads host-local's last_reserved_ip.0 as %s", got)
	}
	if ok, err := tx.Reserve(ip("10.0.0.7"), Owner{"mini-id", "eth0"}); ok || err != nil {
		t.Errorf("miniipam reserved host-local's address: %v %v", ok, err)
	}
	if ok, err := tx.Reserve(ip("fd00::8"), Owner{"mini-id", "eth0"}); !ok || err != nil {
		t.Fatalf("Reserve: %v %v", ok, err)
	}
	locked := make(chan error, 1)
	go func() { locked <- hl.Lock() }()
	select {
	case err := <-locked:
		t.Fatalf("host-local locked the store while miniipam held it (Lock returned %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	tx.Close()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	got := hl.GetByID("mini-id", "eth0")
	if len(got) != 1 || !got[0].Equal(net.ParseIP("fd00::8")) {
		t.Errorf("host-local reads miniipam's reservation as %v", got)
	}
	if ok, _ := hl.Reserve("other", "eth0", net.ParseIP("fd00::8"), "1"); ok {
		t.Error("host-local reserved miniipam's address")
	}
	// host-local's GC deletes every file it does not know; the boot ID file
	// must not be one of them.
	if err := hl.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := hl.GC([]types.GCAttachment{{ContainerID: "mini-id", IfName: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"fd00::8", "last_reserved_ip.0", BootIDName, "lock"}
	if d := cmp.Diff(want, minitest.DirNames(t, d.Dir)); d != "" {
		t.Errorf("files after host-local's GC (-want +got):\n%s", d)
	}
}

func TestReclaimAfterReboot(t *testing.T) {
	boot := time.Now().Add(-time.Hour)
	before, after := boot.Add(-time.Minute), boot.Add(time.Minute)
	tests := []struct {
		name      string
		recorded  string // the directory's boot ID file ("" = missing)
		current   string // the current boot ID ("" = unreadable)
		wantFiles []string
	}{
		{"same boot keeps everything", "boot-2", "boot-2",
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", BootIDName, "lock"}},
		{"new boot releases what predates it", "boot-1", "boot-2",
			[]string{"10.0.0.3", BootIDName, "lock"}},
		{"missing boot file releases only what predates the boot", "", "boot-2",
			[]string{"10.0.0.3", BootIDName, "lock"}},
		{"unknown boot releases nothing", "boot-1", "",
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", BootIDName, "lock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(t)
			lock(t, d).Close()
			write(t, filepath.Join(d.Dir, "10.0.0.2"), "old\r\neth0", before)
			write(t, filepath.Join(d.Dir, "10.0.0.3"), "new\r\neth0", after) // e.g. host-local after the reboot
			write(t, filepath.Join(d.Dir, "10.0.0.4"), "legacy", before)
			if err := os.Remove(filepath.Join(d.Dir, BootIDName)); err != nil {
				t.Fatal(err)
			}
			if tt.recorded != "" {
				write(t, filepath.Join(d.Dir, BootIDName), tt.recorded+"\n", time.Time{})
			}
			setBoot(t, d, tt.current, boot)
			if tt.current == "" {
				if err := os.Remove(d.BootIDPath); err != nil {
					t.Fatal(err)
				}
			}
			// STATUS's unlocked view agrees with what the lock will do.
			taken, err := d.Taken()
			if err != nil {
				t.Fatal(err)
			}
			var wantTaken []netip.Addr
			for _, f := range tt.wantFiles {
				if a, err := netip.ParseAddr(f); err == nil {
					wantTaken = append(wantTaken, a)
				}
			}
			if d := cmp.Diff(wantTaken, taken, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("Taken before the lock (-want +got):\n%s", d)
			}

			lock(t, d).Close()
			if d := cmp.Diff(tt.wantFiles, minitest.DirNames(t, d.Dir)); d != "" {
				t.Errorf("files (-want +got):\n%s", d)
			}
			rec, _ := os.ReadFile(filepath.Join(d.Dir, BootIDName))
			want := tt.current
			if want == "" {
				want = tt.recorded // the boot could not be told: nothing recorded
			}
			if strings.TrimSpace(string(rec)) != want {
				t.Errorf("recorded boot ID %q, want %q", rec, want)
			}
			// Once recorded, old files are no longer touched (no rescan).
			write(t, filepath.Join(d.Dir, "10.0.0.9"), "late\r\neth0", before)
			lock(t, d).Close()
			if tt.current != "" && !slices.Contains(minitest.DirNames(t, d.Dir), "10.0.0.9") {
				t.Error("a second command in the same boot released a reservation")
			}
		})
	}
}

func TestTakenSkipsEmpty(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d)
	if _, err := tx.Reserve(ip("10.0.0.2"), Owner{"a", "eth0"}); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	write(t, filepath.Join(d.Dir, "10.0.0.3"), "", time.Time{})
	got, err := d.Taken()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != ip("10.0.0.2") {
		t.Errorf("Taken = %v, want [10.0.0.2]", got)
	}
}

func TestReleaseIsIdempotent(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d)
	if _, err := tx.Reserve(ip("10.0.0.2"), Owner{"a", "eth0"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tx.Release(ip("10.0.0.2")); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if _, ok := tx.Get(ip("10.0.0.2")); ok {
		t.Error("released address still reserved")
	}
}

// TestList: every reservation with its owner and age, empty files and
// other names left out, those of an earlier boot marked; it does not wait
// for the lock, and a missing directory holds nothing.
func TestList(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d) // records boot-1; held during List
	if _, err := tx.Reserve(ip("10.0.0.2"), Owner{"a", "eth0"}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	write(t, filepath.Join(d.Dir, "10.0.0.3"), "legacy-id", old)
	write(t, filepath.Join(d.Dir, "10.0.0.4"), "", time.Time{})
	write(t, filepath.Join(d.Dir, "not-an-ip"), "x", time.Time{})
	render := func() []string {
		got, err := d.List()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range got {
			out = append(out, fmt.Sprintf("%s %s %s legacy=%t earlier=%t", l.Addr, l.ContainerID, l.IfName, l.Legacy, l.EarlierBoot))
		}
		return out
	}
	want := []string{"10.0.0.2 a eth0 legacy=false earlier=false", "10.0.0.3 legacy-id  legacy=true earlier=false"}
	if diff := cmp.Diff(want, render()); diff != "" {
		t.Errorf("List in the recorded boot (-want +got):\n%s", diff)
	}
	// Rebooted a minute ago: 10.0.0.2, just made, is this boot's.
	setBoot(t, d, "boot-2", time.Now().Add(-time.Minute))
	want = []string{"10.0.0.2 a eth0 legacy=false earlier=false", "10.0.0.3 legacy-id  legacy=true earlier=true"}
	if diff := cmp.Diff(want, render()); diff != "" {
		t.Errorf("List after a reboot (-want +got):\n%s", diff)
	}
	if got, err := New(t.TempDir(), "none").List(); err != nil || got != nil {
		t.Errorf("List of a missing store = %v, %v", got, err)
	}
}

// TestReserveWays writes a reservation each way Reserve can: an O_TMPFILE
// file linked with AT_EMPTY_PATH, or through /proc when that is refused,
// and a named temp file when O_TMPFILE is refused (each errno a kernel or
// filesystem answers with), when linking the unnamed file is refused both
// ways, or with NoTmpfile. Each must leave exactly the reservation, whole,
// mode 0600, and no temp file; a refusal must be remembered, so the next
// Reserve goes straight to the named file.
func TestReserveWays(t *testing.T) {
	refused := func(e syscall.Errno) func(fd, dirfd int, name string) error {
		return func(int, int, string) error { return e }
	}
	for _, tc := range []struct {
		name      string
		noTmpfile bool
		openErr   syscall.Errno // what opening the unnamed file answers, 0: the real call
		links     []func(fd, dirfd int, name string) error
		wantOpens int  // unnamed opens over two Reserves
		refused   bool // the Disk stops trying O_TMPFILE
	}{
		{name: "O_TMPFILE, AT_EMPTY_PATH", wantOpens: 2},
		{name: "O_TMPFILE, AT_EMPTY_PATH refused (ENOENT), /proc link", links: []func(int, int, string) error{refused(syscall.ENOENT), linkUnnamed[1]}, wantOpens: 2},
		{name: "O_TMPFILE, AT_EMPTY_PATH refused (EPERM), /proc link", links: []func(int, int, string) error{refused(syscall.EPERM), linkUnnamed[1]}, wantOpens: 2},
		{name: "O_TMPFILE, both links refused", links: []func(int, int, string) error{refused(syscall.ENOENT), refused(syscall.ENOENT)}, wantOpens: 1, refused: true},
		{name: "O_TMPFILE refused: EOPNOTSUPP", openErr: syscall.EOPNOTSUPP, wantOpens: 1, refused: true},
		{name: "O_TMPFILE refused: EISDIR", openErr: syscall.EISDIR, wantOpens: 1, refused: true},
		{name: "O_TMPFILE refused: EINVAL", openErr: syscall.EINVAL, wantOpens: 1, refused: true},
		{name: "NoTmpfile", noTmpfile: true, wantOpens: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opens := 0
			realOpen := openUnnamed
			openUnnamed = func(dirfd int, dir string) (int, error) {
				opens++
				if tc.openErr != 0 {
					return -1, &fs.PathError{Op: "open", Path: dir, Err: tc.openErr}
				}
				return realOpen(dirfd, dir)
			}
			realLinks := linkUnnamed
			if tc.links != nil {
				linkUnnamed = tc.links
			}
			t.Cleanup(func() { openUnnamed, linkUnnamed = realOpen, realLinks })

			d := newDisk(t)
			d.NoTmpfile = tc.noTmpfile
			tx := lock(t, d)
			for _, a := range []netip.Addr{ip("10.0.0.2"), ip("fd00::2")} {
				if ok, err := tx.Reserve(a, Owner{ContainerID: "c1", IfName: "eth0"}); err != nil || !ok {
					t.Fatalf("Reserve(%s) = %v, %v", a, ok, err)
				}
			}
			if opens != tc.wantOpens {
				t.Errorf("%d unnamed opens, want %d", opens, tc.wantOpens)
			}
			if got := d.tmpfileRefused.Load(); got != tc.refused {
				t.Errorf("O_TMPFILE refused = %v, want %v", got, tc.refused)
			}
			want := []string{"10.0.0.2", "fd00::2", BootIDName, "lock"}
			if diff := cmp.Diff(want, minitest.DirNames(t, d.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			for _, name := range []string{"10.0.0.2", "fd00::2"} {
				p := filepath.Join(d.Dir, name)
				if data, err := os.ReadFile(p); err != nil || string(data) != "c1\r\neth0" {
					t.Errorf("%s holds %q (%v), want %q", name, data, err, "c1\r\neth0")
				}
				if fi, err := os.Stat(p); err != nil || fi.Mode() != 0o600 {
					t.Errorf("%s: mode %v (%v), want 0600", name, fi.Mode(), err)
				}
			}
			// The taken address is refused on disk too, not only from
			// what load read: a second Tx that does not know it.
			tx2 := &Tx{d: d, lock: -1, dir: tx.dir, res: map[netip.Addr]Reservation{}}
			if ok, err := tx2.Reserve(ip("10.0.0.2"), Owner{ContainerID: "c2", IfName: "eth0"}); ok || err != nil {
				t.Errorf("Reserve of a name that exists = %v, %v; want false, nil", ok, err)
			}
			if r, _ := tx2.Get(ip("10.0.0.2")); !r.Is(Owner{ContainerID: "c1", IfName: "eth0"}) {
				t.Errorf("after EEXIST the Tx holds %+v, want c1's reservation", r)
			}
			if diff := cmp.Diff(want, minitest.DirNames(t, d.Dir)); diff != "" {
				t.Errorf("files after EEXIST (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReserveReadOnly: on a read-only store both ways fail with CodeStore
// naming the cause, and leave nothing.
func TestReserveReadOnly(t *testing.T) {
	for _, noTmpfile := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoTmpfile=%v", noTmpfile), func(t *testing.T) {
			d := newDisk(t)
			d.NoTmpfile = noTmpfile
			lock(t, d).Close()
			minitest.ReadOnly(t, d.Dir)
			tx := lock(t, d)
			ok, err := tx.Reserve(ip("10.0.0.2"), Owner{ContainerID: "c1", IfName: "eth0"})
			var e *types.Error
			if ok || !errors.As(err, &e) || e.Code != libmini.CodeStore ||
				e.Msg != "cannot create a temp file in "+d.Dir+": read-only file system" {
				t.Fatalf("Reserve on a read-only store = %v, %v", ok, err)
			}
			want := []string{BootIDName, "lock"}
			if diff := cmp.Diff(want, minitest.DirNames(t, d.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCursorRewrite: the cursor is cut only when the new address is
// shorter than what LastReserved read, and always ends exactly the new
// address, whether it was read first or not.
func TestCursorRewrite(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d)
	cursor := filepath.Join(d.Dir, "last_reserved_ip.0")
	for _, step := range []struct {
		read bool
		addr string
	}{
		{false, "10.0.0.100"}, {true, "10.0.0.9"}, {true, "10.0.0.10"}, {false, "10.0.0.2"},
		{true, "fd00::1234"}, {false, "10.0.0.99"}, {true, "10.0.0.5"},
	} {
		if step.read {
			tx.LastReserved(0)
		}
		if err := tx.SetLastReserved(0, ip(step.addr)); err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(cursor); err != nil || string(data) != step.addr {
			t.Fatalf("cursor after writing %s (read first: %v) is %q (%v)", step.addr, step.read, data, err)
		}
	}
	// A longer file than LastReserved's buffer (not one miniipam wrote)
	// is cut too.
	write(t, cursor, strings.Repeat("x", 5000), time.Time{})
	tx.LastReserved(0)
	if err := tx.SetLastReserved(0, ip("10.0.0.7")); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(cursor); err != nil || string(data) != "10.0.0.7" {
		t.Fatalf("cursor is %q (%v), want 10.0.0.7", data, err)
	}
}

// TestLockKeepsAtimes: a locked command reads the directory and every
// reservation without updating their access times (O_NOATIME), each of
// which would be a journaled inode write. The atimes are set before the
// mtimes, so that a read on a relatime mount would update them.
func TestLockKeepsAtimes(t *testing.T) {
	d := newDisk(t)
	tx := lock(t, d)
	if ok, err := tx.Reserve(ip("10.0.0.2"), Owner{ContainerID: "c1", IfName: "eth0"}); err != nil || !ok {
		t.Fatalf("Reserve = %v, %v", ok, err)
	}
	if err := tx.SetLastReserved(0, ip("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	atime := time.Now().Add(-time.Hour).Truncate(time.Second)
	names := []string{"", "10.0.0.2", "last_reserved_ip.0", BootIDName}
	for _, name := range names {
		if err := os.Chtimes(filepath.Join(d.Dir, name), atime, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tx = lock(t, d)
	if r, ok := tx.Get(ip("10.0.0.2")); !ok || !r.Is(Owner{ContainerID: "c1", IfName: "eth0"}) {
		t.Fatalf("Get = %+v, %v", r, ok)
	}
	if got := tx.LastReserved(0); got != ip("10.0.0.2") {
		t.Fatalf("LastReserved = %s", got)
	}
	tx.Close()
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(d.Dir, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
			t.Errorf("%q: atime %s after a locked command, want %s unchanged", name, got, atime)
		}
	}
}

// noatimeChildEnv makes the test binary, run again as another user by
// TestNoatimeRefused, read the file it names with readSmall and print what
// it read and whether O_NOATIME was refused.
const noatimeChildEnv = "MINIIPAM_TEST_NOATIME_READ"

func init() {
	path := os.Getenv(noatimeChildEnv)
	if path == "" {
		return
	}
	var buf [64]byte
	data, err := readSmall(atFDCWD, "", path, buf[:])
	fmt.Printf("%q %v %v\n", data, err, noatimeRefused.Load())
	os.Exit(0)
}

// TestNoatimeRefused: a reader that is neither root nor the file's owner
// gets EPERM for O_NOATIME; readSmall then reads without it, and the next
// opens skip it.
func TestNoatimeRefused(t *testing.T) {
	minitest.RequireRoot(t)
	dir, err := os.MkdirTemp("", "noatime")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	file := filepath.Join(dir, "10.0.0.2")
	write(t, file, "c1\r\neth0", time.Time{})
	for _, p := range []string{dir, file} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own directory is not open to other users: a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "store.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^$")
	cmd.Env = append(os.Environ(), noatimeChildEnv+"="+file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), `"c1\r\neth0" <nil> true`; got != want {
		t.Errorf("as uid 65534: %s, want %s", got, want)
	}
}
