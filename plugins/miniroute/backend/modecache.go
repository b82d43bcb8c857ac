package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/minicni/minicni/libmini"
)

// BootIDFile is where the kernel tells this boot's random id.
const BootIDFile = "/proc/sys/kernel/random/boot_id"

// ModeCache keeps Decide's answer for a network namespace for the rest of
// the boot, in one small file per namespace: Dir/iptables-mode-<netns
// cookie>, holding the boot id, the mode, whether it was the default, and
// the reason. The cookie (SO_NETNS_COOKIE) is never reused within a boot; the
// boot id makes a file left from an earlier boot (a Dir not on tmpfs) miss.
// Delete the file to make the next call detect again.
type ModeCache struct {
	Dir string
	// BootID is the file holding the boot id; "" means BootIDFile.
	BootID string
}

// Decide returns the cached decision of the calling thread's namespace, or
// detects it (Decide with dirs) and stores it, written to a temporary file
// and renamed, so a concurrent reader never sees half of one. cached tells
// which. Without a boot id or a namespace cookie it detects every time; a
// file that cannot be written only costs a detection next time.
func (c ModeCache) Decide(ctx context.Context, dirs []string) (d Decision, cached bool, err error) {
	boot, err := os.ReadFile(c.bootIDFile())
	if err != nil {
		d, err := Decide(ctx, dirs)
		return d, false, err
	}
	boot = bytes.TrimSpace(boot)
	cookie, err := netnsCookie()
	if err != nil {
		d, err := Decide(ctx, dirs)
		return d, false, err
	}
	path := c.path(cookie)
	if d, ok := readDecision(path, string(boot)); ok {
		return d, true, nil
	}
	d, err = Decide(ctx, dirs)
	if err != nil {
		return d, false, err
	}
	_ = writeDecision(path, string(boot), d) // a failed write only costs a detection next time
	return d, false, nil
}

func (c ModeCache) bootIDFile() string {
	if c.BootID == "" {
		return BootIDFile
	}
	return c.BootID
}

// netnsCookie is the calling thread's network namespace's cookie.
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

// readDecision reads a cache file: boot id, mode, "default" or "detected",
// reason, one a line. A file of another boot, or one that does not read
// back as written, misses.
func readDecision(path, boot string) (Decision, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Decision{}, false
	}
	lines := strings.SplitN(strings.TrimSuffix(string(data), "\n"), "\n", 4)
	if len(lines) != 4 || lines[0] != boot {
		return Decision{}, false
	}
	m := Mode(lines[1])
	if m != Legacy && m != NFT && m != "" {
		return Decision{}, false
	}
	switch lines[2] {
	case "default", "detected":
	default:
		return Decision{}, false
	}
	return Decision{Mode: m, Default: lines[2] == "default", Reason: lines[3]}, true
}

func writeDecision(path, boot string, d Decision) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	how := "detected"
	if d.Default {
		how = "default"
	}
	// libmini.ReplaceFile names its temporary file after the cache file, so
	// one left by a writer killed before its rename is removed by the next
	// write, and by Forget.
	reason := strings.ReplaceAll(d.Reason, "\n", " ")
	return libmini.ReplaceFile(path, fmt.Appendf(nil, "%s\n%s\n%s\n%s\n", boot, d.Mode, how, reason))
}

// Forget removes the cached decision of the calling thread's network
// namespace, and any temporary file a killed writer left of it. Whoever deletes a namespace miniroute ran in should call it (as
// stamps.Forget), since the file outlives the namespace as litter.
func (c ModeCache) Forget() error {
	cookie, err := netnsCookie()
	if err != nil {
		return err
	}
	err = os.Remove(c.path(cookie))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, libmini.RemoveTemps(c.path(cookie)))
}

func (c ModeCache) path(cookie uint64) string {
	return filepath.Join(c.Dir, fmt.Sprintf("iptables-mode-%016x", cookie))
}
