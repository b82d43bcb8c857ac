package libmini

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestDelegateRealExec runs a real delegated plugin (a shell script in
// CNI_PATH): its stdin, its environment with CNI_COMMAND replaced, its
// result, its CNI error and a failure that prints no error object.
func TestDelegateRealExec(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// ok keeps its stdin and answers with CNI_COMMAND as its DNS domain.
	script("ok", `cat >"$(dirname "$0")/stdin"; echo "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\"}],\"dns\":{\"domain\":\"$CNI_COMMAND\"}}"`)
	script("noversion", `cat >/dev/null; echo '{"ips":[{"address":"10.0.0.3/24"}]}'`)
	script("fails", `cat >/dev/null; echo '{"code":107,"msg":"full"}'; exit 1`)
	script("garbage", `cat >/dev/null; echo 'oops' >&2; exit 3`)
	t.Setenv("CNI_PATH", "/nonexistent"+string(os.PathListSeparator)+dir)
	t.Setenv("CNI_COMMAND", "DEL") // the caller's own verb must not leak through
	old := IPAMExec
	IPAMExec = nil
	t.Cleanup(func() { IPAMExec = old })
	ctx := context.Background()
	stdin := []byte(`{"cniVersion":"0.4.0","name":"n"}` + "\n")

	res, err := IPAMAdd(ctx, "ok", stdin)
	if err != nil {
		t.Fatal(err)
	}
	if res.DNS.Domain != "ADD" {
		t.Errorf("the plugin saw CNI_COMMAND=%q, want ADD", res.DNS.Domain)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "stdin")); err != nil || string(b) != string(stdin) {
		t.Errorf("the plugin read %q (%v), want %q", b, err, stdin)
	}
	res, err = IPAMAdd(ctx, "noversion", stdin)
	if err != nil {
		t.Fatal(err)
	}
	if res.IPs[0].Address.String() != "10.0.0.3/24" || res.CNIVersion != current.ImplementedSpecVersion {
		t.Errorf("result without cniVersion read as %+v", res)
	}
	if got := code(t, IPAMDel(ctx, "fails", stdin)); got != 107 {
		t.Errorf("the plugin's own error code: got %d, want 107", got)
	}
	err = IPAMDel(ctx, "garbage", stdin)
	if got := code(t, err); got != CodeIPAM || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failure without an error object: code %d, %v; want %d quoting its stderr", got, err, CodeIPAM)
	}
	if got := code(t, IPAMDel(ctx, "missing", stdin)); got != CodeIPAM {
		t.Errorf("a plugin not in CNI_PATH: code %d, want %d", got, CodeIPAM)
	}
}

func TestFindInPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p"), nil, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, plugin string
		paths        []string
		want         string // "" means an error
	}{
		{"found", "p", []string{"/nonexistent", dir}, filepath.Join(dir, "p")},
		{"a directory is not a plugin", "d", []string{dir}, ""},
		{"path separator refused", "../" + filepath.Base(dir) + "/p", []string{dir}, ""},
		{"empty name", "", []string{dir}, ""},
		{"no paths", "p", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindInPath(tt.plugin, tt.paths)
			if (err != nil) != (tt.want == "") || got != tt.want {
				t.Errorf("FindInPath(%q) = %q, %v; want %q", tt.plugin, got, err, tt.want)
			}
		})
	}
}
