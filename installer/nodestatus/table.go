package nodestatus

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes rep for a person: one block per section, then the
// problems, each with what to do.
func WriteTable(w io.Writer, rep *Report, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	// end closes a section: each aligns its own columns.
	end := func() {
		fmt.Fprintln(tw)
		_ = tw.Flush()
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}

	c := rep.Conflist
	p("CONFLIST")
	if c.Path == "" {
		p("  none in %s", c.Dir)
	} else {
		p("  file\t%s", c.Path)
		p("  network\t%s\tminicni: %s\tvalid: %s", c.Name, yes(c.Minicni), yes(c.Valid))
		p("  plugins\t%s", strings.Join(c.Types, ", "))
		if len(c.Others) > 0 {
			p("  not used\t%s", strings.Join(c.Others, ", "))
		}
	}
	end()
	if rep.Binaries != nil {
		p("BINARIES\tVERSION\tCNI VERSIONS")
		for _, b := range rep.Binaries {
			v := b.Version
			if v == "" {
				v = b.About
			}
			if v == "" {
				v = "-"
			}
			p("  %s\t%s\t%s", b.Name, v, strings.Join(b.CNIVersions, " "))
		}
		end()
	}
	if b := rep.Bridge; b != nil {
		p("BRIDGE")
		if !b.Exists {
			p("  %s\tnot there (the first pod creates it)", b.Name)
		} else {
			p("  %s\tup: %s\tmtu %d\t%d ports\tgateway %s", b.Name, yes(b.Up), b.MTU, b.Ports, orNone(strings.Join(b.Addresses, " ")))
		}
		end()
	}
	if a := rep.Addresses; a != nil {
		fmt.Fprintf(tw, "ADDRESSES (IPAM %s, store %s)\n", a.IPAM, orNone(a.Store))
		for _, pool := range a.Pools {
			fmt.Fprintf(tw, "  pool %s: size %d, used %d, free %d\n", pool.Ranges, pool.Size, pool.Used, pool.Free)
		}
		if len(a.Reservations) > 0 {
			p("  IP\tCONTAINER\tIFNAME\tVETH\tCACHE\tAGE")
		}
		for _, res := range a.Reservations {
			veth := "-"
			if res.Veth != "" {
				veth = res.Veth
				if !res.HasVeth {
					veth += " (gone)"
				}
			}
			age := now.Sub(res.Made).Round(time.Second).String()
			if res.EarlierBoot {
				age += " (earlier boot)"
			}
			p("  %s\t%s\t%s\t%s\t%s\t%s", res.IP, short(res.ContainerID), orNone(res.IfName), veth, yes(res.HasCache), age)
		}
		fmt.Fprintf(tw, "  host veths %d, libcni cache entries %d\n", a.Veths, a.CacheEntries)
		end()
	}
	if len(rep.Orphans) > 0 {
		p("ORPHANS\tWHAT\tFIXABLE")
		for _, o := range rep.Orphans {
			what := strings.Join(nonEmpty(o.IP, o.Veth, short(o.ContainerID), o.IfName), " ")
			p("  %s\t%s\t%s", o.Kind, what, yes(o.Fixable))
		}
		end()
	}
	if m := rep.Miniroute; m != nil {
		conf := ""
		if m.Configured != "" {
			conf = "; configured: " + m.Configured
		}
		fmt.Fprintf(tw, "MINIROUTE (node's iptables mode: %s: %s%s)\n", orNone(m.NodeMode), m.Reason, conf)
		for _, f := range m.Families {
			for _, mr := range f.Modes {
				switch {
				case mr.Error != "":
					p("  %s %s\t%s", f.Family, mr.Mode, mr.Error)
				case len(mr.Rules) == 0:
					p("  %s %s\tnone", f.Family, mr.Mode)
				default:
					for i, r := range mr.Rules {
						label := ""
						if i == 0 {
							label = f.Family + " " + mr.Mode
						}
						p("  %s\t%s", label, r)
					}
				}
			}
		}
		end()
	}
	if rt := rep.Routes; rt != nil {
		p("ROUTES (protocol 109, the agent's)")
		if len(rt.Kernel) == 0 {
			p("  none")
		}
		for _, k := range rt.Kernel {
			p("  %s", k)
		}
		if !rt.Checked {
			p("  peers not checked: pass --kubeconfig or --nodes-file")
		}
		end()
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Problems) == 0 {
		_, err := fmt.Fprintln(w, "no problem found")
		return err
	}
	fmt.Fprintf(w, "PROBLEMS (%d)\n", len(rep.Problems))
	for _, pr := range rep.Problems {
		mark := ""
		if pr.CouldNotLook {
			mark = " (could not look)"
		}
		if _, err := fmt.Fprintf(w, "- %s%s: %s\n  do: %s\n", pr.Section, mark, pr.What, pr.Do); err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
