// Package install writes the CNI files on the host so that a reader (the
// container runtime, kubelet) only ever sees a whole old file or a whole new
// one: each file goes to a temporary file in the target's directory, is
// fsynced and renamed over the target, and the directory is fsynced. Files
// whose content and mode are already right are not rewritten, so a resync
// changes nothing and wakes no watcher of the conf dir.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Plan is one installation: binaries first, the conflist last, so the runtime
// never sees a chain whose binaries are missing.
type Plan struct {
	// From is the directory the binaries are copied from.
	From string
	// Binaries are the file names copied from From into BinDir. A name
	// missing from From is skipped when Optional lists it, an error otherwise.
	Binaries []string
	Optional []string
	// BinDir is the host's CNI bin dir (/opt/cni/bin).
	BinDir string
	// Conflist is written to ConfPath; nil writes no conflist.
	Conflist []byte
	ConfPath string
	// Needs are the binaries the conflist runs; each must be in BinDir once
	// the binaries are installed, or the conflist is not written.
	Needs []string
}

// Result says which files were written (changed) and which were left as
// they were.
type Result struct {
	Written   []string
	Unchanged []string
}

// Run carries out p. On error, files written before it stay (each is whole);
// the conflist is never written after an error.
func Run(p Plan) (Result, error) {
	var res Result
	record := func(path string, changed bool) {
		if changed {
			res.Written = append(res.Written, path)
		} else {
			res.Unchanged = append(res.Unchanged, path)
		}
	}
	if len(p.Binaries) > 0 {
		// The runtime (any user) must read and execute the plugins, as in /opt/cni/bin.
		if err := os.MkdirAll(p.BinDir, 0o755); err != nil { //nolint:gosec // see above
			return res, err
		}
	}
	for _, name := range p.Binaries {
		if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
			return res, fmt.Errorf("invalid binary name %q", name)
		}
		src := filepath.Join(p.From, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) && slices.Contains(p.Optional, name) {
			continue
		}
		dst := filepath.Join(p.BinDir, name)
		changed, err := CopyFile(dst, src, 0o755)
		if err != nil {
			return res, err
		}
		record(dst, changed)
	}
	if p.Conflist == nil {
		return res, nil
	}
	for _, name := range p.Needs {
		st, err := os.Stat(filepath.Join(p.BinDir, name))
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return res, fmt.Errorf("the conflist runs %q, which is not an executable in %s: conflist not written", name, p.BinDir)
		}
	}
	// The conf dir is read by the runtime, as /etc/cni/net.d is.
	if err := os.MkdirAll(filepath.Dir(p.ConfPath), 0o755); err != nil { //nolint:gosec // see above
		return res, err
	}
	changed, err := WriteFile(p.ConfPath, p.Conflist, 0o644)
	if err != nil {
		return res, err
	}
	record(p.ConfPath, changed)
	return res, nil
}

// WriteFile atomically replaces path with data and mode, unless it already
// holds exactly that. It reports whether it wrote.
func WriteFile(path string, data []byte, mode os.FileMode) (bool, error) {
	return replace(path, mode, int64(len(data)), func() (io.Reader, error) { return bytes.NewReader(data), nil })
}

// CopyFile atomically replaces dst with the content of src and mode, unless
// it already holds exactly that. It reports whether it wrote.
func CopyFile(dst, src string, mode os.FileMode) (bool, error) {
	st, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file", src)
	}
	var f *os.File
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	return replace(dst, mode, st.Size(), func() (io.Reader, error) {
		if f != nil {
			_ = f.Close()
		}
		f, err = os.Open(src)
		return f, err
	})
}

// replace writes what open returns to path unless path already has that
// content (size bytes) and mode.
func replace(path string, mode os.FileMode, size int64, open func() (io.Reader, error)) (written bool, retErr error) {
	if same, err := sameContent(path, mode, size, open); err != nil {
		return false, err
	} else if same {
		return false, nil
	}
	src, err := open()
	if err != nil {
		return false, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// A leading dot keeps the half-written file out of globs such as
	// libcni's *.conflist; the runtime reads only the final name.
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, err
	}
	defer func() {
		if retErr != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, src); err != nil {
		return false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	return true, syncDir(dir)
}

// sameContent reports whether path is a regular file with mode and the
// content open yields. It compares sizes first and streams the rest, so an
// unchanged 50 MB binary costs two reads, not a rewrite.
func sameContent(path string, mode os.FileMode, size int64, open func() (io.Reader, error)) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != mode.Perm() || st.Size() != size {
		return false, nil
	}
	want, err := open()
	if err != nil {
		return false, err
	}
	return equalReaders(f, want)
}

func equalReaders(a, b io.Reader) (bool, error) {
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, errB
		}
		if endA || endB {
			return endA && endB, nil
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Remove deletes path; a missing file is not an error. It reports whether a
// file was removed.
func Remove(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Same reports whether a and b are regular files with the same content.
func Same(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return false, err
	}
	sb, err := fb.Stat()
	if err != nil {
		return false, err
	}
	if !sa.Mode().IsRegular() || !sb.Mode().IsRegular() || sa.Size() != sb.Size() {
		return false, nil
	}
	return equalReaders(fa, fb)
}
