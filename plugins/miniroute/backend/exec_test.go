package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// TestExec runs stand-in iptables binaries (shell scripts in a directory of
// the test's own; no kernel is touched): what Save returns, what Restore
// passes on stdin and with which flags, the errors of a missing, failing and
// slow tool.
func TestExec(t *testing.T) {
	tests := []struct {
		name    string
		family  rules.Family
		tools   map[string]string // name → script body
		timeout time.Duration
		restore []byte
		want    string // Save's output, or the restore's recorded stdin and args
		wantErr string // "" for success
	}{
		{name: "save", family: rules.IPv4, tools: map[string]string{"iptables-save": `echo "*filter"`}, want: "*filter\n"},
		{name: "ip6tables save", family: rules.IPv6, tools: map[string]string{"ip6tables-save": `echo six`}, want: "six\n"},
		{name: "restore", family: rules.IPv4, restore: []byte("*nat\nCOMMIT\n"),
			tools: map[string]string{"iptables-restore": `echo "$@" >"$0.out"; cat >>"$0.out"`}, want: "--noflush --wait 30\n*nat\nCOMMIT\n"},
		{name: "save missing", family: rules.IPv4, tools: map[string]string{"iptables-restore": `true`},
			wantErr: "iptables-save not found in "},
		{name: "save fails", family: rules.IPv4, tools: map[string]string{"iptables-save": `echo "no nf_tables here" >&2; exit 1`},
			wantErr: "iptables-save: no nf_tables here"},
		{name: "save too slow", family: rules.IPv4, timeout: 50 * time.Millisecond, tools: map[string]string{"iptables-save": `exec sleep 5`},
			wantErr: "iptables-save did not finish within 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.tools {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			e := Exec{Family: tt.family, Dirs: []string{dir}, Timeout: tt.timeout}
			var got string
			var err error
			if tt.restore != nil {
				err = e.Restore(context.Background(), tt.restore)
				out, _ := os.ReadFile(filepath.Join(dir, "iptables-restore.out"))
				got = string(out)
			} else {
				var out []byte
				out, err = e.Save(context.Background())
				got = string(out)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestMissingTool: the error names the tool and only the directories
// searched when Dirs is set, and PATH first otherwise; an empty restore only
// looks the tool up.
func TestMissingTool(t *testing.T) {
	dir := t.TempDir()
	err := Exec{Family: rules.IPv6, Dirs: []string{dir}}.Restore(context.Background(), nil)
	var missing *MissingToolError
	if !errors.As(err, &missing) || missing.Tool != "ip6tables-restore" || strings.Join(missing.Searched, ",") != dir {
		t.Fatalf("Restore(nil) = %v, want a MissingToolError for ip6tables-restore searching only %s", err, dir)
	}
	t.Setenv("PATH", dir)
	_, err = New(rules.IPv4).lookPath("no-such-tool")
	if !errors.As(err, &missing) || missing.Searched[0] != "PATH" || len(missing.Searched) != 1+len(DefaultDirs()) {
		t.Fatalf("lookPath = %v, want PATH then %v searched", err, DefaultDirs())
	}
}
