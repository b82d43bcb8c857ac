// Package stamps lets miniroute's ADD skip reading the ruleset when nothing
// can have changed it.
//
// With iptables' nf_tables backend every change to any table of a network
// namespace is a transaction that bumps that namespace's nf_tables
// generation, a counter the kernel reports in one netlink request (tens of
// microseconds, against milliseconds for an iptables-save exec). After an ADD
// has read the ruleset and found a family's rules in place, it records the
// generation it read beforehand; a later ADD that finds the same generation
// knows no rule was added, deleted or reordered since, so the rules are still
// in place. Any change (an admin's flush, kube-proxy, portmap) bumps the
// generation and the next ADD reads and repairs as before. CHECK never uses
// stamps: it always reads.
//
// The stamp is keyed by the namespace's cookie, which the kernel never reuses
// within a boot (an inode number is), and by a digest of the wanted rules
// (rules.Spec.Digest), so a changed config misses. Stamps live on tmpfs
// (/run), so a reboot, which resets generations, also forgets them. Whether
// a backend's changes bump the generation at all (legacy iptables does not)
// is the caller's to decide: this package only reads the kernel's generation
// and the stamp files.
package stamps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/minicni/minicni/plugins/miniroute/rules"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/minicni/minicni/libmini"
)

// DefaultDir is where the miniroute binary keeps its stamps.
const DefaultDir = "/run/minicni/miniroute"

// Stamps is a directory of stamps: one small file per namespace and family.
type Stamps struct {
	Dir string
}

// Default returns the miniroute binary's stamps (in DefaultDir).
func Default() *Stamps { return &Stamps{Dir: DefaultDir} }

// nftState is the calling thread's network namespace's identity and
// nf_tables generation.
type nftState struct {
	cookie uint64
	gen    uint32
}

// readNFT asks the kernel, over one netfilter netlink socket opened in the
// calling thread's namespace, for the namespace cookie and nf_tables
// generation (an NFT_MSG_GETGEN request). The request is built and the reply
// parsed with netlink's nl package; the socket is a plain blocking one of
// our own rather than an nl.NetlinkSocket, whose poller registration and
// 64 KiB receive buffer made this call about twice as slow (BenchmarkReadNFT,
// in runs as noisy as the shared machine makes them).
func readNFT() (nftState, error) {
	var st nftState
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return st, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if st.cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err != nil {
		return st, fmt.Errorf("netns cookie: %w", err)
	}
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Bind(fd, kernel); err != nil {
		return st, err
	}
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0})
	if err := unix.Sendto(fd, req.Serialize(), 0, kernel); err != nil {
		return st, fmt.Errorf("nf_tables GETGEN: %w", err)
	}
	buf := make([]byte, 512)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return st, fmt.Errorf("nf_tables GETGEN: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return st, fmt.Errorf("nf_tables GETGEN reply: %w", err)
	}
	if st.gen, err = genID(msgs); err != nil {
		return st, fmt.Errorf("nf_tables GETGEN: %w", err)
	}
	return st, nil
}

// genID finds the generation in the reply to GETGEN: the NFTA_GEN_ID
// attribute (big-endian) of the NFT_MSG_NEWGEN message, after its nfgenmsg.
func genID(msgs []syscall.NetlinkMessage) (uint32, error) {
	const newGen = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) >= 4 {
				if e := int32(nl.NativeEndian().Uint32(m.Data)); e != 0 {
					return 0, unix.Errno(-e)
				}
			}
			continue
		}
		if m.Header.Type != newGen || len(m.Data) < nl.SizeofNfgenmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m.Data[nl.SizeofNfgenmsg:])
		if err != nil {
			return 0, fmt.Errorf("reply: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type&^unix.NLA_F_NESTED == unix.NFTA_GEN_ID && len(a.Value) >= 4 {
				return binary.BigEndian.Uint32(a.Value), nil
			}
		}
	}
	return 0, fmt.Errorf("no generation in the reply")
}

// path is the stamp file of a namespace's family.
func (st *Stamps) path(cookie uint64, f rules.Family) string {
	return filepath.Join(st.Dir, fmt.Sprintf("%016x-%s", cookie, f))
}

// Stamp is one family's stamp as read before an ADD's work: Fresh tells
// whether the rules are known to be in place; Record (after the rules were
// verified) makes the next ADD fresh while nothing changes. The zero Stamp
// is never fresh and records nothing.
type Stamp struct {
	path, want string
	fresh      bool
}

// Fresh reports whether the namespace's generation and the wanted rules are
// those of the recorded stamp.
func (s Stamp) Fresh() bool { return s.fresh }

// Lookup reads the calling thread's namespace's generation and compares it
// with the stamp of family f for the rules of the given digest. A stamp that
// cannot be used (an old kernel, no nf_tables) is simply not fresh.
func (st *Stamps) Lookup(f rules.Family, digest string) Stamp {
	nft, err := readNFT()
	if err != nil {
		return Stamp{}
	}
	path := st.path(nft.cookie, f)
	want := fmt.Sprintf("%d %s\n", nft.gen, digest)
	have, _ := os.ReadFile(path)
	return Stamp{path: path, want: want, fresh: string(have) == want}
}

// Record writes the stamp; failing to is harmless (the next ADD reads).
// The temporary file is named after the stamp (<stamp>.tmp-<random>), so
// one left by a writer killed before its rename is found: the next Record
// of the stamp removes it, and so does Forget. (Named otherwise it stayed in
// /run, nobody's, for the rest of the boot.) A concurrent writer whose
// temporary file goes that way fails its rename, which is harmless too.
func (s Stamp) Record() {
	if s.path == "" || s.fresh {
		return
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	_ = libmini.ReplaceFile(s.path, []byte(s.want))
}

// Forget removes the stamps of the calling thread's network namespace (of
// the given families, or all), and any temporary file a killed writer left
// of them. Uninstall calls it, and whoever deletes a
// namespace miniroute ran in should, since a stamp file outlives its
// namespace (its cookie is never reused, so it is only litter).
func (st *Stamps) Forget(families ...rules.Family) error {
	nft, err := readNFT()
	if err != nil {
		return err
	}
	if len(families) == 0 {
		families = []rules.Family{rules.IPv4, rules.IPv6}
	}
	var errs []error
	for _, f := range families {
		path := st.path(nft.cookie, f)
		err := os.Remove(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if err := libmini.RemoveTemps(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
