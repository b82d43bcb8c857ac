// Package scale measures the route agent against a large cluster: the
// agent (package agent) with its informer-backed node source
// (nodes.Kubernetes over client-go's fake clientset) and its reconciler,
// acting on one network namespace the run creates, whose only interface is
// a veth pair (both ends in it) holding this node's address. It reports the time and
// memory until the first full convergence, then the netlink requests and
// time of the pass after a single Node is added, changed or removed, and of
// a resync that changes nothing. Every request goes to the kernel, counted
// on the way by Counter. The routes go to test-assigned addresses only
// (10.200.0.0/16 on the veth, pod subnets in 10.0.0.0/9; VXLAN
// peers at 10.201.0.0/16, never sent a packet) and vanish with the
// namespace.
package scale

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minicni/minicni/installer/agent"
	"github.com/minicni/minicni/installer/internal/twonode"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	"github.com/minicni/minicni/installer/routes"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// Config is one run.
type Config struct {
	Nodes int // in the cluster, this node included
	// VXLAN puts every other node on another subnet (auto mode: each one
	// goes through the overlay, an FDB and a neighbour entry per node);
	// otherwise every node shares this node's subnet (direct routes).
	VXLAN bool
	// Events is how many single-node events of each kind are measured.
	Events int
	// Resyncs is how many no-op resyncs are measured.
	Resyncs int
}

// Result holds the figures of one run.
type Result struct {
	Config
	Converge Converge
	Add      Event // a node added
	Change   Event // a node's InternalIP changed
	Remove   Event // a node removed
	// FullAdd is the same event (a node added) followed by a full pass, as
	// the agent ran on every event before passes for events were
	// incremental.
	FullAdd Event
	Resync  Event // a full pass that finds nothing to change
}

// Converge is the start of the agent: the informer's first list, then the
// first full pass, which programs every route.
type Converge struct {
	Informer time.Duration // the informer's first list (nodes.Kubernetes.Start)
	Pass     time.Duration // the first pass, every route (and entry) added
	CPU      time.Duration // the process's CPU time, informer and first pass
	Requests int           // netlink requests of the first pass
	Routes   int           // minicni routes in the kernel afterwards
	// AllocBytes and Allocs are what the process allocated from the
	// informer's start to the end of the first pass.
	AllocBytes, Allocs uint64
	// PeakHeap is the largest live heap sampled (every millisecond) during
	// convergence, the fake apiserver's own copy of the Node objects
	// included; Retained is the live heap after it, less the live heap
	// before the informer started (the informer's cache and the agent's
	// state).
	PeakHeap, Retained uint64
	// PeakRSS is the process's peak resident set (VmHWM, reset just before
	// the fake clientset is filled).
	PeakRSS uint64
}

// Event is one kind of pass, measured Samples times.
type Event struct {
	Samples int
	// Pass is the agent's pass after the event (list from the informer's
	// cache, desired set, kernel requests), median and maximum.
	Pass, PassMax time.Duration
	// Requests, Writes and Entries per pass, the maximum over the samples;
	// MinRequests the minimum.
	Requests, Writes, Entries int
	MinRequests               int
	// Lists is the most times a pass listed every node.
	Lists      int
	AllocBytes uint64 // allocated per pass, median
	// CPU is the process's CPU time (user and system, all threads: the
	// garbage collector's too) per pass, median: less sensitive than
	// Pass to other work on the machine.
	CPU time.Duration
	// Kernel is the time per pass spent in netlink calls, median.
	Kernel time.Duration
}

// sample is one timed pass.
type sample struct {
	wall, cpu time.Duration
	alloc     uint64
}

