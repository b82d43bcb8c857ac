// Package sysfile opens, reads and writes small files with plain system
// calls on raw descriptors, retrying on EINTR, with errors as os.PathError
// (fs.PathError). It serves the plugins' hot paths (miniipam's store,
// minibridge's sysctls and netns handles): an os.File would cost each open
// a stat, four fcntl and an epoll_ctl (Go tries to add every file to its
// poller), which a plugin that reads or writes a few dozen bytes and exits
// does not need.
package sysfile

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenAt opens name relative to dirfd (unix.AT_FDCWD: from the working
// directory, an absolute name as is), close-on-exec. dir is dirfd's path,
// for the error ("" when name is absolute).
func OpenAt(dirfd int, dir, name string, flags int, mode uint32) (int, error) {
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

// ReadFd reads once into buf and returns what it read: a small regular file
// (or a /proc file of this size) comes whole in one read. dir and name are
// the file's, for the error.
func ReadFd(fd int, dir, name string, buf []byte) ([]byte, error) {
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

// WriteAt writes all of data at offset off; path is the file's, for the
// error.
func WriteAt(fd int, path string, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		if n == 0 {
			return &fs.PathError{Op: "write", Path: path, Err: syscall.EIO}
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}
