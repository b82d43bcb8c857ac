package ociimage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// AgnhostTools are the commands the Kubernetes e2e tests run in the agnhost
// image besides /agnhost (curl for HTTP, nc for UDP and TCP checks): the
// machine's Debian binaries, copied with the shared libraries they load.
var AgnhostTools = []string{"/usr/bin/curl", "/bin/nc.openbsd"}

// agnhostApplets are the busybox applets of the agnhost image (its shell
// and the commands the tests' shell lines use).
var agnhostApplets = []string{"sh", "cat", "echo", "hostname", "sleep", "test", "ls", "ip", "ping", "true", "false", "grep", "timeout", "wget", "dd", "sed", "awk"}

// BuildAgnhost writes an agnhost image archive named ref: the static
// agnhost binary (k8s.io/kubernetes/test/images/agnhost) as /agnhost, the
// entrypoint as in the upstream image, static busybox for the shell, and
// AgnhostTools as /bin/curl and /bin/nc with their libraries at the paths
// the machine's loader found them (ldd).
func BuildAgnhost(agnhost, busybox, path, ref string) error {
	for _, b := range []string{agnhost, busybox} {
		if err := requireStatic(b); err != nil {
			return err
		}
	}
	agn, err := os.ReadFile(agnhost)
	if err != nil {
		return err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	entries := append(append([]entry{}, baseDirs...),
		entry{name: "agnhost", mode: 0o755, data: agn},
		entry{name: "bin", mode: 0o755, dir: true},
		entry{name: "bin/busybox", mode: 0o755, data: bb})
	for _, a := range agnhostApplets {
		entries = append(entries, entry{name: "bin/" + a, mode: 0o777, link: "busybox"})
	}
	var files []string
	for _, tool := range AgnhostTools {
		data, err := os.ReadFile(tool)
		if err != nil {
			return fmt.Errorf("%s: %w (hack/conformance.sh installs curl and netcat-openbsd)", tool, err)
		}
		name := strings.TrimSuffix(filepath.Base(tool), ".openbsd")
		entries = append(entries, entry{name: "bin/" + name, mode: 0o755, data: data})
		libs, err := sharedLibs(tool)
		if err != nil {
			return err
		}
		files = append(files, libs...)
	}
	slices.Sort(files)
	dirs := map[string]bool{"bin": true}
	for _, f := range slices.Compact(files) {
		data, err := os.ReadFile(f) // follows symlinks: the image holds the file itself
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(f, "/")
		for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				entries = append(entries, entry{name: d, mode: 0o755, dir: true})
			}
		}
		entries = append(entries, entry{name: name, mode: 0o755, data: data})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return write(path, ref, entries, []string{"/agnhost"}, []string{"pause"})
}

// sharedLibs lists the absolute paths of the shared libraries and the
// loader a dynamic binary loads, from ldd's output.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v", bin, err)
	}
	return parseLdd(out), nil
}

// parseLdd takes the paths out of ldd's lines "name => /path (addr)" and
// "/path (addr)"; the vDSO has none.
func parseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if i := slices.Index(f, "=>"); i >= 0 && i+1 < len(f) {
			f = f[i+1:]
		}
		if len(f) > 0 && strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0])
		}
	}
	return libs
}
