package libmini

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// TempInfix joins a file's name and the random part of the temporary files
// ReplaceFile writes it through.
const TempInfix = ".tmp-"

// ReplaceFile writes data to path atomically: to a temporary file in the
// same directory, named path+TempInfix+random, then renamed over path. The
// temporary file is named after path so that one left by a writer killed
// before its rename is found: ReplaceFile removes such leftovers after its
// own rename (RemoveTemps), so they cannot stay, nobody's, for the rest of
// the boot. A concurrent writer whose temporary file goes that way fails
// its rename; callers of small caches treat that as harmless.
func ReplaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+TempInfix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return RemoveTemps(path)
}

// RemoveTemps removes the temporary files of path's ReplaceFile writers.
func RemoveTemps(path string) error {
	temps, err := filepath.Glob(path + TempInfix + "*")
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range temps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
