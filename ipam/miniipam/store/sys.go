package store

// Thin wrappers over the system calls a locked command makes, on raw
// descriptors (internal/sysfile) relative to the store's directory: a path
// relative to an open directory is resolved from there, not from the root.

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"sync/atomic"
	"syscall"

	"github.com/minicni/minicni/internal/sysfile"
	"golang.org/x/sys/unix"
)

// atFDCWD makes the *at calls resolve a name from the working directory
// (an absolute name: as is).
const atFDCWD = unix.AT_FDCWD

// noatimeRefused is set once an O_NOATIME open failed with EPERM (a caller
// neither root nor the files' owner): later opens go without it.
var noatimeRefused atomic.Bool

// openRead opens name (relative to dirfd; dir is dirfd's path, for the
// error) for reading with O_NOATIME where allowed: reading a reservation or
// listing the directory would otherwise update its access time, a journaled
// inode write on ext4 for every command (the directory changes with every
// ADD and DEL, and relatime then updates its atime at the next read) and
// once per reservation. Nothing reads those access times.
func openRead(dirfd int, dir, name string, flags int) (int, error) {
	if !noatimeRefused.Load() {
		fd, err := sysfile.OpenAt(dirfd, dir, name, flags|unix.O_RDONLY|unix.O_NOATIME, 0)
		if errno(err) != syscall.EPERM {
			return fd, err
		}
		noatimeRefused.Store(true)
	}
	return sysfile.OpenAt(dirfd, dir, name, flags|unix.O_RDONLY, 0)
}

// readSmall reads the file name (relative to dirfd) with three system
// calls, openat (O_NOATIME, see openRead), read and close, into buf. A
// reservation is far below the buffer's size; anything longer is not one
// miniipam or host-local wrote, and its head is enough to keep it
// reserved. dir is dirfd's path, for errors.
func readSmall(dirfd int, dir, name string, buf []byte) ([]byte, error) {
	fd, err := openRead(dirfd, dir, name, unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return sysfile.ReadFd(fd, dir, name, buf)
}

// dirent is one entry of a getdents64 buffer.
type dirent struct {
	name []byte // aliases the buffer
	typ  uint8  // DT_*
}

// direntOffsets of struct linux_dirent64: d_ino (8), d_off (8), d_reclen
// (2), d_type (1), d_name (NUL-terminated). The layout is the same on
// every Linux architecture.
const (
	direntReclen = 16
	direntType   = 18
	direntName   = 19
)

// parseDirents calls f for each entry in buf[:n] (what getdents64 filled),
// "." and ".." excepted.
func parseDirents(buf []byte, f func(dirent) error) error {
	for len(buf) >= direntName {
		reclen := int(binary.NativeEndian.Uint16(buf[direntReclen:]))
		if reclen < direntName || reclen > len(buf) {
			return errors.New("malformed directory entry")
		}
		name := buf[direntName:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		typ := buf[direntType]
		buf = buf[reclen:]
		if string(name) == "." || string(name) == ".." {
			continue
		}
		if err := f(dirent{name: name, typ: typ}); err != nil {
			return err
		}
	}
	return nil
}

// errno returns the system error inside err (0 when there is none).
func errno(err error) syscall.Errno {
	switch e := err.(type) {
	case nil:
		return 0
	case syscall.Errno:
		return e
	case *fs.PathError:
		if e, ok := e.Err.(syscall.Errno); ok {
			return e
		}
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
