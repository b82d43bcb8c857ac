package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDataRatios: the overlay ratios pair rows of the same round, minicni's
// or the baseline's only, and the target line follows the median.
func TestDataRatios(t *testing.T) {
	row := func(path, variant string, round int, g float64, rttUs int) dataRow {
		return dataRow{Path: path, Variant: variant, Round: round, Gbps: g, RTT: time.Duration(rttUs) * time.Microsecond}
	}
	r := &report{Rounds: 3, Data: []dataRow{
		row(pathVeth, "baseline", 1, 20, 50), row(pathTwoNodes, "minicni", 1, 10, 100), row(pathTwoNodes, "ref-bridge", 1, 40, 10),
		row(pathVXLAN, "minicni", 1, 8, 150),
		row(pathVeth, "baseline", 2, 20, 50), row(pathTwoNodes, "minicni", 2, 12, 100), row(pathVXLAN, "minicni", 2, 6, 120),
		row(pathVeth, "baseline", 3, 20, 50), row(pathTwoNodes, "minicni", 3, 10, 100), row(pathVXLAN, "minicni", 3, 9, 110),
	}}
	tests := []struct {
		name       string
		a, b       string
		f          func(dataRow) float64
		want       []float64
		wantMedian float64
	}{
		{"throughput vxlan/direct", pathVXLAN, pathTwoNodes, gbps, []float64{0.8, 0.5, 0.9}, 0.8},
		{"throughput vxlan/veth", pathVXLAN, pathVeth, gbps, []float64{0.4, 0.3, 0.45}, 0.4},
		{"rtt vxlan/direct", pathVXLAN, pathTwoNodes, rttMs, []float64{1.5, 1.2, 1.1}, 1.2},
		{"no rows", pathRouted, pathTwoNodes, gbps, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, m := r.dataRatios(tt.a, tt.b, tt.f)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 })); diff != "" {
				t.Errorf("ratios (-want +got):\n%s", diff)
			}
			if d := m - tt.wantMedian; d > 1e-9 || d < -1e-9 {
				t.Errorf("median %v, want %v", m, tt.wantMedian)
			}
		})
	}
	md := r.markdown()
	for _, want := range []string{
		"| TCP throughput pod to pod over VXLAN ≥ 0.7× the direct route (two nodes, minicni) | 0.80 | met |",
		"- TCP throughput, VXLAN ÷ direct route: 0.80, 0.50, 0.90 → **0.80**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestTargets: each target is the median of its per-round ratios in the
// run, with its verdict; a concurrency the run left out is not measured,
// and the starts compare the medians with the no-op binary's.
func TestTargets(t *testing.T) {
	res := func(addMs, delMs, podsSec, cpuMs float64) result {
		d := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
		return result{Add: stats{P50: d(addMs)}, Del: stats{P50: d(delMs)}, PodsPerSec: podsSec, AddCPU: d(cpuMs)}
	}
	r := &report{Concs: []int{1}}
	for _, x := range []struct {
		v string
		r result
	}{
		{"minicni", res(5, 17, 30, 4)}, {"ref-bridge", res(10, 20, 20, 10)}, {"ref-equal", res(50, 100, 5, 40)},
		{"minicni", res(7, 19, 30, 5)}, {"ref-bridge", res(10, 20, 20, 10)}, {"ref-equal", res(50, 100, 5, 40)},
		{"minicni", res(6, 16, 30, 6)}, {"ref-bridge", res(10, 20, 20, 10)}, {"ref-equal", res(50, 100, 5, 40)},
	} {
		r.add(1, x.v, x.r)
	}
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	r.Exec = []execRow{{Binary: "noop", P50: ms(2)}, {Binary: "minibridge", P50: ms(2.5)}, {Binary: "miniipam", P50: ms(2.4)},
		{Binary: "miniroute", P50: ms(3)}, {Binary: "portmap", Err: "missing"}}
	got := map[string]string{}
	for _, tg := range r.targets() {
		got[tg.Name] = tg.Value + " " + tg.verdict()
	}
	for name, want := range map[string]string{
		"ADD p50 ≤ 0.6× ref-bridge, C=1": "0.60 met",
		"DEL p50 ≤ 0.85× ref-bridge, C=1 (else: the kernel's veth teardown, bench/README.md)": "0.85 met",
		"pods/s ≥ 1.6× ref-bridge, C=32":                                                                 "- not measured in this run",
		"plugin CPU per pod (ADD) ≤ 0.6× ref-bridge, C=1":                                                "0.50 met",
		"minibridge starts (VERSION, median) ≤ 1.3× the no-op Go binary":                                 "1.25 met",
		"miniroute starts (VERSION, median) ≤ 1.3× the no-op Go binary":                                  "1.50 **missed**",
		"portmap starts (VERSION, median) ≤ 1.3× the no-op Go binary (the reference portmap, unchanged)": "0.00 not measured in this run",
		"ADD p50 ≤ 0.35× ref-equal, C=1":                                                                 "0.12 met",
		"minicni: no errors, no duplicate, nothing left after DEL (also with the netns gone)":            "clean met",
	} {
		if got[name] != want {
			t.Errorf("%s: got %q, want %q", name, got[name], want)
		}
	}
}

// TestCPUSplit: the split takes the median CPU per pod at C=1 and the
// starts of the variant's own binaries from the exec table.
func TestCPUSplit(t *testing.T) {
	d := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	r := &report{Concs: []int{1}, Rounds: 3}
	for _, x := range []struct {
		v   string
		cpu float64
	}{{"minicni", 14}, {"ref-bridge", 20}, {"minicni", 12}, {"ref-bridge", 22}, {"minicni", 13}, {"ref-bridge", 21}} {
		r.add(1, x.v, result{AddCPU: d(x.cpu)})
	}
	r.Exec = []execRow{{Binary: "noop", CPU: d(2)}, {Binary: "minibridge", CPU: d(3)}, {Binary: "miniroute", CPU: d(3.5)},
		{Binary: "bridge", CPU: d(4.5)}, {Binary: "host-local", CPU: d(4)}}
	md := r.markdown()
	for _, want := range []string{
		"| minicni | minibridge + miniroute | 13.00 ms | 6.50 ms | 4.00 ms | 6.50 ms |",
		"| ref-bridge | bridge + host-local | 21.00 ms | 8.50 ms | 4.00 ms | 12.50 ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestFloorSection: the kernel's part pairs each round's veth create and
// delete with the same round's DEL p50s, and the DEL target names the
// medians.
func TestFloorSection(t *testing.T) {
	d := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	r := &report{Concs: []int{1}, Rounds: 3}
	for _, x := range []struct {
		v        string
		add, del float64
	}{
		{"minicni", 14, 24}, {"ref-bridge", 18, 26}, {"minicni", 15, 26}, {"ref-bridge", 19, 30}, {"minicni", 16, 25}, {"ref-bridge", 20, 27},
	} {
		r.add(1, x.v, result{Add: stats{P50: d(x.add)}, Del: stats{P50: d(x.del)}})
	}
	r.Floor = []floorResult{
		{Create: stats{P50: d(1.5)}, Delete: stats{P50: d(20)}},
		{Create: stats{P50: d(1.25)}, Delete: stats{P50: d(21)}},
		{Create: stats{P50: d(1)}, Delete: stats{P50: d(19)}},
	}
	md := r.markdown()
	for _, want := range []string{
		"| DEL p50 ≤ 0.85× ref-bridge, C=1 (else: the kernel's veth teardown: the veth delete alone takes 20.0 ms of minicni's 25.0, see \"The kernel's part\") | 0.92 | **missed** |",
		"| 1 | 1.50 | 20.00 | 14.0 | 24.0 | 26.0 | 4.0 | 6.0 |",
		"| 2 | 1.25 | 21.00 | 15.0 | 26.0 | 30.0 | 5.0 | 9.0 |",
		"| 3 | 1.00 | 19.00 | 16.0 | 25.0 | 27.0 | 6.0 | 8.0 |",
		"What each chain's DEL adds to the kernel's delete (median of the rounds): minicni 5.0 ms, ref-bridge 8.0 ms.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
