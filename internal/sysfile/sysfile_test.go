package sysfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRoundTrip: a file written with WriteAt reads back with ReadFd, and a
// failed open names the path the caller gave, joined.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	dirfd, err := OpenAt(unix.AT_FDCWD, "", dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	fd, err := OpenAt(dirfd, dir, "f", unix.O_WRONLY|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "f", []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if err := WriteAt(fd, "f", []byte("J"), 0); err != nil { // in place, at the offset
		t.Fatal(err)
	}
	unix.Close(fd)
	fd, err = OpenAt(dirfd, dir, "f", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var buf [64]byte
	if got, err := ReadFd(fd, dir, "f", buf[:]); err != nil || string(got) != "Jello" {
		t.Errorf("ReadFd = %q, %v; want Jello", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "Jello" {
		t.Errorf("file holds %q", b)
	}

	_, err = OpenAt(dirfd, dir, "missing", unix.O_RDONLY, 0)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "missing") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open of a missing file: %v", err)
	}
}
