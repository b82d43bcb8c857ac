// Package store is miniipam's on-disk reservation store. It uses exactly the
// reference host-local plugin's layout and lock, so the two IPAMs can replace
// each other on a live node without ever handing out an address twice:
//
//	<dataDir>/<network>/lock                  flock(LOCK_EX) serializes every command
//	<dataDir>/<network>/<ip>                  one reservation: containerID "\r\n" ifname
//	<dataDir>/<network>/last_reserved_ip.<i>  round-robin cursor of range set i
//
// miniipam adds last_reserved_ip.boot_id (the boot the reservations belong
// to; the name keeps host-local's GC from deleting it) and transient
// ".tmp-<pid>-<n>" files, which exist only while their writer holds the lock.
//
// A Tx is one locked command: Disk.Lock takes the lock, clears debris of
// crashed writers and releases reservations left over from before a reboot;
// Tx.Close releases it.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/internal/crashpoint"
	"github.com/minicni/minicni/libmini"
)

// File names in a network's directory.
const (
	LockName           = "lock"
	LastReservedPrefix = "last_reserved_ip."
	BootIDName         = LastReservedPrefix + "boot_id"
	TempPrefix         = ".tmp-"
	// LineBreak separates the container ID from the ifname in a reservation.
	LineBreak = "\r\n"
)

// DefaultLockTimeout bounds the wait for a network's lock. It is below
// libmini.IPAMTimeout so that a caller delegating to miniipam gets miniipam's
// "try again later" rather than its own deadline.
const DefaultLockTimeout = 30 * time.Second

// ErrNoStore is returned by Lock without create when the network's directory
// does not exist: nothing was ever reserved there.
var ErrNoStore = errors.New("no store for this network")

// Disk is one network's directory. The zero values of the fields other than
// Dir mean the defaults; tests point BootIDPath and StatPath elsewhere to
// simulate a reboot.
type Disk struct {
	Dir         string
	BootIDPath  string        // default /proc/sys/kernel/random/boot_id
	StatPath    string        // default /proc/stat (its btime line)
	LockTimeout time.Duration // default DefaultLockTimeout
	Log         *slog.Logger  // default: discard
}

// New returns the store of network under dataDir. The network name must have
// been validated (libmini.ValidateNetworkName) before it becomes a path.
func New(dataDir, network string) *Disk {
	return &Disk{Dir: filepath.Join(dataDir, network)}
}

func (d *Disk) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// Owner is the attachment a reservation belongs to.
type Owner struct {
	ContainerID string
	IfName      string
}

func (o Owner) content() string {
	return strings.TrimSpace(o.ContainerID) + LineBreak + o.IfName
}

// Reservation is one reserved address and what its file says.
type Reservation struct {
	Addr        netip.Addr
	ContainerID string
	IfName      string
	// Legacy marks a file holding only a container ID, as host-local wrote
	// before it recorded the ifname: it belongs to every ifname of that
	// container.
	Legacy bool
}

// Is reports whether r belongs to o exactly (container ID and ifname).
func (r Reservation) Is(o Owner) bool {
	return !r.Legacy && r.ContainerID == strings.TrimSpace(o.ContainerID) && r.IfName == o.IfName
}

// IsLegacyOf reports whether r is a legacy reservation of o's container.
func (r Reservation) IsLegacyOf(o Owner) bool {
	return r.Legacy && r.ContainerID == strings.TrimSpace(o.ContainerID)
}

func parseReservation(a netip.Addr, data []byte) Reservation {
	s := strings.TrimSpace(string(data))
	if id, ifname, ok := strings.Cut(s, LineBreak); ok {
		return Reservation{Addr: a, ContainerID: id, IfName: ifname}
	}
	return Reservation{Addr: a, ContainerID: s, Legacy: true}
}

// addrName returns the address a reservation file name stands for; only the
// canonical form counts, which is the only one host-local writes.
func addrName(name string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(name)
	if err != nil || a.Zone() != "" || a.String() != name {
		return netip.Addr{}, false
	}
	return a, true
}

// storeError is CodeStore with msg followed by the system's word for the
// cause ("no space left on device", "read-only file system"), when there
// is one, so that msg alone says what is wrong; details carry the whole
// error with the path.
func storeError(msg string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg += ": " + errno.Error()
	}
	return types.NewError(libmini.CodeStore, msg, err.Error())
}

// Tx is a network's directory while its lock is held. It is not safe for
// concurrent use.
type Tx struct {
	d    *Disk
	lock *os.File
	res  map[netip.Addr]Reservation
}

