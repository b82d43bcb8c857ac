package minitest

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// State is what a refused command must leave as it was: the node's and the
// pod's network namespaces and the plugin's data directory.
type State struct {
	Host, Pod NetState
	Files     []string // path, mode and content of everything under DataDir
}

// NetState is one network namespace, each list sorted, each line starting
// with the name of the link it belongs to ("-" for none).
type NetState struct {
	Links, Addrs, Routes, Rules []string
	// IPTables is iptables-save and ip6tables-save (those installed), without
	// comments and counters; only for the node.
	IPTables []string
}

// drop removes name from s: the node's link of that name (with its
// addresses and routes) and the file or directory of that path.
func (s *State) drop(name string) {
	s.Host.drop(name)
	s.Files = slices.DeleteFunc(s.Files, func(line string) bool { return strings.Fields(line)[0] == name })
	if len(s.Files) == 0 {
		s.Files = nil
	}
}

// drop removes the lines of link (its link, addresses and routes).
func (s *NetState) drop(link string) {
	for _, l := range []*[]string{&s.Links, &s.Addrs, &s.Routes} {
		*l = slices.DeleteFunc(*l, func(line string) bool { return strings.Fields(line)[0] == link })
		if len(*l) == 0 {
			*l = nil // as a snapshot without it says
		}
	}
}

func snapshot(t *testing.T, r *Run) State {
	t.Helper()
	return State{Host: Snapshot(t, r.Host, true), Pod: Snapshot(t, r.Pod, false), Files: Files(t, r.DataDir)}
}

// Snapshot reads n's links, addresses, routes of every table, rules and,
// when iptables is set, its iptables rules.
func Snapshot(t testing.TB, n ns.NetNS, iptables bool) NetState {
	t.Helper()
	var s NetState
	Do(t, n, func() error {
		links, err := netlinksafe.LinkList()
		if err != nil {
			return err
		}
		name := map[int]string{0: "-"}
		for _, l := range links {
			name[l.Attrs().Index] = l.Attrs().Name
		}
		for _, l := range links {
			a := l.Attrs()
			s.Links = append(s.Links, fmt.Sprintf("%s type=%s mtu=%d up=%t master=%s mac=%s",
				a.Name, l.Type(), a.MTU, a.Flags&net.FlagUp != 0, name[a.MasterIndex], a.HardwareAddr))
		}
		addrs, err := netlinksafe.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			s.Addrs = append(s.Addrs, fmt.Sprintf("%s %s", name[a.LinkIndex], a.IPNet))
		}
		routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			s.Routes = append(s.Routes, fmt.Sprintf("%s table=%d type=%d dst=%v src=%v gw=%v proto=%d scope=%d prio=%d",
				name[r.LinkIndex], r.Table, r.Type, r.Dst, r.Src, r.Gw, r.Protocol, r.Scope, r.Priority))
		}
		rules, err := netlinksafe.RuleList(netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range rules {
			s.Rules = append(s.Rules, "- "+r.String())
		}
		if iptables {
			for _, c := range iptablesSavers() {
				out, err := exec.Command(c).Output()
				if err != nil {
					return fmt.Errorf("%s: %w", c, err)
				}
				for _, l := range strings.Split(string(out), "\n") {
					if l != "" && !strings.HasPrefix(l, "#") {
						s.IPTables = append(s.IPTables, c+" "+counters.ReplaceAllString(l, "[-]"))
					}
				}
			}
		}
		return nil
	})
	for _, l := range [][]string{s.Links, s.Addrs, s.Routes, s.Rules, s.IPTables} {
		slices.Sort(l)
	}
	return s
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// iptablesSavers lists iptables-save and ip6tables-save, those installed.
var iptablesSavers = sync.OnceValue(func() []string {
	var out []string
	for _, c := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(c); err == nil {
			out = append(out, c)
		}
	}
	return out
})

// Files lists everything under dir: directories with a trailing '/', files
// with their mode and content, symlinks with their target.
func Files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out = append(out, fmt.Sprintf("%s/ %v", rel, info.Mode()))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s -> %s", rel, target))
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s %v %q", rel, info.Mode(), b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
