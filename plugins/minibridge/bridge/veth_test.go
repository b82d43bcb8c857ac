package bridge

import (
	"errors"
	"runtime"
	"testing"

	"github.com/minicni/minicni/libmini/minitest"
	"golang.org/x/sys/unix"
)

// TestInNetNS: f runs in the target netns and the thread is back in its own
// afterwards, after f's error too.
func TestInNetNS(t *testing.T) {
	target := minitest.NewNS(t)
	netnsIno := func(path string) uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := netnsIno("/proc/thread-self/ns/net")
	want := netnsIno(target.Path())
	for _, fail := range []bool{false, true} {
		boom := errors.New("boom")
		var inside uint64
		err := inNetNS(target, func() error {
			inside = netnsIno("/proc/thread-self/ns/net")
			if fail {
				return boom
			}
			return nil
		})
		if fail != errors.Is(err, boom) {
			t.Errorf("fail=%v: err %v", fail, err)
		}
		if inside != want {
			t.Errorf("fail=%v: f ran in netns %d, want the target's %d", fail, inside, want)
		}
		if got := netnsIno("/proc/thread-self/ns/net"); got != self {
			t.Errorf("fail=%v: back in netns %d, want %d", fail, got, self)
		}
	}
}
