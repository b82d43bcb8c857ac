package bridge

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
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

// TestSetSysctl: a value is written only when it differs, a missing
// setting is an error naming its path unless missingOK.
func TestSetSysctl(t *testing.T) {
	n := minitest.NewNS(t)
	const name = "net/ipv4/conf/lo/arp_notify"
	read := func() string {
		var b [16]byte
		var got int
		minitest.Do(t, n, func() (err error) { got, err = readSmall("/proc/sys/"+name, b[:]); return err })
		return string(trimNL(b[:got]))
	}
	for _, v := range []string{"1", "1", "0"} {
		minitest.Do(t, n, func() error { return setSysctl(name, v, false) })
		if got := read(); got != v {
			t.Errorf("after setSysctl(%s, %s): %q", name, v, got)
		}
	}
	minitest.Do(t, n, func() error { return setSysctl("net/ipv6/conf/nosuchlink/accept_ra", "0", true) })
	var err error
	minitest.Do(t, n, func() error { err = setSysctl("net/ipv6/conf/nosuchlink/accept_ra", "0", false); return nil })
	if err == nil || !strings.Contains(err.Error(), "/proc/sys/net/ipv6/conf/nosuchlink/accept_ra") {
		t.Errorf("missing setting: %v", err)
	}
	minitest.Do(t, n, func() error { err = setSysctl("net/ipv4/conf/lo/arp_notify", "banana", false); return nil })
	if err == nil || !strings.Contains(err.Error(), "write /proc/sys/net/ipv4/conf/lo/arp_notify") {
		t.Errorf("invalid value: %v", err)
	}
}

// TestWaitUp: waitUp returns a link that is up at once, waits for one that
// comes up later (its peer set up from another thread), and gives up after
// the timeout with CodeLink naming linkUpTimeout.
func TestWaitUp(t *testing.T) {
	for _, tt := range []struct {
		name    string
		after   time.Duration // the peer goes up after this; 0: up before, -1: never
		timeout time.Duration
	}{
		{"up already", 0, time.Second},
		{"up later", 150 * time.Millisecond, 5 * time.Second},
		{"never up", -1, 200 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := minitest.NewNS(t)
			ipCmd(t, n, "link", "add", "va", "type", "veth", "peer", "name", "vb")
			ipCmd(t, n, "link", "set", "va", "up")
			if tt.after == 0 {
				ipCmd(t, n, "link", "set", "vb", "up")
			}
			peerUp := make(chan error, 1)
			if tt.after > 0 {
				go func() {
					time.Sleep(tt.after)
					peerUp <- n.Do(func(ns.NetNS) error {
						l, err := netlink.LinkByName("vb")
						if err == nil {
							err = netlink.LinkSetUp(l)
						}
						return err
					})
				}()
			}
			var l netlink.Link
			var err error
			var took time.Duration
			minitest.Do(t, n, func() error {
				return withRtnl(func(c *rtnl) error {
					va, verr := c.linkByName("va")
					if verr != nil {
						return verr
					}
					start := time.Now()
					l, err = waitUp(c, va.Attrs().Index, "va", tt.timeout)
					took = time.Since(start)
					return nil
				})
			})
			if tt.after > 0 {
				if perr := <-peerUp; perr != nil {
					t.Fatal(perr)
				}
			}
			if tt.after < 0 {
				wantCode(t, err, libmini.CodeLink, "va", "linkUpTimeout")
				if took < tt.timeout {
					t.Errorf("gave up after %v, before the timeout %v", took, tt.timeout)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().OperState != netlink.OperUp || took < tt.after {
				t.Errorf("waitUp gave %s after %v (peer up after %v)", l.Attrs().OperState, took, tt.after)
			}
		})
	}
}
