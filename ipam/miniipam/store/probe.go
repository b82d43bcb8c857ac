package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ProbeWritable reports whether a locked command could write the store now:
// it creates a temp file in the network's directory (the lock's directory)
// and removes it at once. When that directory does not exist yet (no ADD
// ran), the probe is made in its nearest existing ancestor, where ADD would
// create it. The probe file carries TempPrefix, so should the process die
// before removing it, the next locked command removes it as debris; it is
// not taken under the lock, so a locked command may also remove it first,
// which is no error. The error wraps the underlying one (EROFS, EACCES,
// ENOTDIR, ENOSPC...) and names the path.
func (d *Disk) ProbeWritable() error {
	dir := d.Dir
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "probe", Path: dir, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return err
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("%sstatus-%d-*", TempPrefix, os.Getpid()))
	if err != nil {
		return err
	}
	name := f.Name()
	cerr := f.Close()
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return cerr
}

// Cause is the text of err's innermost error ("read-only file system",
// "permission denied"): the short cause a status message names, the whole
// error going to its details.
func Cause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
