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
// ".tmp-<pid>-<n>" files, which exist only while their writer holds the lock:
// a reservation is written to an unnamed O_TMPFILE file and linked to its
// name, and goes through such a named temp file only where the filesystem
// refuses that; the boot ID is replaced through one.
//
// A Tx is one locked command: Disk.Lock takes the lock, clears debris of
// crashed writers and releases reservations left over from before a reboot;
// Tx.Close releases it.
package store

import (
	"bytes"
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/internal/crashpoint"
	"github.com/minicni/minicni/internal/sysfile"
	"github.com/minicni/minicni/libmini"
	"golang.org/x/sys/unix"
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
	// NoTmpfile makes Reserve write through a named temp file, as it does
	// where the filesystem refuses O_TMPFILE (tests).
	NoTmpfile bool

	tmpfileRefused atomic.Bool // O_TMPFILE failed here once: stop trying
}

// New returns the store of network under dataDir. The network name must have
// been validated (libmini.ValidateNetworkName) before it becomes a path.
func New(dataDir, network string) *Disk {
	return &Disk{Dir: filepath.Join(dataDir, network), NoTmpfile: crashpoint.NoTmpfile()}
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
	s := string(bytes.TrimSpace(data))
	if id, ifname, ok := strings.Cut(s, LineBreak); ok {
		return Reservation{Addr: a, ContainerID: id, IfName: ifname}
	}
	return Reservation{Addr: a, ContainerID: s, Legacy: true}
}

