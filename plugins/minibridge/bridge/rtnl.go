package bridge

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// rtnl is one rtnetlink socket, in the netns of the thread that opened it,
// for the requests of one command. The package-level functions of the
// netlink library open, bind and close a socket per request (and register
// it with Go's poller); a close can wait on the kernel's netlink table lock
// while other processes receive notifications. ADD sends a dozen requests
// in the host netns: one socket serves them all. The socket is blocking,
// bounded by the receive timeout the library's sockets have
// (nl.SocketTimeoutTv). Requests are not sent concurrently.
type rtnl struct {
	fd      int
	seq     uint32
	buf     []byte // do's replies
	dumpBuf []byte // defaultRoutes' messages
}

// openRtnl opens an rtnl in the calling thread's netns.
func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, linkErr(err, "opening a netlink socket")
	}
	tv := nl.SocketTimeoutTv
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return nil, linkErr(err, "setting the netlink socket's receive timeout")
	}
	return &rtnl{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (c *rtnl) Close() { _ = unix.Close(c.fd) }

// do sends req and returns the payloads of the replies of type resType (0:
// any), as nl.NetlinkRequest.Execute does: up to the kernel's ACK, its
// end of dump, or its first reply that is not part of a multipart one. A
// kernel error is returned as its syscall.Errno. do is for requests on one
// object: dumps go through dump, which sees when they were interrupted.
func (c *rtnl) do(req *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	var res [][]byte
	_, err := c.exchange(req, resType, func(m []byte) { res = append(res, append([]byte(nil), m...)) })
	if err != nil {
		return nil, err
	}
	return res, nil
}

// dump sends req, a dump request, and calls f with the payload of each
// reply of type resType (only valid during the call). A dump the kernel
// flags as interrupted (the objects changed meanwhile) is run again, up to
// dumpAttempts times in all; then, as netlinksafe does, the last one's
// messages are kept.
func (c *rtnl) dump(req *nl.NetlinkRequest, resType uint16, reset func(), f func([]byte)) error {
	for attempt := 1; ; attempt++ {
		reset()
		intr, err := c.exchange(req, resType, f)
		if err != nil || !intr || attempt == dumpAttempts {
			return err
		}
	}
}

// exchange sends req and calls f with each reply of type resType (0: any)
// until the kernel's ACK, end of dump or first reply that is not part of a
// multipart one. intr reports a reply flagged NLM_F_DUMP_INTR.
func (c *rtnl) exchange(req *nl.NetlinkRequest, resType uint16, f func([]byte)) (intr bool, _ error) {
	c.seq++
	req.Seq = c.seq
	if err := unix.Sendto(c.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return intr, err
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		msgs, err := syscall.ParseNetlinkMessage(c.buf[:n])
		if err != nil {
			return intr, err
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue // a late reply to an earlier request
			}
			intr = intr || m.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR {
				if len(m.Data) < 4 {
					return intr, nil // NLMSG_DONE without payload
				}
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return intr, syscall.Errno(-errno)
				}
				return intr, nil
			}
			if resType == 0 || m.Header.Type == resType {
				f(m.Data)
			}
			if m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return intr, nil
			}
		}
	}
}

// addrList lists the addresses of family (netlink.FAMILY_V4 or _V6) on the
// link with index idx, as netlinksafe.AddrList: every address of the
// family is dumped (the kernel filters by link only with strict checking,
// which this socket does not ask for), and those of other links are
// skipped by their header, not decoded.
func (c *rtnl) addrList(idx, family int) ([]netlink.Addr, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(family))
	var addrs []netlink.Addr
	var perr error
	err := c.dump(req, unix.RTM_NEWADDR, func() { addrs, perr = nil, nil }, func(m []byte) {
		if perr != nil || len(m) < unix.SizeofIfAddrmsg {
			return
		}
		if msg := nl.DeserializeIfAddrmsg(m); int(msg.Index) != idx || int(msg.Family) != family {
			return
		}
		a, err := parseAddr(append([]byte(nil), m...)) // a keeps slices of it
		if err != nil {
			perr = err
			return
		}
		addrs = append(addrs, a)
	})
	if err == nil {
		err = perr
	}
	return addrs, err
}