// Lock takes the network's lock, waiting at most LockTimeout or until ctx
// ends (CNI error 11 then). With create it creates the directory (0700);
// without, a missing directory is ErrNoStore. Under the lock it removes the
// debris of crashed writers (temp files, empty reservations), releases the
// reservations of a previous boot, and reads every reservation once.
func (d *Disk) Lock(ctx context.Context, create bool) (_ *Tx, retErr error) {
	if create {
		if err := os.MkdirAll(d.Dir, 0o700); err != nil {
			return nil, storeError("cannot create the store directory "+d.Dir, err)
		}
	} else if _, err := os.Stat(d.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoStore
	} else if err != nil {
		return nil, storeError("cannot open the store directory "+d.Dir, err)
	}
	f, err := os.OpenFile(filepath.Join(d.Dir, LockName), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, storeError("cannot open the lock of "+d.Dir, err)
	}
	if err := d.flock(ctx, f); err != nil {
		return nil, err // flock disposed of f
	}
	t := &Tx{d: d, lock: f}
	defer func() {
		if retErr != nil {
			_ = t.Close()
		}
	}()
	crashpoint.Hit(crashpoint.Locked)
	if err := t.load(); err != nil {
		return nil, err
	}
	t.reclaimAfterReboot()
	return t, nil
}

// flock takes an exclusive flock on f. A blocking flock cannot be
// interrupted, so it runs in a goroutine; when the deadline comes first that
// goroutine keeps f and closes it (dropping the lock) once flock returns.
func (d *Disk) flock(ctx context.Context, f *os.File) error {
	fd := int(f.Fd())
	err := flockRetry(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		_ = f.Close()
		return storeError("cannot lock "+f.Name(), err)
	}
	timeout := d.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- flockRetry(fd, syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			_ = f.Close()
			return storeError("cannot lock "+f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			// Nobody waits for the answer any more: whether the lock
			// came late or failed, closing the file releases it.
			_ = errors.Join(<-done, f.Close())
		}()
		return libmini.Errorf(libmini.CodeTryAgainLater, "the lock %s is still held by another command after %s (ipam.lockTimeout); try again later",
			f.Name(), timeout)
	}
}

func flockRetry(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Close releases the lock.
func (t *Tx) Close() error {
	if t.lock == nil {
		return nil
	}
	err := t.lock.Close() // closing the only descriptor drops the flock
	t.lock = nil
	return err
}

// load reads every reservation, removing temp files and empty reservations:
// under the lock both can only be left by a writer that died (miniipam's
// temp files before their link, host-local's O_EXCL file before its write).
func (t *Tx) load() error {
	dir, err := os.Open(t.d.Dir)
	if err != nil {
		return storeError("cannot list "+t.d.Dir, err)
	}
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return storeError("cannot list "+t.d.Dir, err)
	}
	dirfd := int(dir.Fd())
	t.res = make(map[netip.Addr]Reservation, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, TempPrefix) {
			t.removeDebris(name, "temp file of an interrupted write")
			continue
		}
		a, ok := addrName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		data, err := readSmall(dirfd, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return storeError("cannot read reservation "+name, err)
		}
		if len(strings.TrimSpace(string(data))) == 0 {
			t.removeDebris(name, "empty reservation of an interrupted write")
			continue
		}
		t.res[a] = parseReservation(a, data)
	}
	return nil
}

func (t *Tx) removeDebris(name, why string) {
	if err := os.Remove(filepath.Join(t.d.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.d.log().Warn("cannot remove debris", "file", name, "err", err)
		return
	}
	t.d.log().Info("removed debris", "file", name, "why", why)
}

// readSmall reads the reservation name in the directory dirfd with three
// syscalls (openat, read, close), which is what a command costs per
// reservation. A reservation is far below the buffer size; anything longer
// is not one miniipam or host-local wrote, and its head is enough to keep it
// reserved.
func readSmall(dirfd int, name string) ([]byte, error) {
	fd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 1024)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		return buf[:n], nil
	}
}

// atFDCWD makes readSmall resolve name from the working directory.
const atFDCWD = -100

// Get returns the reservation of a, if any.
func (t *Tx) Get(a netip.Addr) (Reservation, bool) {
	r, ok := t.res[a]
	return r, ok
}

