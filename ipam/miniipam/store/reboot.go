package store

// The reboot reclaim: reservations made before the node's last boot belong
// to pods that no longer exist, and the first locked command after a boot
// releases them (Disk.Lock calls reclaimAfterReboot).

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minicni/minicni/internal/crashpoint"
	"github.com/minicni/minicni/internal/sysfile"
	"golang.org/x/sys/unix"
)

// boot describes the current boot and whether the store's reservations were
// recorded in it.
type boot struct {
	id       string
	recorded bool      // the directory's boot ID is id
	start    time.Time // zero when unknown
}

// boot reads the current boot ID and the one recorded in the file rec
// (relative to dirfd), each with one openat, read and close: a boot ID is
// 37 bytes, which a read of /proc or of a regular file returns whole. A
// short read could only make the two differ, which runs the reclaim: that
// releases nothing made in this boot.
func (d *Disk) boot(dirfd int, rec string) (boot, error) {
	idPath := d.BootIDPath
	if idPath == "" {
		idPath = "/proc/sys/kernel/random/boot_id"
	}
	var buf [128]byte
	fd, err := sysfile.OpenAt(atFDCWD, "", idPath, unix.O_RDONLY, 0)
	if err != nil {
		return boot{}, err
	}
	data, err := sysfile.ReadFd(fd, "", idPath, buf[:])
	_ = unix.Close(fd)
	if err != nil {
		return boot{}, err
	}
	b := boot{id: string(bytes.TrimSpace(data))}
	if b.id == "" {
		return boot{}, fmt.Errorf("%s is empty", idPath)
	}
	recorded, _ := readSmall(dirfd, "", rec, buf[:])
	if b.recorded = string(bytes.TrimSpace(recorded)) == b.id; b.recorded {
		return b, nil
	}
	b.start, err = bootTime(d.StatPath)
	return b, err
}

// bootTime reads the btime line of /proc/stat.
func bootTime(path string) (time.Time, error) {
	if path == "" {
		path = "/proc/stat"
	}
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: bad btime %q", path, v)
			}
			return time.Unix(sec, 0), nil
		}
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, fmt.Errorf("%s has no btime line", path)
}

// stale reports whether the reservation file name predates boot b.
func (d *Disk) stale(b boot, name string) bool {
	if b.recorded || b.start.IsZero() {
		return false
	}
	fi, err := os.Lstat(filepath.Join(d.Dir, name))
	return err == nil && fi.ModTime().Before(b.start)
}

// reclaimAfterReboot releases the reservations of a previous boot when the
// directory's boot ID is not the current one (or is missing: host-local's GC
// may delete files it does not know), then records the current boot ID.
// Reservations written in this boot (by miniipam or by host-local) are kept
// whatever the recorded ID says, since their mtime is after the boot time.
// When the boot cannot be determined nothing is released.
func (t *Tx) reclaimAfterReboot() {
	b, err := t.d.boot(t.dir, BootIDName)
	if err != nil {
		t.d.log().Warn("cannot tell the current boot; not reclaiming reservations", "err", err)
		return
	}
	if b.recorded {
		return
	}
	for _, r := range t.All() {
		if !t.d.stale(b, r.Addr.String()) {
			continue
		}
		if err := t.Release(r.Addr); err != nil {
			t.d.log().Warn("cannot release a reservation from before the reboot", "ip", r.Addr, "err", err)
			return // try again, boot ID not recorded, on the next command
		}
		t.d.log().Info("released a reservation from before the reboot", "ip", r.Addr, "containerID", r.ContainerID)
		crashpoint.Hit(crashpoint.BootReleased)
	}
	if err := t.writeAtomic(BootIDName, b.id+"\n", crashpoint.BootTemp, crashpoint.BootRecorded); err != nil {
		t.d.log().Warn("cannot record the boot ID", "err", err)
	}
}
