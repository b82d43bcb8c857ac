package rules

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stamps let ADD skip reading the ruleset when nothing can have changed it.
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
// within a boot (an inode number is), and by a digest of the wanted rules, so
// a changed config misses. Stamps live on tmpfs (/run), so a reboot, which
// resets generations, also forgets them. With the legacy iptables backend,
// whose changes do not touch nf_tables, stamps are never used.
type Stamps struct {
	// Dir holds one small file per namespace and family.
	Dir string
}

// DefaultStamps is where the miniroute binary keeps its stamps.
var DefaultStamps = &Stamps{Dir: "/run/minicni/miniroute"}

// nftState is the calling thread's network namespace's identity and
// nf_tables generation.
type nftState struct {
	cookie uint64
	gen    uint32
}

// readNFT asks the kernel, over one netfilter netlink socket opened in the
// calling thread's namespace, for the namespace cookie and nf_tables
// generation.
func readNFT() (nftState, error) {
	var st nftState
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return st, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	defer unix.Close(fd)
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return st, fmt.Errorf("netns cookie: %w", err)
	}
	st.cookie = cookie
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return st, err
	}
	const hdr = unix.NLMSG_HDRLEN + 4 // nlmsghdr + nfgenmsg
	req := make([]byte, hdr)
	binary.NativeEndian.PutUint32(req[0:], hdr)
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	req[16] = unix.AF_UNSPEC
	req[17] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
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
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return st, fmt.Errorf("nf_tables GETGEN: %w", unix.Errno(-e))
				}
			}
			continue
		}
		if m.Header.Type != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN || len(m.Data) < 4 {
			continue
		}
		// Attributes after the nfgenmsg: length, type, value, 4-aligned.
		for a := m.Data[4:]; len(a) >= unix.SizeofNlAttr; {
			l := int(binary.NativeEndian.Uint16(a[0:]))
			typ := binary.NativeEndian.Uint16(a[2:]) &^ unix.NLA_F_NESTED
			if l < unix.SizeofNlAttr || l > len(a) {
				break
			}
			if typ == unix.NFTA_GEN_ID && l >= unix.SizeofNlAttr+4 {
				st.gen = binary.BigEndian.Uint32(a[unix.SizeofNlAttr:])
				return st, nil
			}
			a = a[min(len(a), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
		}
	}
	return st, fmt.Errorf("nf_tables GETGEN: no generation in the reply")
}

// path is the stamp file of a namespace's family.
func (st *Stamps) path(cookie uint64, f Family) string {
	return filepath.Join(st.Dir, fmt.Sprintf("%016x-%s", cookie, f))
}

// stamp is one family's stamp as read before an ADD's work: fresh tells
// whether the rules are known to be in place; record (after the rules were
// verified) makes the next ADD fresh while nothing changes.
type stamp struct {
	path, want string
	fresh      bool
}

// lookup reads the generation and compares it with s's stamp. A stamp that
// cannot be used (no nf_tables backend, an old kernel, no stamp dir) is
// simply not fresh.
func (st *Stamps) lookup(b Backend, s Spec) stamp {
	if st == nil || !nftBackend(b) {
		return stamp{}
	}
	nft, err := readNFT()
	if err != nil {
		return stamp{}
	}
	h := sha256.New()
	for _, p := range s.parts() {
		fmt.Fprintf(h, "%s %s %v %q %q\n", p.table, p.hook, p.jumpFirst, p.jump, p.want)
	}
	path := st.path(nft.cookie, s.Family)
	want := fmt.Sprintf("%d %s\n", nft.gen, hex.EncodeToString(h.Sum(nil)))
	have, _ := os.ReadFile(path)
	return stamp{path: path, want: want, fresh: string(have) == want}
}

// record writes the stamp; failing to is harmless (the next ADD reads).
func (s stamp) record() {
	if s.path == "" || s.fresh {
		return
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, werr := f.WriteString(s.want)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), s.path) != nil {
		_ = os.Remove(f.Name())
	}
}

// nftBackend reports whether b's changes bump the nf_tables generation.
func nftBackend(b Backend) bool {
	n, ok := b.(interface{ nfTables() bool })
	return ok && n.nfTables()
}

// nfTables reports whether e's iptables-save is the nf_tables variant
// (xtables-nft-multi, as on Debian 12) rather than the legacy one.
func (e Exec) nfTables() bool {
	path, err := e.lookPath("save")
	if err != nil {
		return false
	}
	real, err := filepath.EvalSymlinks(path)
	return err == nil && strings.Contains(filepath.Base(real), "nft")
}

// Forget removes the stamps of the calling thread's network namespace (of
// the given families, or all). Uninstall calls it through Cleanup, and
// whoever deletes a namespace miniroute ran in should, since a stamp file
// outlives its namespace (its cookie is never reused, so it is only litter).
func (st *Stamps) Forget(families ...Family) error {
	nft, err := readNFT()
	if err != nil {
		return err
	}
	if len(families) == 0 {
		families = []Family{IPv4, IPv6}
	}
	var errs []error
	for _, f := range families {
		err := os.Remove(st.path(nft.cookie, f))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
