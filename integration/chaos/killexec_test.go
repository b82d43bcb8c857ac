package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil { //nolint:gosec // an executable
		t.Fatal(err)
	}
	return p
}

func plan(p float64, maxDelay time.Duration) context.Context {
	return WithFaults(context.Background(), &Faults{Rand: rand.New(rand.NewPCG(1, 2)), P: p, MaxDelay: maxDelay}) //nolint:gosec // a test's seeded RNG
}

// TestKillExec: a kill that lands while the plugin runs is a hit and its
// error is ErrKilled; one drawn for a plugin that exits first is a miss;
// without a plan nothing is killed; a CNI error object comes back as such.
func TestKillExec(t *testing.T) {
	for _, tt := range []struct {
		name         string
		body         string
		ctx          context.Context
		planned, hit int64
		wantOut      string
		wantErr      func(error) bool
	}{
		{"hit", "exec sleep 10", plan(1, time.Millisecond), 1, 1, "",
			func(err error) bool { return errors.Is(err, ErrKilled) }},
		{"miss: the plugin exits first", `echo '{"cniVersion":"1.1.0"}'`, plan(1, time.Hour), 1, 0, `{"cniVersion":"1.1.0"}` + "\n", nil},
		{"no kill drawn", `echo ok`, plan(0, time.Millisecond), 0, 0, "ok\n", nil},
		{"no plan", `echo ok`, context.Background(), 0, 0, "ok\n", nil},
		{"CNI error", `echo '{"cniVersion":"1.1.0","code":7,"msg":"bad"}'; exit 1`, context.Background(), 0, 0, "",
			func(err error) bool {
				var e *types.Error
				return errors.As(err, &e) && e.Code == 7 && e.Msg == "bad"
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &KillExec{}
			start := time.Now()
			out, err := e.ExecPlugin(tt.ctx, script(t, tt.body), nil, os.Environ())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !tt.wantErr(err) {
				t.Errorf("error %v", err)
			}
			if string(out) != tt.wantOut {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if e.Planned.Load() != tt.planned || e.Hit.Load() != tt.hit {
				t.Errorf("planned %d hit %d, want %d %d", e.Planned.Load(), e.Hit.Load(), tt.planned, tt.hit)
			}
			if tt.hit > 0 && e.Killed()["plugin"] != int(tt.hit) {
				t.Errorf("hits by plugin %v", e.Killed())
			}
		})
	}
}
