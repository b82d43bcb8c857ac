package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Listed is one reservation as List reads it.
type Listed struct {
	Reservation
	// Made is the reservation file's modification time: when it was made.
	Made time.Time
	// EarlierBoot marks a reservation made before this boot in a directory
	// whose recorded boot is not this one: the next locked command
	// releases it (reclaimAfterReboot).
	EarlierBoot bool
}

// List reads every reservation without taking the lock, for a status
// report: it never waits for, nor delays, an ADD, and may be a moment out
// of date. Unlike Taken it keeps the reservations of an earlier boot,
// marked. Files it cannot read and empty ones (an interrupted write) are
// left out; a missing directory holds nothing.
func (d *Disk) List() ([]Listed, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError("cannot list "+d.Dir, err)
	}
	b, err := d.boot(atFDCWD, filepath.Join(d.Dir, BootIDName))
	if err != nil {
		b = boot{recorded: true} // cannot tell: nothing is from an earlier boot
	}
	var out []Listed
	var buf [1024]byte
	for _, e := range entries {
		a, ok := addrName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() == 0 {
			continue
		}
		data, err := readSmall(atFDCWD, "", filepath.Join(d.Dir, e.Name()), buf[:])
		if err != nil || len(data) == 0 {
			continue
		}
		out = append(out, Listed{Reservation: parseReservation(a, data), Made: fi.ModTime(),
			EarlierBoot: !b.recorded && !b.start.IsZero() && fi.ModTime().Before(b.start)})
	}
	slices.SortFunc(out, func(x, y Listed) int { return x.Addr.Compare(y.Addr) })
	return out, nil
}