// All returns every reservation, ordered by address.
func (t *Tx) All() []Reservation {
	out := make([]Reservation, 0, len(t.res))
	for _, r := range t.res {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Reservation) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Addrs yields every reserved address, in no particular order.
func (t *Tx) Addrs() iter.Seq[netip.Addr] {
	return maps.Keys(t.res)
}

// Owned returns o's reservations, ordered by address: those naming o
// exactly, or, when there are none, the legacy ones of o's container (as
// host-local matches them).
func (t *Tx) Owned(o Owner) []Reservation {
	var exact, legacy []Reservation
	for _, r := range t.res {
		switch {
		case r.Is(o):
			exact = append(exact, r)
		case r.IsLegacyOf(o):
			legacy = append(legacy, r)
		}
	}
	if len(exact) == 0 {
		exact = legacy
	}
	slices.SortFunc(exact, func(a, b Reservation) int { return a.Addr.Compare(b.Addr) })
	return exact
}

// Reserve makes a's reservation for o appear whole or not at all: the owner
// is written to a temp file and linked to a's name; an existing name (EEXIST)
// means a is taken and Reserve returns false. A process killed at any instant
// leaves the page cache, hence the file, whole. Neither the file nor the
// directory is fsynced: only a power loss or kernel crash could lose what was
// written, and either is a reboot, after which every reservation made before
// it is released anyway (see reclaimAfterReboot). Skipping the fsync saves
// 2-3 ms per ADD on a disk filesystem.
func (t *Tx) Reserve(a netip.Addr, o Owner) (bool, error) {
	if _, taken := t.res[a]; taken {
		return false, nil
	}
	f, err := os.CreateTemp(t.d.Dir, fmt.Sprintf("%s%d-*", TempPrefix, os.Getpid()))
	if err != nil {
		return false, storeError("cannot create a temp file in "+t.d.Dir, err)
	}
	tmp := f.Name()
	linked := false
	defer func() {
		if !linked {
			_ = os.Remove(tmp)
		}
	}()
	crashpoint.Hit(crashpoint.TempCreated)
	_, err = f.WriteString(o.content())
	crashpoint.Hit(crashpoint.TempWritten)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, storeError("cannot write reservation "+a.String(), err)
	}
	crashpoint.Hit(crashpoint.TempClosed)
	final := filepath.Join(t.d.Dir, a.String())
	if err := os.Link(tmp, final); errors.Is(err, fs.ErrExist) {
		// Only a writer ignoring the lock gets here; remember what it holds.
		if data, err := readSmall(atFDCWD, final); err == nil {
			t.res[a] = parseReservation(a, data)
		} else {
			t.res[a] = Reservation{Addr: a, Legacy: true}
		}
		return false, nil
	} else if err != nil {
		return false, storeError("cannot link reservation "+a.String(), err)
	}
	linked = true
	crashpoint.Hit(crashpoint.Linked)
	if err := os.Remove(tmp); err != nil {
		t.d.log().Warn("cannot remove temp file", "file", tmp, "err", err)
	}
	crashpoint.Hit(crashpoint.TempRemoved)
	t.res[a] = Reservation{Addr: a, ContainerID: strings.TrimSpace(o.ContainerID), IfName: o.IfName}
	return true, nil
}

// Release removes a's reservation; one already gone is success.
func (t *Tx) Release(a netip.Addr) error {
	delete(t.res, a)
	err := os.Remove(filepath.Join(t.d.Dir, a.String()))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return storeError("cannot release "+a.String(), err)
	}
	return nil
}

// LastReserved returns the round-robin cursor of range set i (invalid when
// there is none or it is unreadable: round-robin then restarts at the set's
// first address, as in host-local).
func (t *Tx) LastReserved(i int) netip.Addr {
	data, err := os.ReadFile(filepath.Join(t.d.Dir, LastReservedPrefix+strconv.Itoa(i)))
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(data)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// SetLastReserved records a as the cursor of range set i. The file is
// written in place, then cut to its new length, not replaced: replacing
// (or truncating to zero) frees its block, and on a filesystem mounted with
// discard, as this development machine's root, every freed block is a
// synchronous discard, 2-5 ms per ADD in kernel traces. A crash part-way
// leaves a cursor that does not parse or names another address; either only
// moves where round-robin resumes (LastReserved, newIter), as host-local's
// own truncate-and-write does.
func (t *Tx) SetLastReserved(i int, a netip.Addr) error {
	name := LastReservedPrefix + strconv.Itoa(i)
	f, err := os.OpenFile(filepath.Join(t.d.Dir, name), os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return storeError("cannot open "+name, err)
	}
	data := a.String()
	_, err = f.WriteAt([]byte(data), 0)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storeError("cannot write "+name, err)
	}
	crashpoint.Hit(crashpoint.LastWritten)
	return nil
}

// writeAtomic replaces name with data through a temp file and rename. It
// does not fsync: neither the cursor nor the boot ID needs to survive a
// power loss (a lost cursor restarts round-robin, a lost boot ID is treated
// as a reboot, which releases only reservations older than this boot).
func (t *Tx) writeAtomic(name, data, tempPoint, donePoint string) error {
	f, err := os.CreateTemp(t.d.Dir, fmt.Sprintf("%s%d-*", TempPrefix, os.Getpid()))
	if err != nil {
		return storeError("cannot create a temp file in "+t.d.Dir, err)
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	crashpoint.Hit(tempPoint)
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(t.d.Dir, name))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return storeError("cannot write "+name, err)
	}
	crashpoint.Hit(donePoint)
	return nil
}

// Taken lists the addresses held without taking the lock, for STATUS: it may
// be a moment out of date. Empty files and, when the directory belongs to a
// previous boot, reservations older than this boot count as free, as the
// next locked command will remove them. A missing directory holds nothing.
func (d *Disk) Taken() ([]netip.Addr, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError("cannot list "+d.Dir, err)
	}
	b, err := d.boot()
	if err != nil {
		b = boot{recorded: true} // cannot tell: count everything
	}
	var out []netip.Addr
	for _, e := range entries {
		a, ok := addrName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() == 0 || (!b.recorded && !b.start.IsZero() && fi.ModTime().Before(b.start)) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}