// parseAddr decodes an RTM_NEWADDR payload into what netlink.AddrList
// returns for it: the address and its prefix (with a peer, the local
// address as a host prefix and the peer as Peer), flags (IFA_FLAGS when
// present), scope, label, broadcast and lifetimes.
func parseAddr(m []byte) (netlink.Addr, error) {
	msg := nl.DeserializeIfAddrmsg(m)
	attrs, err := nl.ParseRouteAttr(m[msg.Len():])
	if err != nil {
		return netlink.Addr{}, err
	}
	a := netlink.Addr{LinkIndex: int(msg.Index), Scope: int(msg.Scope)}
	var local, dst *net.IPNet
	for _, attr := range attrs {
		switch attr.Attr.Type {
		case unix.IFA_ADDRESS:
			dst = &net.IPNet{IP: attr.Value, Mask: net.CIDRMask(int(msg.Prefixlen), 8*len(attr.Value))}
		case unix.IFA_LOCAL:
			n := 8 * len(attr.Value)
			local = &net.IPNet{IP: attr.Value, Mask: net.CIDRMask(n, n)}
		case unix.IFA_BROADCAST:
			a.Broadcast = attr.Value
		case unix.IFA_LABEL:
			if len(attr.Value) > 0 {
				a.Label = string(attr.Value[:len(attr.Value)-1])
			}
		case unix.IFA_FLAGS:
			if len(attr.Value) >= 4 {
				a.Flags = int(binary.NativeEndian.Uint32(attr.Value))
			}
		case unix.IFA_CACHEINFO:
			ci := nl.DeserializeIfaCacheInfo(attr.Value)
			a.PreferedLft, a.ValidLft = int(ci.Prefered), int(ci.Valid)
		}
	}
	switch {
	case local == nil:
		a.IPNet = dst
	case msg.Family == unix.AF_INET && dst != nil && local.IP.Equal(dst.IP):
		a.IPNet = dst
	default:
		a.IPNet, a.Peer = local, dst
	}
	return a, nil
}

// rtextFilterSkipStats is the kernel's RTEXT_FILTER_SKIP_STATS.
const rtextFilterSkipStats = 1 << 3

// linkNotFound is the error of linkByName and linkByIndex for a link that
// does not exist; it says what the netlink library's LinkNotFoundError
// says, and matches unix.ENODEV.
type linkNotFound struct{}

func (linkNotFound) Error() string        { return "Link not found" }
func (linkNotFound) Is(target error) bool { return target == unix.ENODEV }

// linkByName reads the link named name, as netlink.LinkByName.
func (c *rtnl) linkByName(name string) (netlink.Link, error) {
	return c.getLink(getLinkReq(name, 0))
}

// linkByIndex reads the link with index idx, as netlink.LinkByIndex.
func (c *rtnl) linkByIndex(idx int) (netlink.Link, error) {
	return c.getLink(getLinkReq("", idx))
}

// getLinkReq is an RTM_GETLINK for the link named name, or with index idx,
// asking the kernel to leave the link's statistics out of its reply
// (minibridge never reads them; a kernel older than that flag sends them
// anyway).
func getLinkReq(name string, idx int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(idx)
	req.AddData(msg)
	if name != "" {
		req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	return req
}

// getLink sends req (getLinkReq) and decodes the reply.
func (c *rtnl) getLink(req *nl.NetlinkRequest) (netlink.Link, error) {
	msgs, err := c.do(req, unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) || err == nil && len(msgs) == 0 {
		return nil, linkNotFound{}
	}
	if err != nil {
		return nil, err
	}
	return netlink.LinkDeserialize(nil, msgs[0])
}

// linkExists reports whether a link named name exists, without decoding
// it.
func (c *rtnl) linkExists(name string) (bool, error) {
	msgs, err := c.do(getLinkReq(name, 0), unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) {
		return false, nil
	}
	return err == nil && len(msgs) > 0, err
}

// delLink removes a link by name, in one request (the kernel looks the name
// up itself); a link that is already gone (or goes away meanwhile, as when
// its netns is being destroyed) is success.
func (c *rtnl) delLink(name string) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	if _, err := c.do(req, 0); err != nil && !errors.Is(err, unix.ENODEV) {
		return linkErr(err, "deleting %s", name)
	}
	return nil
}

