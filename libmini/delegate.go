package libmini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

// Exec runs delegated plugins. Its method set is that of the cni library's
// invoke.Exec, so a fake written for one serves the other; libmini does not
// import package invoke, whose tracing dependencies (OpenTelemetry, net/http)
// cost every plugin process about 0.5 ms of package initialisation and a
// third of its binary.
type Exec interface {
	ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error)
	FindInPath(plugin string, paths []string) (string, error)
	Decode(jsonBytes []byte) (cniversion.PluginInfo, error)
}

// realExec runs the plugin binary.
type realExec struct{}

// busyRetries bounds the retries of an exec that fails with ETXTBSY (the
// binary is being written, as when an installer replaces it).
const busyRetries = 5

// ExecPlugin runs pluginPath with stdinData on its stdin and environ as its
// whole environment, and returns its stdout. The plugin's stderr goes to
// this process's stderr. A failed plugin's stdout is decoded as its CNI
// error; when it is not one, the error says what the plugin printed.
func (realExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	for try := 0; ; try++ {
		var stdout, stderr bytes.Buffer
		c := exec.CommandContext(ctx, pluginPath)
		c.Env = environ
		c.Stdin = bytes.NewReader(stdinData)
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if err == nil {
			_, _ = stderr.WriteTo(os.Stderr)
			return stdout.Bytes(), nil
		}
		if errors.Is(err, syscall.ETXTBSY) && try < busyRetries {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		return nil, delegateErr(err, stdout.Bytes(), stderr.Bytes())
	}
}

// delegateErr turns a failed plugin's output into an error: its CNI error
// object when stdout holds one, else a plain error quoting what it wrote
// (which the caller turns into its own code).
func delegateErr(err error, stdout, stderr []byte) error {
	if len(bytes.TrimSpace(stdout)) > 0 {
		var e types.Error
		if jerr := json.Unmarshal(stdout, &e); jerr == nil && e.Code != 0 {
			return &e
		}
		return fmt.Errorf("plugin failed (%w) and printed %q, not an error object", err, stdout)
	}
	if len(stderr) > 0 {
		return fmt.Errorf("plugin failed: %q: %w", stderr, err)
	}
	return fmt.Errorf("plugin failed with no message: %w", err)
}

// FindInPath returns the first regular file named plugin in paths.
func (realExec) FindInPath(plugin string, paths []string) (string, error) {
	return FindInPath(plugin, paths)
}

// Decode reads a plugin's VERSION answer.
func (realExec) Decode(b []byte) (cniversion.PluginInfo, error) {
	return (&cniversion.PluginDecoder{}).Decode(b)
}

// FindInPath returns the first regular file named plugin in the directories
// paths. A name holding a path separator is refused: a config must not make
// a plugin run a binary outside CNI_PATH (CVE-2021-20206).
func FindInPath(plugin string, paths []string) (string, error) {
	switch {
	case plugin == "":
		return "", errors.New("no plugin name given")
	case strings.ContainsRune(plugin, os.PathSeparator):
		return "", fmt.Errorf("invalid plugin name %q: it holds a path separator", plugin)
	case len(paths) == 0:
		return "", errors.New("CNI_PATH names no directory")
	}
	for _, dir := range paths {
		p := filepath.Join(dir, plugin)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no plugin %q in %s", plugin, strings.Join(paths, string(os.PathListSeparator)))
}

// delegate runs verb of plugin (found in CNI_PATH) with stdin and this
// process's environment, CNI_COMMAND replaced by verb, and returns its
// stdout.
func delegate(ctx context.Context, x Exec, plugin, verb string, stdin []byte) ([]byte, error) {
	if x == nil {
		x = realExec{}
	}
	path, err := x.FindInPath(plugin, filepath.SplitList(os.Getenv("CNI_PATH")))
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CNI_COMMAND=") {
			env = append(env, kv)
		}
	}
	return x.ExecPlugin(ctx, path, stdin, append(env, "CNI_COMMAND="+verb))
}

// decodeResult reads a delegated ADD's result. A result with no cniVersion
// is in the config's version (an absent one meaning 0.1.0), as libcni reads
// it.
func decodeResult(conf, out []byte) (types.Result, error) {
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("decoding the result: %w", err)
	}
	if v, ok := raw["cniVersion"].(string); ok && v != "" {
		return create.Create(v, out)
	}
	var c struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, fmt.Errorf("decoding the config's cniVersion: %w", err)
	}
	if c.CNIVersion == "" {
		c.CNIVersion = "0.1.0"
	}
	if raw == nil { // the plugin printed null
		raw = map[string]any{}
	}
	raw["cniVersion"] = c.CNIVersion
	fixed, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return create.Create(c.CNIVersion, fixed)
}