// addrName returns the address a reservation file name stands for; only the
// canonical form counts, which is the only one host-local writes.
func addrName(name string) (netip.Addr, bool) {
	if len(name) == 0 || len(name) > len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(name)
	var canon [64]byte
	if err != nil || a.Zone() != "" || string(a.AppendTo(canon[:0])) != name {
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
	lock int // the lock file's descriptor, which holds the flock; -1 once closed
	dir  int // the directory's descriptor: every name below is resolved from it
	res  map[netip.Addr]Reservation
	// cursor is the length of last_reserved_ip.<cursorSet> as LastReserved
	// read it (cursorKnown), so that SetLastReserved cuts the file only when
	// the new address is shorter.
	cursorSet, cursorLen int
	cursorKnown          bool
	buf                  [1024]byte // scratch for the small reads
}

// Lock takes the network's lock, waiting at most LockTimeout or until ctx
// ends (CNI error 11 then). With create it creates the directory (0700)
// when it is missing; without, a missing directory is ErrNoStore. Under the
// lock it removes the debris of crashed writers (temp files, empty
// reservations), releases the reservations of a previous boot, and reads
// every reservation once.
func (d *Disk) Lock(ctx context.Context, create bool) (_ *Tx, retErr error) {
	dir, err := openRead(atFDCWD, "", d.Dir, unix.O_DIRECTORY)
	if e := errno(err); create && (e == syscall.ENOENT || e == syscall.ENOTDIR) {
		// MkdirAll only now: it costs a stat of the directory on every
		// command otherwise, and its error names what is in the way.
		if err := os.MkdirAll(d.Dir, 0o700); err != nil {
			return nil, storeError("cannot create the store directory "+d.Dir, err)
		}
		dir, err = openRead(atFDCWD, "", d.Dir, unix.O_DIRECTORY)
	}
	if errno(err) == syscall.ENOENT {
		return nil, ErrNoStore
	}
	if err != nil {
		return nil, storeError("cannot open the store directory "+d.Dir, err)
	}
	lockPath := filepath.Join(d.Dir, LockName)
	lock, err := sysfile.OpenAt(dir, d.Dir, LockName, unix.O_RDONLY|unix.O_CREAT, 0o600)
	if err != nil {
		_ = unix.Close(dir)
		return nil, storeError("cannot open the lock of "+d.Dir, err)
	}
	if err := d.flock(ctx, lock, lockPath); err != nil {
		_ = unix.Close(dir)
		return nil, err // flock disposed of lock
	}
	t := &Tx{d: d, lock: lock, dir: dir}
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

// flock takes an exclusive flock on fd, the lock file at path. A blocking
// flock cannot be interrupted, so it runs in a goroutine; when the deadline
// comes first that goroutine keeps fd and closes it (dropping the lock) once
// flock returns. On error fd is closed.
func (d *Disk) flock(ctx context.Context, fd int, path string) error {
	err := flockRetry(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		_ = unix.Close(fd)
		return storeError("cannot lock "+path, &fs.PathError{Op: "flock", Path: path, Err: err})
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
			_ = unix.Close(fd)
			return storeError("cannot lock "+path, &fs.PathError{Op: "flock", Path: path, Err: err})
		}
		return nil
	case <-ctx.Done():
		go func() {
			// Nobody waits for the answer any more: whether the lock
			// came late or failed, closing the file releases it.
			_ = errors.Join(<-done, unix.Close(fd))
		}()
		return libmini.Errorf(libmini.CodeTryAgainLater, "the lock %s is still held by another command after %s (ipam.lockTimeout); try again later",
			path, timeout)
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
	if t.lock < 0 {
		return nil
	}
	_ = unix.Close(t.dir)
	err := unix.Close(t.lock) // closing the only descriptor drops the flock
	t.lock, t.dir = -1, -1
	return err
}

// path is name's path, for messages.
func (t *Tx) path(name string) string {
	return filepath.Join(t.d.Dir, name)
}

// load reads every reservation, removing temp files and empty reservations:
// under the lock both can only be left by a writer that died (miniipam's
// named temp files before their link, host-local's O_EXCL file before its
// write). The directory is read with getdents64 into one buffer, each
// reservation with openat, read and close.
func (t *Tx) load() error {
	t.res = nil
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.Getdents(t.dir, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return storeError("cannot list "+t.d.Dir, &fs.PathError{Op: "readdirent", Path: t.d.Dir, Err: err})
		}
		if t.res == nil {
			// Sized for the first batch (a reservation's entry takes
			// 32 bytes), so that the map does not grow while it fills.
			t.res = make(map[netip.Addr]Reservation, n/32)
		}
		if n <= 0 {
			return nil
		}
		if err := parseDirents(buf[:n], t.loadEntry); err != nil {
			return storeError("cannot list "+t.d.Dir, err)
		}
	}
}

// direntBufs are load's getdents64 buffers.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 8192); return &b }}

func (t *Tx) loadEntry(e dirent) error {
	if bytes.HasPrefix(e.name, []byte(TempPrefix)) {
		t.removeDebris(string(e.name), "temp file of an interrupted write")
		return nil
	}
	name := string(e.name)
	a, ok := addrName(name)
	if !ok {
		return nil
	}
	switch e.typ {
	case unix.DT_REG:
	case unix.DT_UNKNOWN: // a filesystem that does not fill d_type
		var st unix.Stat_t
		if err := unix.Fstatat(t.dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil
		}
	default:
		return nil
	}
	data, err := readSmall(t.dir, t.d.Dir, name, t.buf[:])
	if errno(err) == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return storeError("cannot read reservation "+name, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		t.removeDebris(name, "empty reservation of an interrupted write")
		return nil
	}
	t.res[a] = parseReservation(a, data)
	return nil
}

func (t *Tx) removeDebris(name, why string) {
	if err := unix.Unlinkat(t.dir, name, 0); err != nil && !errors.Is(err, syscall.ENOENT) {
		t.d.log().Warn("cannot remove debris", "file", t.path(name), "err", err)
		return
	}
	t.d.log().Info("removed debris", "file", name, "why", why)
}

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
// is written to a file without a name (O_TMPFILE) that is then linked to
// a's name, so that a process killed at any instant leaves either nothing
// (the kernel frees an unlinked file when its last descriptor closes) or
// the whole reservation. An existing name (EEXIST) means a is taken and
// Reserve returns false. Where the filesystem refuses O_TMPFILE, where
// the unnamed file cannot be linked either way (see linkUnnamed), and with
// NoTmpfile, the file is a named temp file
// (".tmp-<pid>-<n>") linked and then removed; a kill between its creation
// and its removal leaves that temp file, which the next locked command
// removes. Neither the file nor the directory is fsynced: only a power
// loss or kernel crash could lose what was written, and either is a
// reboot, after which every reservation made before it is released anyway
// (see reclaimAfterReboot). Skipping the fsync saves 2-3 ms per ADD on a
// disk filesystem.
func (t *Tx) Reserve(a netip.Addr, o Owner) (bool, error) {
	if _, taken := t.res[a]; taken {
		return false, nil
	}
	name := a.String()
	content := o.content()
	var err error
	linked, fellBack := false, true
	if !t.d.NoTmpfile && !t.d.tmpfileRefused.Load() {
		linked, fellBack, err = t.reserveUnnamed(name, content)
	}
	if fellBack {
		linked, err = t.reserveNamed(name, content)
	}
	if err != nil {
		return false, err
	}
	if !linked {
		// Only a writer ignoring the lock gets here; remember what it holds.
		if data, err := readSmall(t.dir, t.d.Dir, name, t.buf[:]); err == nil {
			t.res[a] = parseReservation(a, data)
		} else {
			t.res[a] = Reservation{Addr: a, Legacy: true}
		}
		return false, nil
	}
	t.res[a] = Reservation{Addr: a, ContainerID: strings.TrimSpace(o.ContainerID), IfName: o.IfName}
	return true, nil
}

// reserveUnnamed writes content to an O_TMPFILE file in the directory and
// links it as name; linked is false when name exists. fellBack reports that
// the filesystem or the system refused the unnamed file (nothing was
// created; later calls on this Disk skip it).
func (t *Tx) reserveUnnamed(name, content string) (linked, fellBack bool, _ error) {
	fd, err := openUnnamed(t.dir, t.d.Dir)
	if err != nil {
		switch errno(err) {
		case syscall.EOPNOTSUPP, syscall.EISDIR, syscall.EINVAL:
			t.d.refuseTmpfile(err)
			return false, true, nil
		}
		return false, false, storeError("cannot create a temp file in "+t.d.Dir, err)
	}
	defer unix.Close(fd)
	crashpoint.Hit(crashpoint.TempCreated)
	if err := sysfile.WriteAt(fd, t.d.Dir+" (O_TMPFILE for "+name+")", []byte(content), 0); err != nil {
		return false, false, storeError("cannot write reservation "+name, err)
	}
	crashpoint.Hit(crashpoint.TempWritten)
	for _, link := range linkUnnamed {
		// ENOENT or EPERM: this way is refused, try the next.
		if err = link(fd, t.dir, name); errno(err) != syscall.ENOENT && errno(err) != syscall.EPERM {
			break
		}
	}
	if e := errno(err); e == syscall.ENOENT || e == syscall.EPERM {
		t.d.refuseTmpfile(err)
		return false, true, nil
	}
	if errors.Is(err, syscall.EEXIST) {
		return false, false, nil
	}
	if err != nil {
		return false, false, storeError("cannot link reservation "+name, &fs.PathError{Op: "link", Path: t.path(name), Err: err})
	}
	crashpoint.Hit(crashpoint.Linked)
	return true, false, nil
}

// openUnnamed opens an unnamed file in the directory dirfd (at dir).
var openUnnamed = func(dirfd int, dir string) (int, error) {
	return sysfile.OpenAt(dirfd, dir, ".", unix.O_TMPFILE|unix.O_WRONLY, 0o600)
}

// linkUnnamed are the ways to give the unnamed file fd a name in dirfd,
// tried in order while they fail with ENOENT or EPERM: AT_EMPTY_PATH, which
// the kernel may allow only with CAP_DAC_READ_SEARCH (ENOENT otherwise),
// then the descriptor's /proc link, which needs /proc mounted.
var linkUnnamed = []func(fd, dirfd int, name string) error{
	func(fd, dirfd int, name string) error {
		return unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH)
	},
	func(fd, dirfd int, name string) error {
		return unix.Linkat(atFDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	},
}

// refuseTmpfile makes this Disk write reservations through named temp
// files from now on.
func (d *Disk) refuseTmpfile(err error) {
	if !d.tmpfileRefused.Swap(true) {
		d.log().Info("O_TMPFILE refused; reservations go through named temp files", "dir", d.Dir, "err", err)
	}
}

// reserveNamed writes content to a named temp file, links it as name and
// removes the temp name; linked is false when name exists.
func (t *Tx) reserveNamed(name, content string) (linked bool, _ error) {
	f, err := os.CreateTemp(t.d.Dir, TempPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return false, storeError("cannot create a temp file in "+t.d.Dir, err)
	}
	tmp := f.Name()
	defer func() {
		if !linked {
			_ = os.Remove(tmp)
		}
	}()
	crashpoint.Hit(crashpoint.TempCreated)
	_, err = f.WriteString(content)
	crashpoint.Hit(crashpoint.TempWritten)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, storeError("cannot write reservation "+name, err)
	}
	crashpoint.Hit(crashpoint.TempClosed)
	if err := os.Link(tmp, t.path(name)); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, storeError("cannot link reservation "+name, err)
	}
	linked = true
	crashpoint.Hit(crashpoint.Linked)
	if err := os.Remove(tmp); err != nil {
		t.d.log().Warn("cannot remove temp file", "file", tmp, "err", err)
	}
	crashpoint.Hit(crashpoint.TempRemoved)
	return true, nil
}