// timed runs f and measures it.
func timed(f func()) sample {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0 := cpuTime()
	start := time.Now()
	f()
	wall := time.Since(start)
	c1 := cpuTime()
	runtime.ReadMemStats(&m1)
	return sample{wall: wall, cpu: c1 - c0, alloc: m1.TotalAlloc - m0.TotalAlloc}
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run measures one configuration in a fresh network namespace.
func Run(t testing.TB, cfg Config) Result {
	t.Helper()
	minitest.RequireRoot(t)
	if cfg.Events <= 0 {
		cfg.Events = 10
	}
	if cfg.Resyncs <= 0 {
		cfg.Resyncs = 3
	}
	n := minitest.NewNS(t)
	h := twonode.Handle(t, n)
	// A veth pair with both ends in the namespace (this kernel may lack
	// the dummy driver): routes via an address on its subnet are accepted
	// and nothing leaves the namespace.
	uplink := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "scale0", MTU: 1500}, PeerName: "scale1"}
	if err := h.LinkAdd(uplink); err != nil {
		t.Fatalf("veth pair: %v", err)
	}
	addr, _ := netlink.ParseAddr(selfIP.String() + "/16")
	if err := h.AddrAdd(uplink, addr); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scale0", "scale1"} {
		l, err := h.LinkByName(name)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
	}

	res := Result{Config: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	resetPeakRSS()
	objs := make([]kruntime.Object, 0, cfg.Nodes)
	for i := range cfg.Nodes {
		objs = append(objs, nodeObject(i, cfg.VXLAN, 0))
	}
	client := fake.NewClientset(objs...)
	src := &listCounter{Kubernetes: &nodes.Kubernetes{Client: client}}
	count := NewCounter(h)
	rec := routes.New(count, nil)
	rec.Overlay = overlay.DefaultConfig() // auto: direct where the subnet is shared, else VXLAN
	a := &agent.Agent{Self: nodeName(0), Source: src, Routes: rec, Resync: time.Hour, Metrics: agent.NewMetrics()}

	before := liveHeap()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	peak := sampleHeap()
	cpu0 := cpuTime()
	start := time.Now()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res.Converge.Informer = time.Since(start)
	count.Reset()
	start = time.Now()
	a.Pass()
	res.Converge.Pass = time.Since(start)
	res.Converge.CPU = cpuTime() - cpu0
	res.Converge.PeakHeap = peak()
	runtime.ReadMemStats(&ms1)
	res.Converge.Requests = count.Requests
	res.Converge.AllocBytes, res.Converge.Allocs = ms1.TotalAlloc-ms0.TotalAlloc, ms1.Mallocs-ms0.Mallocs
	res.Converge.PeakRSS = peakRSS(t)
	if after := liveHeap(); after > before {
		res.Converge.Retained = after - before
	}
	own, err := routes.ListOwn(h)
	if err != nil {
		t.Fatal(err)
	}
	res.Converge.Routes = len(own)
	if res.Converge.Routes != cfg.Nodes-1 {
		t.Fatalf("after the first pass: %d routes, want one per other node, %d", len(own), cfg.Nodes-1)
	}

	api := client.CoreV1().Nodes()
	next := cfg.Nodes
	// event makes a change through the API, waits for the informer's
	// notification that shows it (an earlier one, such as those of the
	// first list, may still be pending), then times pass.
	event := func(change func() error, name string, want *nodes.Node, pass func()) sample {
		t.Helper()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		for seen := false; !seen; {
			select {
			case <-src.Changed():
			case <-time.After(30 * time.Second):
				t.Fatalf("node %s: no informer event within 30 s", name)
			}
			got, ok, err := src.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			seen = (want == nil && !ok) || (want != nil && ok && slices.Equal(got.InternalIPs, want.InternalIPs))
		}
		count.Reset()
		src.lists = 0
		return timed(pass)
	}
	measure := func(e *Event, samples int, one func() sample) {
		var times, cpus, kernel []time.Duration
		var allocs []uint64
		for k := range samples {
			s := one()
			times = append(times, s.wall)
			cpus = append(cpus, s.cpu)
			kernel = append(kernel, count.Kernel)
			allocs = append(allocs, s.alloc)
			e.Requests, e.Writes, e.Entries = max(e.Requests, count.Requests), max(e.Writes, count.Writes), max(e.Entries, count.Entries)
			e.Lists = max(e.Lists, src.lists)
			if k == 0 || count.Requests < e.MinRequests {
				e.MinRequests = count.Requests
			}
		}
		slices.Sort(times)
		slices.Sort(cpus)
		slices.Sort(allocs)
		e.Samples, e.Pass, e.PassMax, e.AllocBytes = samples, times[len(times)/2], times[len(times)-1], allocs[len(allocs)/2]
		slices.Sort(kernel)
		e.CPU, e.Kernel = cpus[len(cpus)/2], kernel[len(kernel)/2]
	}
	var added []int
	measure(&res.Add, cfg.Events, func() sample {
		i := next
		next++
		added = append(added, i)
		obj := nodeObject(i, cfg.VXLAN, 0).(*corev1.Node)
		want := nodes.FromObject(obj)
		return event(func() error {
			_, err := api.Create(ctx, obj, metav1.CreateOptions{})
			return err
		}, obj.Name, &want, a.EventPass)
	})
	k := 0
	measure(&res.Change, cfg.Events, func() sample {
		i := added[k]
		k++
		obj := nodeObject(i, cfg.VXLAN, 1).(*corev1.Node)
		want := nodes.FromObject(obj)
		return event(func() error {
			_, err := api.Update(ctx, obj, metav1.UpdateOptions{})
			return err
		}, obj.Name, &want, a.EventPass)
	})
	k = 0
	measure(&res.Remove, cfg.Events, func() sample {
		i := added[k]
		k++
		return event(func() error { return api.Delete(ctx, nodeName(i), metav1.DeleteOptions{}) }, nodeName(i), nil, a.EventPass)
	})
	measure(&res.FullAdd, min(cfg.Events, 10), func() sample {
		i := next
		next++
		obj := nodeObject(i, cfg.VXLAN, 0).(*corev1.Node)
		want := nodes.FromObject(obj)
		return event(func() error {
			_, err := api.Create(ctx, obj, metav1.CreateOptions{})
			return err
		}, obj.Name, &want, a.Pass)
	})
	measure(&res.Resync, cfg.Resyncs, func() sample {
		count.Reset()
		src.lists = 0
		s := timed(a.Pass)
		if count.Writes != 0 {
			t.Fatalf("a resync after the events changed %d things: %v", count.Writes, count.ByCall)
		}
		return s
	})
	own, err = routes.ListOwn(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := cfg.Nodes - 1 + min(cfg.Events, 10); len(own) != want {
		t.Fatalf("after the events: %d routes, want %d", len(own), want)
	}
	return res
}

// listCounter counts the agent's lists of every node; TakeChanged and the
// rest are the informer-backed source's own.
type listCounter struct {
	*nodes.Kubernetes
	lists int
}

func (l *listCounter) List() ([]nodes.Node, error) {
	l.lists++
	return l.Kubernetes.List()
}

var selfIP = netip.MustParseAddr("10.200.0.1")

func nodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// nodeObject is node i: InternalIP 10.200.0.1 + i (this node's subnet), or
// 10.201.0.1 + i for another node in VXLAN mode, plus version × 0.0.128.0
// (a changed address); podCIDR the i-th /24 of 10.0.0.0/9.
func nodeObject(i int, vxlan bool, version int) kruntime.Object {
	base := selfIP
	if vxlan && i > 0 {
		base = netip.MustParseAddr("10.201.0.1")
	}
	ip := add(base, uint32(i)+uint32(version)*0x8000)
	pod := netip.PrefixFrom(add(netip.MustParseAddr("10.0.0.0"), uint32(i)<<8), 24)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName(i), Labels: map[string]string{"kubernetes.io/hostname": nodeName(i)}},
		Spec:       corev1.NodeSpec{PodCIDR: pod.String(), PodCIDRs: []string{pod.String()}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeHostName, Address: nodeName(i)},
		}},
	}
}

func add(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// liveHeap is the live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// sampleHeap samples the heap's live objects every millisecond until the
// returned function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	read := func() {
		metrics.Read(s)
		mu.Lock()
		peak = max(peak, s[0].Value.Uint64())
		mu.Unlock()
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		read()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// resetPeakRSS resets the process's VmHWM (proc(5), clear_refs: 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM.
func peakRSS(t testing.TB) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
