package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// hideSbin is the shell run (by unshare, in a private mount namespace) in
// front of the binary: empty tmpfs mounts over the sbin directories that
// backend.Exec searches after PATH, so the only iptables binaries the plugin
// can find are those of the test's PATH, as on a node without the iptables
// package. Nothing outside that namespace sees the mounts. $0 is the plugin,
// $1 mount(8) (PATH no longer finds it).
const hideSbin = `for d in /usr/sbin /sbin /usr/local/sbin; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then "$1" -t tmpfs -o size=1m,mode=0755 minicni-test "$d" || exit 99; fi
done
exec "$0"`

// runWithoutSbin runs c inside n like run, with the sbin directories hidden
// and PATH set to path.
func runWithoutSbin(t *testing.T, n ns.NetNS, c call, path string) result {
	t.Helper()
	var tools []string // absolute: PATH is the test's
	for _, name := range []string{"unshare", "sh", "mount"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tools = append(tools, p)
	}
	c.env = append(c.env, "PATH="+path)
	var r result
	err := n.Do(func(ns.NetNS) error {
		cmd := c.command()
		cmd.Args = []string{"unshare", "--mount", "--propagation", "private", tools[1], "-c", hideSbin, cmd.Path, tools[2]}
		cmd.Path = tools[0]
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		r = finish(t, cmd, &stdout, &stderr, cmd.Run())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// iptablesTools makes a directory holding a copy of the binary behind
// iptables-save (xtables-nft-multi on Debian 12) and, pointing at it, a
// symlink for each of tools: the multi-call binary picks its role from its
// name, and the copy stays reachable when the sbin directories are hidden.
func iptablesTools(t *testing.T, tools ...string) string {
	t.Helper()
	real, err := exec.LookPath("iptables-save")
	if err != nil {
		minitest.Skip(t, "iptables not installed: %v", err)
	}
	if real, err = filepath.EvalSymlinks(real); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	multi := filepath.Join(dir, filepath.Base(real))
	src, err := os.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(multi, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		if err := os.Symlink(filepath.Base(real), filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestStatusMissingTools: the binary's STATUS on a node where only some
// iptables binaries are installed (the sbin directories hidden, the tools
// given in PATH): 50 naming the first tool a family needs that is missing,
// the ip6tables pair only with an IPv6 clusterCIDR; success when every
// needed tool is there (it then runs iptables-save in the node's
// namespace).
func TestStatusMissingTools(t *testing.T) {
	const v4, dual = `,"clusterCIDR":"172.18.0.0/16"`, dualStack
	tests := []struct {
		name    string
		tools   []string
		extra   string
		missing string // "" when STATUS passes
	}{
		{"no iptables at all", nil, v4, "iptables-restore"},
		{"iptables-save missing", []string{"iptables-restore"}, v4, "iptables-save"},
		{"IPv4 pair, IPv4 cluster", []string{"iptables-restore", "iptables-save"}, v4, ""},
		{"IPv4 pair, dual-stack cluster", []string{"iptables-restore", "iptables-save"}, dual, "ip6tables-restore"},
		{"ip6tables-save missing", []string{"iptables-restore", "iptables-save", "ip6tables-restore"}, dual, "ip6tables-save"},
		{"both pairs, dual-stack cluster", []string{"iptables-restore", "iptables-save", "ip6tables-restore", "ip6tables-save"}, dual, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := minitest.NewNS(t)
			dir := iptablesTools(t, tt.tools...)
			stdin, _ := conf(t, "1.1.0", tt.extra, nil)
			r := runWithoutSbin(t, node, call{cmd: "STATUS", stdin: stdin}, dir)
			if tt.missing == "" {
				mustSucceed(t, r, "STATUS")
				return
			}
			if r.err == nil || r.err.Code != libmini.CodeNotAvailable {
				t.Fatalf("STATUS = %v, want code %d\nstderr: %s", r.err, libmini.CodeNotAvailable, r.stderr)
			}
			if !strings.HasPrefix(r.err.Msg, tt.missing+" is not installed") {
				t.Errorf("msg %q does not name %s", r.err.Msg, tt.missing)
			}
			if !strings.Contains(r.err.Details, tt.missing+" not found in PATH") {
				t.Errorf("details %q do not carry the underlying error", r.err.Details)
			}
		})
	}
}
