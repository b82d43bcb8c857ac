package bridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/internal/sysfile"
	"github.com/minicni/minicni/libmini"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// makeVeth creates the veth pair in one netlink request, from the host's
// netns: the host end hostName, marked as conf's network's (ownerAlias),
// already a port of br and up; its peer args' ifName, created straight in
// the pod's netns (no move afterwards), down until configurePod has given
// it its addresses. Both ends get mtu. It returns the host end.
//
// One request instead of the six of creating the pair in the pod, moving
// the host end out, looking both ends up, aliasing, enslaving and setting
// it up: each is a round trip through rtnl, and a move between namespaces
// costs the kernel an RCU grace period.
func makeVeth(host *rtnl, conf *NetConf, br *netlink.Bridge, hostName, ifName string, mtu int, pod ns.NetNS) (netlink.Link, error) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(hostName)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(ownerAlias(conf.Name))))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(br.Index))))
	// One tx and one rx queue on each end. Without them the kernel's veth
	// allocates one of each per possible CPU, then cuts the real counts
	// back to one (veth_init_queues), and each cut waits, under the rtnl
	// lock, for an expedited RCU grace period that interrupts every CPU:
	// 0.4-0.6 ms of CPU per ADD here (hack/minibridge-cpu.sh), and every
	// other netlink writer on the node waits meanwhile. The real counts are
	// the same; only raising them later (ethtool -L) is no longer possible.
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ifName))
	peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu)))
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(pod.Fd())))
	peer.AddRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1))
	peer.AddRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1))
	req.AddData(info)
	if _, err := host.do(req, 0); err != nil {
		return nil, linkErr(err, "creating veth %s (host, on bridge %s) / %s (pod)", hostName, conf.Bridge, ifName)
	}
	l, err := host.linkByName(hostName)
	if err != nil {
		return nil, linkErr(err, "finding host veth %s", hostName)
	}
	return l, nil
}

// inNetNS runs f with the calling thread in netns target, then returns it
// to the netns it was in, its goroutine locked to the thread meanwhile
// (libmini.InitPlugin locks main's for good): unlike ns.Do,
// no goroutine is started, so no other thread has to be woken and waited
// for. A thread that cannot return to its netns must not run anything
// else: that panics.
func inNetNS(target ns.NetNS, f func() error) error {
	// Locking again is cheap and nests: a caller that forgot stays safe, and
	// the thread stays locked if it panics below.
	runtime.LockOSThread()
	// A plain descriptor, not an os.File: no poller registration.
	self, err := openRetry("/proc/thread-self/ns/net", unix.O_RDONLY)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening this thread's netns: %w", err)
	}
	defer unix.Close(self)
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", target.Path(), err)
	}
	defer func() {
		if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("minibridge: cannot return to the host netns: %v", err))
		}
		runtime.UnlockOSThread()
	}()
	return f()
}

// podAddrsUp puts every address of res on the pod interface l and sets l
// up, as the reference plugins' ipam.ConfigureIface does without its
// routes (addRoutes programs those): for an IPv6 address, IPv6 is enabled
// on lo and l (disable_ipv6=0) and the address kept when l goes down
// (keep_addr_on_down=1); with an IPv6 address, it waits until duplicate
// address detection, when configured, has finished.
func podAddrsUp(c *rtnl, l netlink.Link, res *current.Result) error {
	name := l.Attrs().Name
	v6 := false
	for _, ipc := range res.IPs {
		if ipc.Address.IP.To4() == nil && !v6 {
			v6 = true
			for _, iface := range []string{"lo", name} {
				if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", iface), "0", false); err != nil {
					return err
				}
			}
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/keep_addr_on_down", name), "1", false); err != nil {
				return err
			}
		}
		if err := c.addrAdd(l.Attrs().Index, &ipc.Address); err != nil {
			return fmt.Errorf("adding %s to %s: %w", ipc.Address.String(), name, err)
		}
	}
	if err := c.linkSetUp(l.Attrs().Index); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	if v6 {
		return settleV6(c, l, dadTimeout)
	}
	return nil
}

// dadTimeout bounds settleV6, as the reference plugins' bound.
const dadTimeout = 10 * time.Second