// setPortFlag turns the bridge port option attr (nl.IFLA_BRPORT_MODE:
// hairpin, nl.IFLA_BRPORT_ISOLATED) on for the port with index idx, the
// request netlink.LinkSetHairpin and netlink.LinkSetIsolated send.
func (c *rtnl) setPortFlag(idx, attr int) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(idx)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	info.AddRtAttr(attr, []byte{1})
	req.AddData(info)
	_, err := c.do(req, 0)
	return err
}

// withRtnl runs f with an rtnl opened in the calling thread's netns.
func withRtnl(f func(*rtnl) error) error {
	c, err := openRtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// linkSetUp sets the link with index idx up, the request netlink.LinkSetUp
// sends.
func (c *rtnl) linkSetUp(idx int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Change, msg.Flags, msg.Index = unix.IFF_UP, unix.IFF_UP, int32(idx)
	req.AddData(msg)
	_, err := c.do(req, 0)
	return err
}

// addrAdd adds a to the link with index idx, the request
// netlink.AddrAdd(link, &netlink.Addr{IPNet: a}) sends: universe scope, no
// peer, no label, no flags and, for IPv4 with a prefix shorter than /31,
// the subnet's broadcast address.
func (c *rtnl) addrAdd(idx int, a *net.IPNet) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	family := nl.GetIPFamily(a.IP)
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(idx)
	prefixLen, maskLen := a.Mask.Size()
	msg.Prefixlen = uint8(prefixLen)
	req.AddData(msg)
	local := a.IP.To16()
	if family == netlink.FAMILY_V4 {
		local = a.IP.To4()
	}
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, local))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, local))
	if family == netlink.FAMILY_V4 && prefixLen < 31 {
		brd := make(net.IP, maskLen/8)
		for i := range local {
			brd[i] = local[i] | ^a.Mask[i]
		}
		if !net.IPv4zero.Equal(brd) {
			req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, brd))
		}
	}
	_, err := c.do(req, 0)
	return err
}

// routeAdd adds r, the request netlink.RouteAddEcmp sends (create, no
// exclusive: a second route to a destination becomes another nexthop), for
// the fields kernelRoute sets: Dst, Gw (one of them needed), LinkIndex,
// Priority, MTU, AdvMSS, Table and Scope; the protocol is boot and the type
// unicast.
func (c *rtnl) routeAdd(r *netlink.Route) error {
	hasDst := r.Dst != nil && r.Dst.IP != nil
	if !hasDst && r.Gw == nil {
		return errors.New("either Dst.IP, Src.IP or Gw must be set")
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_ACK)
	msg := nl.NewRtMsg()
	ipBytes := func(ip net.IP) []byte {
		if nl.GetIPFamily(ip) == netlink.FAMILY_V4 {
			return ip.To4()
		}
		return ip.To16()
	}
	var attrs []*nl.RtAttr
	family := -1
	if hasDst {
		dstLen, _ := r.Dst.Mask.Size()
		msg.Dst_len = uint8(dstLen)
		family = nl.GetIPFamily(r.Dst.IP)
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_DST, ipBytes(r.Dst.IP)))
	}
	if r.Gw != nil {
		gwFamily := nl.GetIPFamily(r.Gw)
		if family != -1 && gwFamily != family {
			return errors.New("gateway, source, and destination ip are not the same IP family")
		}
		family = gwFamily
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_GATEWAY, ipBytes(r.Gw)))
	}
	if r.Table > 0 {
		if r.Table >= 256 {
			msg.Table = unix.RT_TABLE_UNSPEC
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(r.Table))))
		} else {
			msg.Table = uint8(r.Table)
		}
	}
	if r.Priority > 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(r.Priority))))
	}
	var metrics []*nl.RtAttr
	if r.MTU > 0 {
		metrics = append(metrics, nl.NewRtAttr(unix.RTAX_MTU, nl.Uint32Attr(uint32(r.MTU))))
	}
	if r.AdvMSS > 0 {
		metrics = append(metrics, nl.NewRtAttr(unix.RTAX_ADVMSS, nl.Uint32Attr(uint32(r.AdvMSS))))
	}
	if metrics != nil {
		m := nl.NewRtAttr(unix.RTA_METRICS, nil)
		for _, a := range metrics {
			m.AddChild(a)
		}
		attrs = append(attrs, m)
	}
	msg.Scope = uint8(r.Scope)
	msg.Family = uint8(family)
	req.AddData(msg)
	for _, a := range attrs {
		req.AddData(a)
	}
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(r.LinkIndex))))
	_, err := c.do(req, 0)
	return err
}
