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