// settleV6 waits until no IPv6 address of l is tentative (duplicate address
// detection, when enabled, is over), looking every 10 ms, and fails on an
// address the kernel found to be a duplicate. With accept_dad=0, minibridge's
// default, no address is ever tentative and this is one dump.
func settleV6(c *rtnl, l netlink.Link, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		addrs, err := c.addrList(l.Attrs().Index, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("listing the IPv6 addresses of %s: %w", l.Attrs().Name, err)
		}
		tentative := false
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_DADFAILED != 0 {
				return fmt.Errorf("duplicate address detection failed for %s on %s", a.IPNet, l.Attrs().Name)
			}
			tentative = tentative || a.Flags&unix.IFA_F_TENTATIVE != 0
		}
		if !tentative {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("IPv6 addresses of %s still tentative after %s", l.Attrs().Name, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUp returns the link with index index once its operational state is
// up (the kernel's link watch has seen the carrier, so the bridge port
// forwards and the queue is attached), at most timeout from now. It looks
// once: the host end is usually up by then. Only when it is not does it
// subscribe to the kernel's link notifications (linkWatch) and wait for
// them, looking once more after subscribing, so that a change between the
// two looks is not missed.
func waitUp(host *rtnl, index int, name string, timeout time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(timeout)
	l, err := host.linkByIndex(index)
	if err != nil {
		return nil, linkErr(err, "finding host veth %s", name)
	}
	if l.Attrs().OperState == netlink.OperUp {
		return l, nil
	}
	w, err := watchLinks()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.waitUp(host, index, name, timeout, deadline)
}

// linkWatch receives the host netns' link notifications (RTNLGRP_LINK), so
// that waitUp learns when the host end goes up from the kernel instead of
// asking it again and again.
type linkWatch struct{ fd int }

func watchLinks() (*linkWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, linkErr(err, "opening a netlink socket for link events")
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		_ = unix.Close(fd)
		return nil, linkErr(err, "subscribing to link events")
	}
	return &linkWatch{fd: fd}, nil
}

func (w *linkWatch) Close() { _ = unix.Close(w.fd) }

// waitUp is waitUp's wait once subscribed, until deadline (timeout is
// what the error says): it looks once, then only on the kernel's
// notifications; when the socket overran, it looks again.
func (w *linkWatch) waitUp(host *rtnl, index int, name string, timeout time.Duration, deadline time.Time) (netlink.Link, error) {
	buf := make([]byte, 1<<16)
	for {
		l, err := host.linkByIndex(index)
		if err != nil {
			return nil, linkErr(err, "finding host veth %s", name)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return l, nil
		}
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, libmini.Errorf(libmini.CodeLink, "host veth %s is still %s after %s (linkUpTimeout)", name, l.Attrs().OperState, timeout)
			}
			n, err := w.recv(buf, left)
			if errors.Is(err, unix.ENOBUFS) {
				break // events lost: look again
			}
			if err != nil {
				return nil, linkErr(err, "waiting for host veth %s to be up", name)
			}
			if l := upIn(buf[:n], index); l != nil {
				return l, nil
			}
		}
	}
}

// recv reads one datagram of notifications, waiting at most d.
func (w *linkWatch) recv(buf []byte, d time.Duration) (int, error) {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	ms := int(d.Milliseconds()) + 1
	for {
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil // timed out: the caller sees the deadline
		}
		n, _, err = unix.Recvfrom(w.fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return n, err
	}
}

// upIn returns link index when the notifications in b say it is up.
func upIn(b []byte, index int) netlink.Link {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		if int(nl.DeserializeIfInfomsg(m.Data).Index) != index {
			continue
		}
		l, err := netlink.LinkDeserialize(nil, m.Data)
		if err == nil && l.Attrs().OperState == netlink.OperUp {
			return l
		}
	}
	return nil
}

// setSysctl writes value to the sysctl name (its path under /proc/sys)
// unless it already holds it (a read-only /proc/sys is then fine).
// missingOK tolerates a kernel without the setting (no IPv6). The file is
// read and written with plain system calls: an os.File would also stat it,
// make it non-blocking and register it with Go's poller, twice per ADD's
// half a dozen sysctls.
func setSysctl(name, value string, missingOK bool) error {
	path := "/proc/sys/" + name
	var cur [64]byte
	n, err := readSmall(path, cur[:])
	if err == nil && string(trimNL(cur[:n])) == value {
		return nil
	}
	if err == nil {
		err = writeSmall(path, value)
	}
	if err != nil {
		if missingOK && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return linkErr(err, "setting %s=%s", name, value)
	}
	return nil
}

// readSmall reads the start of the file at path into buf, as os.ReadFile
// would (its errors are *os.PathError too).
func readSmall(path string, buf []byte) (int, error) {
	fd, err := openRetry(path, unix.O_RDONLY)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	data, err := sysfile.ReadFd(fd, "", path, buf)
	return len(data), err
}

// writeSmall writes value to the existing file at path, as os.WriteFile
// would.
func writeSmall(path, value string) error {
	fd, err := openRetry(path, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	if err := sysfile.WriteAt(fd, path, []byte(value), 0); err != nil {
		_ = unix.Close(fd)
		return err
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// openRetry opens the file at path close-on-exec (sysfile.OpenAt).
func openRetry(path string, flags int) (int, error) {
	return sysfile.OpenAt(unix.AT_FDCWD, "", path, flags, 0)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// macOf is l's MAC as the result carries it.
func macOf(l netlink.Link) string { return net.HardwareAddr(l.Attrs().HardwareAddr).String() }
