package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dumpAttempts bounds the retries of a route dump the kernel flags as
// interrupted (the table changed meanwhile), as netlinksafe's: after the
// last, what was read is used.
const dumpAttempts = 5

// defaultRoutes calls use, in the kernel's dump order, with the output link
// of each default route (prefix length 0) of the current netns' main table
// for family (unix.AF_INET or unix.AF_INET6), until use returns true. It
// skips cached (cloned) routes and routes without an output link
// (unreachable, blackhole, a nexthop object without the compat attributes);
// for a multipath route, it passes its first nexthop's link. These are the
// routes, in the same order, that netlinksafe.RouteList(nil, family) lists
// with a nil or /0 Dst, found without decoding every route of the node (an
// agent may install thousands): only each route's header is read, and the
// dump stops when use returns true. For IPv4 that is among the first
// routes the kernel sends: it walks the table in key order, and 0.0.0.0
// comes first. IPv6 walks its table with the default route last, so that
// dump is read to the end, headers only.
//
// A dump the kernel flags as interrupted (the table changed meanwhile) is
// run again, up to dumpAttempts times in all, as netlinksafe does.
func (c *rtnl) defaultRoutes(family uint8, use func(link int) bool) error {
	for range dumpAttempts - 1 {
		if intr, err := c.defaultRoutesOnce(family, use); err != nil || !intr {
			return err
		}
	}
	_, err := c.defaultRoutesOnce(family, use)
	return err
}

// defaultRoutesOnce is one dump for defaultRoutes on a socket of its own,
// closed when use returns true: the kernel then drops the rest of the dump,
// which on c's socket would have to be read to the end. It reads into
// c.dumpBuf, not c.buf: use may send requests on c while the messages are
// read. intr reports that a message read was flagged NLM_F_DUMP_INTR.
func (c *rtnl) defaultRoutesOnce(family uint8, use func(link int) bool) (intr bool, _ error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return false, fmt.Errorf("opening a netlink socket: %w", err)
	}
	defer unix.Close(fd)
	// With strict checking (Linux 4.20 and later) the kernel dumps only the
	// table the request names; without, it dumps them all and the table is
	// checked below.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	req := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtMsg)
	*(*unix.NlMsghdr)(unsafe.Pointer(&req[0])) = unix.NlMsghdr{
		Len:   uint32(len(req)),
		Type:  unix.RTM_GETROUTE,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP,
		Seq:   1,
	}
	*(*unix.RtMsg)(unsafe.Pointer(&req[unix.SizeofNlMsghdr])) = unix.RtMsg{Family: family, Table: unix.RT_TABLE_MAIN}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, fmt.Errorf("asking for the routes: %w", err)
	}
	if c.dumpBuf == nil {
		c.dumpBuf = make([]byte, 1<<16)
	}
	buf := c.dumpBuf
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return intr, fmt.Errorf("reading the routes: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return intr, fmt.Errorf("reading the routes: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != 1 {
				continue
			}
			intr = intr || m.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return intr, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return intr, errors.New("reading the routes: short netlink error")
				}
				errno := -int32(binary.NativeEndian.Uint32(m.Data))
				if errno == 0 {
					return intr, nil
				}
				if family == unix.AF_INET && syscall.Errno(errno) == unix.ENOENT {
					return intr, nil // strict check: no main table yet, so no route
				}
				return intr, fmt.Errorf("listing routes: %w", syscall.Errno(errno))
			case unix.RTM_NEWROUTE:
				idx, err := defaultLinkOf(m.Data, family)
				if err != nil {
					return intr, err
				}
				if idx != 0 && use(idx) {
					return intr, nil
				}
			}
		}
	}
}

// defaultLinkOf returns the output link of the route message b when it is
// one defaultRoutes looks for, else 0.
func defaultLinkOf(b []byte, family uint8) (int, error) {
	if len(b) < unix.SizeofRtMsg {
		return 0, errors.New("reading the routes: short route message")
	}
	rt := (*unix.RtMsg)(unsafe.Pointer(&b[0]))
	if rt.Family != family || rt.Flags&unix.RTM_F_CLONED != 0 || rt.Table != unix.RT_TABLE_MAIN || rt.Dst_len != 0 {
		return 0, nil
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&syscall.NetlinkMessage{
		Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE},
		Data:   b,
	})
	if err != nil {
		return 0, fmt.Errorf("reading a default route: %w", err)
	}
	var multipath []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				if idx := int(binary.NativeEndian.Uint32(a.Value)); idx != 0 {
					return idx, nil
				}
			}
		case unix.RTA_MULTIPATH:
			multipath = a.Value
		}
	}
	// struct rtnexthop: len u16, flags u8, hops u8, ifindex s32.
	if len(multipath) >= unix.SizeofRtNexthop {
		return int(int32(binary.NativeEndian.Uint32(multipath[4:8]))), nil
	}
	return 0, nil
}
