package nodestatus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Binary is one executable of the bin dir.
type Binary struct {
	Name string `json:"name"`
	// About is what it prints when run without any CNI variable (its name
	// and version); Version is the version in it for minicni's binaries.
	About   string `json:"about,omitempty"`
	Version string `json:"version,omitempty"`
	Minicni bool   `json:"minicni"`
	// CNIVersions is what CNI_COMMAND=VERSION answers.
	CNIVersions []string `json:"cniVersions,omitempty"`
	Error       string   `json:"error,omitempty"`
}

const secBinaries = "binaries"

// aboutRE matches libmini.About: "minibridge v0.4.0 (minicni): …".
var aboutRE = regexp.MustCompile(`^(\S+) (\S+) \(minicni\)`)

// binaries runs every executable of the bin dir twice, as libcni would
// find them: without CNI variables (the about line) and with
// CNI_COMMAND=VERSION. Then it checks that the conflist's types are there
// and minicni's binaries are of one version.
func (r *Report) binaries(ctx context.Context, opt Options, net *network) {
	entries, err := os.ReadDir(opt.BinDir)
	if err != nil {
		r.blind(secBinaries, fmt.Sprintf("cannot read the CNI bin dir %s: %v", opt.BinDir, err), "check the path (--bin-dir) and run as root")
		return
	}
	r.Binaries = []Binary{}
	versions := map[string][]string{}
	for _, e := range entries {
		path := filepath.Join(opt.BinDir, e.Name())
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		b := Binary{Name: e.Name()}
		out, err := run(ctx, opt, path, nil, nil)
		b.About = firstLine(out)
		if m := aboutRE.FindStringSubmatch(b.About); m != nil && m[1] == b.Name {
			b.Minicni, b.Version = true, m[2]
			versions[b.Version] = append(versions[b.Version], b.Name)
		}
		vout, verr := run(ctx, opt, path, []string{"CNI_COMMAND=VERSION"}, []byte(`{"cniVersion":"1.0.0"}`))
		var pi struct {
			Supported []string `json:"supportedVersions"`
		}
		if verr == nil && json.Unmarshal([]byte(vout), &pi) == nil {
			b.CNIVersions = pi.Supported
		} else if err != nil {
			b.Error = err.Error()
		}
		r.Binaries = append(r.Binaries, b)
	}
	if len(versions) > 1 {
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(versions)) {
			parts = append(parts, v+": "+strings.Join(versions[v], ", "))
		}
		r.problem(secBinaries, "minicni's binaries are of different versions ("+strings.Join(parts, "; ")+")",
			"restart minicni's DaemonSet pod on this node: its init container installs one version")
	}
	if net == nil {
		return
	}
	for _, t := range net.types {
		if !slices.ContainsFunc(r.Binaries, func(b Binary) bool { return b.Name == t }) {
			r.problem(secBinaries, fmt.Sprintf("%s, named in the conflist, is not an executable in %s: pods cannot start", t, opt.BinDir),
				"restart minicni's DaemonSet pod on this node (it installs the binaries), or copy "+t+" there")
		}
	}
}

// run runs path with exactly env and stdin, bounded by the exec timeout,
// and returns its stdout and stderr together.
func run(ctx context.Context, opt Options, path string, env []string, stdin []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.ExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append([]string{}, env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("%s did not finish within %s", filepath.Base(path), opt.ExecTimeout)
	}
	return out.String(), err
}
