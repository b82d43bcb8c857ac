package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Faults is the kill plan of one runtime operation (an ADD or a DEL of one
// pod): each plugin process libcni starts under a context carrying it is
// SIGKILLed, with probability P, after a delay drawn uniformly from
// [0, MaxDelay). Draws come from Rand, seeded per cycle, so a seed fixes
// every decision (the timing of the processes, not the test's, decides
// whether a kill lands while the plugin still runs).
type Faults struct {
	Rand     *rand.Rand
	P        float64
	MaxDelay time.Duration
	mu       sync.Mutex
}

// draw returns whether to kill the next process and after how long.
func (f *Faults) draw() (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Rand.Float64() >= f.P {
		return false, 0
	}
	return true, time.Duration(f.Rand.Int64N(int64(f.MaxDelay)))
}

type faultsKey struct{}

// WithFaults returns ctx carrying f for KillExec.
func WithFaults(ctx context.Context, f *Faults) context.Context {
	return context.WithValue(ctx, faultsKey{}, f)
}

// KillExec is libcni's plugin executor (invoke.Exec) with kills: it runs the
// real binary as invoke.RawExec does (stdin the config, environ the CNI
// variables, stdout the result or error) and, when the context carries
// Faults that draw a kill, sends SIGKILL after the drawn delay.
type KillExec struct {
	invoke.RawExec        // FindInPath
	version.PluginDecoder // Decode
	// Planned counts the kills drawn; Hit those that found the plugin
	// still running (its wait status says it died of SIGKILL).
	Planned, Hit atomic.Int64
	// Killed names the plugins that were hit, by binary name.
	mu     sync.Mutex
	killed map[string]int
}

// ErrKilled is the error of a plugin run that the kill hit.
var ErrKilled = errors.New("plugin killed by SIGKILL")

// ExecPlugin runs the plugin, killing it when the plan says so.
func (e *KillExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pluginPath) //nolint:gosec // the plugin path comes from libcni's lookup in CNI_PATH
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdinData)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// A child the plugin started may outlive a kill holding the output
	// pipes; the plugin's own end is what matters.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var fired atomic.Bool
	if f, ok := ctx.Value(faultsKey{}).(*Faults); ok && f != nil {
		if kill, after := f.draw(); kill {
			e.Planned.Add(1)
			t := time.AfterFunc(after, func() {
				fired.Store(true)
				_ = cmd.Process.Signal(syscall.SIGKILL)
			})
			defer t.Stop()
		}
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && fired.Load() && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		e.Hit.Add(1)
		e.mu.Lock()
		if e.killed == nil {
			e.killed = map[string]int{}
		}
		e.killed[filepath.Base(pluginPath)]++
		e.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", filepath.Base(pluginPath), ErrKilled)
	}
	if err != nil {
		// A CNI error object on stdout is the plugin's answer.
		var cniErr types.Error
		if json.Unmarshal(stdout.Bytes(), &cniErr) == nil && cniErr.Code != 0 {
			return nil, &cniErr
		}
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(pluginPath), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// Killed returns how many kills hit each plugin.
func (e *KillExec) Killed() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for k, v := range e.killed {
		out[k] = v
	}
	return out
}
