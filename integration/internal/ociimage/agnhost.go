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
// image besides /agnhost, as {machine path, image path}: the shell (dash:
// busybox's sh runs its own applets before PATH, so "nc -u" would be
// busybox's nc, which has no -u), curl for HTTP and OpenBSD nc for the UDP
// and TCP checks, the machine's Debian binaries copied with the shared
// libraries they load.
var AgnhostTools = [][2]string{{"/bin/dash", "bin/sh"}, {"/usr/bin/curl", "bin/curl"}, {"/bin/nc.openbsd", "bin/nc"}}

// busyboxApplets lists the applets a busybox binary provides
// (`busybox --list`).
func busyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %v", busybox, err)
	}
	return strings.Fields(string(out)), nil
}

// BuildAgnhost writes an agnhost image archive named ref from dir, which
// holds the static agnhost binary (k8s.io/kubernetes/test/images/agnhost)
// and the TLS pair its porter serves (localhost.crt and localhost.key from
// agnhost's porter/), laid out as the upstream Dockerfile does: /agnhost
// (also as /agnhost-2) the entrypoint and "pause" the command,
// /localhost.crt, /localhost.key, /uploads, the image's user 1000 and group
// 50000; plus static busybox with all its applets and AgnhostTools with their
// libraries at the paths the machine's loader found them (ldd).
func BuildAgnhost(dir, busybox, path, ref string) error {
	agnhost := filepath.Join(dir, "agnhost")
	for _, b := range []string{agnhost, busybox} {
		if err := requireStatic(b); err != nil {
			return err
		}
	}
	read := map[string][]byte{}
	for _, f := range []string{agnhost, busybox, filepath.Join(dir, "localhost.crt"), filepath.Join(dir, "localhost.key")} {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		read[f] = b
	}
	entries := append(append([]entry{}, baseDirs...),
		entry{name: "agnhost", mode: 0o755, data: read[agnhost]},
		entry{name: "agnhost-2", mode: 0o777, link: "agnhost"},
		entry{name: "localhost.crt", mode: 0o644, data: read[filepath.Join(dir, "localhost.crt")]},
		entry{name: "localhost.key", mode: 0o644, data: read[filepath.Join(dir, "localhost.key")]},
		entry{name: "uploads", mode: 0o755, dir: true},
		entry{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")},
		entry{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n")},
		entry{name: "bin", mode: 0o755, dir: true},
		entry{name: "bin/busybox", mode: 0o755, data: read[busybox]})
	// Every applet, as the upstream image's busybox base has them (the
	// tests' shell lines use seq, nslookup, ...), but the AgnhostTools.
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return err
	}
	for _, a := range applets {
		if !slices.ContainsFunc(AgnhostTools, func(t [2]string) bool { return t[1] == "bin/"+a }) && a != "busybox" {
			entries = append(entries, entry{name: "bin/" + a, mode: 0o777, link: "busybox"})
		}
	}
	var files []string
	for _, tool := range AgnhostTools {
		data, err := os.ReadFile(tool[0])
		if err != nil {
			return fmt.Errorf("%s: %w (hack/conformance.sh installs dash, curl and netcat-openbsd)", tool[0], err)
		}
		entries = append(entries, entry{name: tool[1], mode: 0o755, data: data})
		libs, err := sharedLibs(tool[0])
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