// Release removes a's reservation; one already gone is success.
func (t *Tx) Release(a netip.Addr) error {
	delete(t.res, a)
	name := a.String()
	err := unix.Unlinkat(t.dir, name, 0)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return storeError("cannot release "+name, &fs.PathError{Op: "remove", Path: t.path(name), Err: err})
	}
	return nil
}

// LastReserved returns the round-robin cursor of range set i (invalid when
// there is none or it is unreadable: round-robin then restarts at the set's
// first address, as in host-local).
func (t *Tx) LastReserved(i int) netip.Addr {
	data, err := readSmall(t.dir, t.d.Dir, LastReservedPrefix+strconv.Itoa(i), t.buf[:])
	t.cursorSet, t.cursorLen, t.cursorKnown = i, len(data), (err == nil && len(data) < len(t.buf)) || errno(err) == syscall.ENOENT
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(string(bytes.TrimSpace(data)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// SetLastReserved records a as the cursor of range set i. The file is
// written in place, then cut to its new length when it may have been
// longer (not when LastReserved just read it no longer than the new
// address), not replaced: replacing (or truncating to zero) frees its
// block, and on a filesystem mounted with discard, as this development
// machine's root, every freed block is a synchronous discard, 2-5 ms per
// ADD in kernel traces. A crash part-way leaves a cursor that does not
// parse or names another address; either only moves where round-robin
// resumes (LastReserved, newIter), as host-local's own truncate-and-write
// does.
func (t *Tx) SetLastReserved(i int, a netip.Addr) error {
	name := LastReservedPrefix + strconv.Itoa(i)
	fd, err := sysfile.OpenAt(t.dir, t.d.Dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return storeError("cannot open "+name, err)
	}
	data := a.AppendTo(t.buf[:0])
	err = sysfile.WriteAt(fd, t.path(name), data, 0)
	fits := t.cursorKnown && t.cursorSet == i && t.cursorLen <= len(data) // nothing left after data
	if err == nil && !fits {
		if err = unix.Ftruncate(fd, int64(len(data))); err != nil {
			err = &fs.PathError{Op: "truncate", Path: t.path(name), Err: err}
		}
	}
	t.cursorKnown = false
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &fs.PathError{Op: "close", Path: t.path(name), Err: cerr}
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
	b, err := d.boot(atFDCWD, filepath.Join(d.Dir, BootIDName))
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
