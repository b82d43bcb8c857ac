package scale

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Markers delimit the agent's section in docs/benchmarks.md, which the
// chain benchmark (go run ./bench) writes first: WriteSection replaces what
// is between them, or appends the section.
const (
	BeginMarker = "<!-- agent-scale: begin (go test ./installer/internal/scale -bench; edits between the markers are overwritten) -->"
	EndMarker   = "<!-- agent-scale: end -->"
)

// Markdown renders the results (runs of one mode next to each other) with
// the command that produced them.
func Markdown(results []Result, command, machine string) string {
	if len(results) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## The route agent at scale\n\n")
	w("Command: `%s` (as root; %s).\n\n", command, machine)
	w("The agent (`installer/agent`, its informer-backed `nodes.Kubernetes` source over client-go's fake clientset, ")
	w("`installer/routes` and `installer/overlay`) in one network namespace of its own; every netlink request goes to ")
	w("the kernel and is counted on the way (`installer/internal/scale`, `Counter`: one per call, a dump is one request). ")
	w("Direct: every other node on this node's subnet, one route each. VXLAN: every other node on another subnet ")
	w("(overlay mode auto), one route, one FDB and one neighbour entry each.\n\n")

	for _, vx := range []bool{false, true} {
		var rs []Result
		for _, r := range results {
			if r.VXLAN == vx {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		mode := "direct routes"
		if vx {
			mode = "VXLAN overlay"
		}
		w("### %s\n\n", mode)
		w("| | %s |\n|---|%s\n", join(rs, func(r Result) string { return fmt.Sprintf("%d nodes", r.Nodes) }), strings.Repeat("---|", len(rs)))
		row := func(name string, f func(r Result) string) { w("| %s | %s |\n", name, join(rs, f)) }
		row("first convergence: informer list (its cache-sync check polls every 100 ms)", func(r Result) string { return ms(r.Converge.Informer) })
		row("first convergence: first pass (every route and entry added)", func(r Result) string {
			return fmt.Sprintf("%s, %d requests", ms(r.Converge.Pass), r.Converge.Requests)
		})
		row("first convergence: CPU time (informer and first pass)", func(r Result) string { return ms(r.Converge.CPU) })
		row("allocated until converged", func(r Result) string {
			return fmt.Sprintf("%s in %d allocations", mib(r.Converge.AllocBytes), r.Converge.Allocs)
		})
		row("peak live heap (the fake apiserver's objects included) / peak RSS", func(r Result) string {
			return mib(r.Converge.PeakHeap) + " / " + mib(r.Converge.PeakRSS)
		})
		row("heap retained by the informer's cache and the agent", func(r Result) string { return mib(r.Converge.Retained) })
		for _, e := range []struct {
			name string
			get  func(r Result) Event
		}{
			{"one node added: pass", func(r Result) Event { return r.Add }},
			{"one node's InternalIP changed: pass", func(r Result) Event { return r.Change }},
			{"one node removed: pass", func(r Result) Event { return r.Remove }},
			{"one node added, full pass instead (what every event cost before)", func(r Result) Event { return r.FullAdd }},
			{"no-op resync (full pass)", func(r Result) Event { return r.Resync }},
		} {
			row(e.name, func(r Result) string { return event(e.get(r)) })
		}
		w("\n")
	}
	w("An event pass (a node added, changed or removed) reads the nodes the informer names as changed from its cache, ")
	w("decides each alone and sends the kernel what changed for it; a full pass lists every node, computes the whole ")
	w("desired set and reads every minicni route and entry back from the kernel. Times are the median ")
	w("(and maximum) of the samples (%d per kind of event, %d full passes after an added node, %d resyncs); netlink is the time inside the netlink calls (median); CPU is the process's user and system time ", results[0].Events, min(results[0].Events, 10), results[0].Resyncs)
	w("per pass (every thread, the garbage collector's too), median; requests and writes are per pass, entries are what its dumps answered ")
	w("(links, addresses, routes, neighbours); allocated bytes per pass are the median. Peak RSS is the test ")
	w("process's VmHWM, reset before the fake cluster is filled.\n")
	return b.String()
}

func event(e Event) string {
	req := fmt.Sprint(e.Requests)
	if e.MinRequests != e.Requests {
		req = fmt.Sprintf("%d-%d", e.MinRequests, e.Requests)
	}
	return fmt.Sprintf("%s (max %s), of which netlink %s; CPU %s; %s requests (%d writes), %d entries read; %s allocated",
		ms(e.Pass), ms(e.PassMax), ms(e.Kernel), ms(e.CPU), req, e.Writes, e.Entries, mib(e.AllocBytes))
}

func join(rs []Result, f func(Result) string) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, f(r))
	}
	return strings.Join(parts, " | ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func mib(b uint64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// WriteSection puts section between the markers in the file at path,
// appending it when the markers are not there (a file regenerated by the
// chain benchmark).
func WriteSection(path, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(data)
	block := BeginMarker + "\n\n" + section + "\n" + EndMarker + "\n"
	if i := strings.Index(text, BeginMarker); i >= 0 {
		if j := strings.Index(text[i:], EndMarker); j >= 0 {
			rest := strings.TrimPrefix(text[i+j+len(EndMarker):], "\n")
			return os.WriteFile(path, []byte(text[:i]+block+rest), 0o644) //nolint:gosec // a document in the repository
		}
	}
	if text != "" && !strings.HasSuffix(text, "\n\n") {
		text = strings.TrimRight(text, "\n") + "\n\n"
	}
	return os.WriteFile(path, []byte(text+block), 0o644) //nolint:gosec // a document in the repository
}
