package store

// Thin wrappers over the system calls a locked command makes. They work on
// raw descriptors relative to the store's directory: an os.File costs four
// fcntl and an epoll_ctl more per open (Go tries to add every file to its
// poller), and a path relative to an open directory is resolved from there,
// not from the root.

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// atFDCWD makes the *at calls resolve a name from the working directory
// (an absolute name: as is).
const atFDCWD = unix.AT_FDCWD

// openAt opens name relative to dirfd, close-on-exec, retrying on EINTR.
// dir is dirfd's path, for the error ("" when name is absolute).
func openAt(dirfd int, dir, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, mode)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, syscall.EINTR) {
			return -1, &fs.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
		}
	}
}

// readFd reads once into buf: a reservation, a cursor or a boot ID is far
// smaller than buf and a regular file (or a /proc file of this size)
// returns it whole in one read. dir and name are the file's, for the error.
func readFd(fd int, dir, name string, buf []byte) ([]byte, error) {
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: filepath.Join(dir, name), Err: err}
		}
		return buf[:n], nil
	}
}

// writeAtFd writes all of data at offset off.
func writeAtFd(fd int, name string, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: name, Err: err}
		}
		if n == 0 {
			return &fs.PathError{Op: "write", Path: name, Err: syscall.EIO}
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

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
		fd, err := openAt(dirfd, dir, name, flags|unix.O_RDONLY|unix.O_NOATIME, 0)
		if errno(err) != syscall.EPERM {
			return fd, err
		}
		noatimeRefused.Store(true)
	}
	return openAt(dirfd, dir, name, flags|unix.O_RDONLY, 0)
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
	return readFd(fd, dir, name, buf)
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
