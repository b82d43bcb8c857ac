package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minicni/minicni/integration/lab"
)

type bencher struct {
	bin  string
	tmpl map[string][]byte
	pods int
	seq  atomic.Int32
}

// stats are latency percentiles of one phase.
type stats struct{ P50, P90, P99, Max time.Duration }

func percentiles(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return stats{at(0.50), at(0.90), at(0.99), s[len(s)-1]}
}

// leftovers is what DEL left on the node beyond what one ADD+DEL cycle of a
// warm-up pod leaves (node-level rules that stay by design).
type leftovers struct{ Veths, Reservations, Rules int }

func (l leftovers) String() string {
	return fmt.Sprintf("%d veths, %d reservations, %d rules", l.Veths, l.Reservations, l.Rules)
}

func (l leftovers) zero() bool { return l == leftovers{} }

type result struct {
	Add, Del   stats
	PodsPerSec float64 // ADD phase
	// AddCPU and DelCPU are the CPU time (user+system) the plugin processes
	// used per pod in each phase: libcni runs them as this process's
	// children, so RUSAGE_CHILDREN counts exactly them.
	AddCPU, DelCPU time.Duration
	Errors         int
	Duplicates     int
	Left           leftovers
}

func (b *bencher) up(ctx context.Context, v string, nodes int, staticRoutes bool) (*lab.Lab, error) {
	return lab.Up(ctx, lab.Options{Name: fmt.Sprintf("bch%d", b.seq.Add(1)), Nodes: nodes, BinDir: b.bin,
		Conflist: b.tmpl[v], StaticRoutes: staticRoutes})
}

// freshNode brings up a one-node lab for variant v and attaches and detaches
// one warm-up pod, so that node-level state (bridge, chains) exists; base is
// the node's state after that. On error nothing is left.
func (b *bencher) freshNode(ctx context.Context, v string) (l *lab.Lab, n *lab.Node, base lab.NodeState, err error) {
	if l, err = b.up(ctx, v, 1, false); err != nil {
		return nil, nil, base, err
	}
	n = l.Nodes[0]
	p, err := l.AddPod(ctx, n, "warm", nil)
	if err == nil {
		err = l.DelPod(ctx, p, false)
	}
	if err == nil {
		base, err = l.State(n)
	}
	if err != nil {
		_ = l.Down()
		return nil, nil, base, err
	}
	return l, n, base, nil
}

// left compares n's state with base. The kernel removes the veths of a
// deleted namespace asynchronously, so veths get up to 2 s to go: what
// remains after that is a leak.
func left(l *lab.Lab, n *lab.Node, base lab.NodeState) (leftovers, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		s, err := l.State(n)
		if err != nil {
			return leftovers{}, err
		}
		lo := leftovers{len(s.Veths) - len(base.Veths), len(s.Reservations) - len(base.Reservations), len(s.Rules) - len(base.Rules)}
		if lo.Veths <= 0 || time.Now().After(deadline) {
			return lo, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parallel runs f for every pod with at most c at once and returns each
// call's duration and the wall time of the whole batch.
func parallel(pods []*lab.Pod, c int, f func(*lab.Pod) error) (durs []time.Duration, wall time.Duration, errs int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan *lab.Pod)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				t0 := time.Now()
				err := f(p)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					durs = append(durs, d)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range pods {
		next <- p
	}
	close(next)
	wg.Wait()
	return durs, time.Since(start), errs
}

// lifecycle: a fresh node, N pod namespaces made beforehand (not timed), ADD
// all with concurrency c, DEL all with concurrency c.
func (b *bencher) lifecycle(ctx context.Context, v string, c int) (res result, err error) {
	l, n, base, err := b.freshNode(ctx, v)
	if err != nil {
		return res, err
	}
	defer teardown("lab", l.Down)
	pods, err := b.newPods(l, n, "p")
	if err != nil {
		return res, err
	}
	cpu0 := childCPU()
	durs, wall, errs := parallel(pods, c, func(p *lab.Pod) error { return l.Attach(ctx, p) })
	res.AddCPU = (childCPU() - cpu0) / time.Duration(len(pods))
	res.Add, res.Errors = percentiles(durs), errs
	res.PodsPerSec = float64(len(durs)) / wall.Seconds()
	seen := map[string]bool{}
	for _, p := range n.Pods {
		if p.IP == nil {
			continue
		}
		if seen[p.IP.String()] {
			res.Duplicates++
		}
		seen[p.IP.String()] = true
	}
	attached := append([]*lab.Pod(nil), n.Pods...)
	cpu0 = childCPU()
	durs, _, errs = parallel(attached, c, func(p *lab.Pod) error { return l.Detach(ctx, p, false) })
	res.DelCPU = (childCPU() - cpu0) / time.Duration(max(1, len(attached)))
	res.Del, res.Errors = percentiles(durs), res.Errors+errs
	res.Left, err = left(l, n, base)
	return res, err
}

// newPods makes b.pods pod namespaces on n, named prefix0, prefix1, …
// (not attached).
func (b *bencher) newPods(l *lab.Lab, n *lab.Node, prefix string) ([]*lab.Pod, error) {
	pods := make([]*lab.Pod, b.pods)
	for i := range pods {
		var err error
		if pods[i], err = l.NewPod(n, prefix+strconv.Itoa(i), nil); err != nil {
			return nil, err
		}
	}
	return pods, nil
}

type goneResult struct {
	OK, Total int
	Left      leftovers
}

// delAfterNetnsGone: pods whose namespace is deleted before DEL, as kubelet
// may do; DEL then comes with an empty CNI_NETNS.
func (b *bencher) delAfterNetnsGone(ctx context.Context, v string, count int) (res goneResult, err error) {
	l, n, base, err := b.freshNode(ctx, v)
	if err != nil {
		return res, err
	}
	defer teardown("lab", l.Down)
	for i := range count {
		if _, err := l.AddPod(ctx, n, "g"+strconv.Itoa(i), nil); err != nil {
			return res, err
		}
	}
	for _, p := range append([]*lab.Pod(nil), n.Pods...) {
		res.Total++
		if l.DelPod(ctx, p, true) == nil {
			res.OK++
		}
	}
	res.Left, err = left(l, n, base)
	return res, err
}

// childCPU is the user+system CPU time of this process's waited-for children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
