package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minicni/minicni/libmini"
)

// TestBadInput runs the real binary with broken configs and environments:
// each must print a CNI error with the right code on stdout, exit 1, and
// leave nothing on disk.
func TestBadInput(t *testing.T) {
	good := `{"subnet":"10.30.0.0/24"}`
	tests := []struct {
		name  string
		c     func(dataDir string) call
		code  uint
		inMsg string // part of msg+details naming the offending value ("" = any)
	}{
		{"bad JSON", func(d string) call { return call{cmd: "ADD", id: "c1", stdin: `{"cniVersion":`} }, libmini.CodeDecode, ""},
		{"empty stdin", func(d string) call { return call{cmd: "ADD", id: "c1", stdin: ``} }, libmini.CodeDecode, ""},
		{"ranges of the wrong type", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":{"subnet":"10.0.0.0/24"}}`)}
		}, libmini.CodeDecode, ""},
		{"no ipam", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: `{"cniVersion":"1.0.0","name":"net","type":"miniipam"}`}
		}, libmini.CodeInvalidConfig, "ranges"},
		{"no ranges", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":[]}`)}
		}, libmini.CodeInvalidConfig, "ranges"},
		{"empty range set", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":[[]]}`)}
		}, libmini.CodeInvalidConfig, "ranges[0]"},
		{"bad CIDR", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/33"}`)}
		}, libmini.CodeInvalidConfig, "10.30.0.0/33"},
		{"not a CIDR", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":[[{"subnet":"banana"}]]}`)}
		}, libmini.CodeInvalidConfig, "banana"},
		{"host bits set", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.7/24"}`)}
		}, libmini.CodeInvalidConfig, "10.30.0.7/24"},
		{"v4 /31", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/31"}`)}
		}, libmini.CodeInvalidConfig, "10.30.0.0/31"},
		{"v6 /127", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"fd30::/127"}`)}
		}, libmini.CodeInvalidConfig, "fd30::/127"},
		{"rangeStart outside the subnet", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/24","rangeStart":"10.31.0.1"}`)}
		}, libmini.CodeInvalidConfig, "10.31.0.1"},
		{"rangeStart after rangeEnd", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/24","rangeStart":"10.30.0.50","rangeEnd":"10.30.0.40"}`)}
		}, libmini.CodeInvalidConfig, "10.30.0.50"},
		{"gateway outside the subnet", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/24","gateway":"10.99.0.1"}`)}
		}, libmini.CodeInvalidConfig, "10.99.0.1"},
		{"mixed families in a set", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":[[{"subnet":"10.30.0.0/24"},{"subnet":"fd30::/64"}]]}`)}
		}, libmini.CodeInvalidConfig, "fd30::/64"},
		{"overlapping sets", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"ranges":[[{"subnet":"10.30.0.0/24"}],[{"subnet":"10.30.0.128/25"}]]}`)}
		}, libmini.CodeInvalidConfig, "10.30.0.128/25"},
		{"relative dataDir", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: `{"cniVersion":"1.0.0","name":"net","ipam":{"type":"miniipam","subnet":"10.30.0.0/24","dataDir":"rel/dir"}}`}
		}, libmini.CodeInvalidConfig, "rel/dir"},
		{"network name ../x", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: strings.Replace(netConf("1.0.0", "miniipam", d, good), `"name":"net"`, `"name":"../x"`, 1)}
		}, libmini.CodeInvalidConfig, "../x"},
		{"missing network name", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: strings.Replace(netConf("1.0.0", "miniipam", d, good), `"name":"net",`, ``, 1)}
		}, libmini.CodeInvalidConfig, "name"},
		{"container ID with a slash", func(d string) call {
			return call{cmd: "ADD", id: "../c1", stdin: netConf("1.0.0", "miniipam", d, good)}
		}, libmini.CodeInvalidEnv, "../c1"},
		{"16-byte ifname", func(d string) call {
			return call{cmd: "ADD", id: "c1", ifname: "eth0123456789abc", stdin: netConf("1.0.0", "miniipam", d, good)}
		}, libmini.CodeInvalidEnv, ""},
		{"ifname with a slash", func(d string) call {
			return call{cmd: "DEL", id: "c1", ifname: "eth/0", stdin: netConf("1.0.0", "miniipam", d, good)}
		}, libmini.CodeInvalidEnv, ""},
		{"cniVersion 9.9.9", func(d string) call { return call{cmd: "ADD", id: "c1", stdin: netConf("9.9.9", "miniipam", d, good)} }, libmini.CodeIncompatibleVersion, "9.9.9"},
		{"missing CNI_COMMAND", func(d string) call { return call{cmd: "", id: "c1", stdin: netConf("1.0.0", "miniipam", d, good)} }, libmini.CodeInvalidEnv, "CNI_COMMAND"},
		{"unknown CNI_COMMAND", func(d string) call { return call{cmd: "FROB", id: "c1", stdin: netConf("1.0.0", "miniipam", d, good)} }, libmini.CodeInvalidEnv, "FROB"},
		{"missing CNI_CONTAINERID", func(d string) call { return call{cmd: "ADD", stdin: netConf("1.0.0", "miniipam", d, good)} }, libmini.CodeInvalidEnv, "CNI_CONTAINERID"},
		{"missing CNI_PATH", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, good), env: map[string]string{"CNI_PATH": ""}}
		}, libmini.CodeInvalidEnv, "CNI_PATH"},
		{"CNI_ARGS IP not an address", func(d string) call {
			return call{cmd: "ADD", id: "c1", args: "IgnoreUnknown=1;IP=10.30.0.300", stdin: netConf("1.0.0", "miniipam", d, good)}
		}, libmini.CodeInvalidEnv, "10.30.0.300"},
		{"static address outside the ranges", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, good, `"runtimeConfig":{"ips":["10.31.0.5"]}`)}
		}, libmini.CodeInvalidConfig, "10.31.0.5"},
		{"missing resolvConf", func(d string) call {
			return call{cmd: "ADD", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/24","resolvConf":"/nonexistent/resolv.conf"}`)}
		}, libmini.CodeInvalidConfig, "/nonexistent/resolv.conf"},
		{"CHECK in 0.3.1", func(d string) call { return call{cmd: "CHECK", id: "c1", stdin: netConf("0.3.1", "miniipam", d, good)} }, libmini.CodeIncompatibleVersion, ""},
		{"GC in 1.0.0", func(d string) call {
			return call{cmd: "GC", stdin: netConf("1.0.0", "miniipam", d, good, `"cni.dev/valid-attachments":[]`)}
		}, libmini.CodeIncompatibleVersion, ""},
		{"GC without valid-attachments", func(d string) call { return call{cmd: "GC", stdin: netConf("1.1.0", "miniipam", d, good)} }, libmini.CodeInvalidConfig, "valid-attachments"},
		{"DEL with an invalid config", func(d string) call {
			return call{cmd: "DEL", id: "c1", stdin: netConf("1.0.0", "miniipam", d, `{"subnet":"10.30.0.0/24","gateway":"10.30.1.1"}`)}
		}, libmini.CodeInvalidConfig, "10.30.1.1"},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dataDir := filepath.Join(parent, "data")
			c := tt.c(dataDir)
			o := runPlugin(t, c)
			wantError(t, tt.name, o, tt.code)
			if e := o.cniError(); tt.inMsg != "" && !strings.Contains(e.Msg+" "+e.Details, tt.inMsg) {
				t.Errorf("error %q (%s) does not mention %q", e.Msg, e.Details, tt.inMsg)
			}
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("a failed command left %v on disk", entries[0].Name())
			}
		})
	}
}

// TestAbout: run by hand, without any CNI variable, the binary says what it
// is and exits 0 (skel's behaviour), unlike a runtime that forgot the
// command (TestBadInput).
func TestAbout(t *testing.T) {
	o := runPlugin(t, call{env: map[string]string{"CNI_NETNS": "", "CNI_PATH": "", "CNI_IFNAME": ""}})
	if o.exit != 0 || !strings.Contains(string(o.stderr), "miniipam") || len(o.stdout) != 0 {
		t.Errorf("about: %s", o)
	}
	v := mustOK(t, call{cmd: "VERSION"})
	if !strings.Contains(string(v.stdout), `"1.1.0"`) || !strings.Contains(string(v.stdout), `"0.1.0"`) {
		t.Errorf("VERSION: %s", v.stdout)
	}
}
