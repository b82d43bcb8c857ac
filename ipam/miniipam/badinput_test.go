package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// TestBadInput runs the real binary with broken configs and environments,
// the ones every plugin refuses (minitest.CommonBadInputs) and miniipam's
// own, in every CNI version: each must print the whole CNI error object and
// exit 1, and change nothing in the namespaces or the data directory.
func TestBadInput(t *testing.T) {
	good := `{"subnet":"10.30.0.0/24"}`
	ipam := func(body string, extra ...string) func(*minitest.Run) string {
		return func(r *minitest.Run) string { return netConf(r.Ver, "miniipam", r.DataDir, body, extra...) }
	}
	cases := []minitest.BadInput{
		{Name: "ranges of the wrong type", Conf: ipam(`{"ranges":{"subnet":"10.0.0.0/24"}}`), Code: libmini.CodeDecode, Mention: []string{"ranges"}},
		{Name: "no ipam", Conf: func(r *minitest.Run) string {
			return `{"cniVersion":"` + r.Ver + `","name":"net","type":"miniipam"}`
		}, Code: libmini.CodeInvalidConfig, Mention: []string{"ranges"}},
		{Name: "no ranges", Conf: ipam(`{"ranges":[]}`), Code: libmini.CodeInvalidConfig, Mention: []string{"ranges"}},
		{Name: "empty range set", Conf: ipam(`{"ranges":[[]]}`), Code: libmini.CodeInvalidConfig, Mention: []string{"ranges[0]"}},
		{Name: "bad CIDR", Conf: ipam(`{"subnet":"10.30.0.0/33"}`), Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.0.0/33"}},
		{Name: "not a CIDR", Conf: ipam(`{"ranges":[[{"subnet":"banana"}]]}`), Code: libmini.CodeInvalidConfig, Mention: []string{"banana"}},
		{Name: "host bits set", Conf: ipam(`{"subnet":"10.30.0.7/24"}`), Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.0.7/24"}},
		{Name: "v4 /31", Conf: ipam(`{"subnet":"10.30.0.0/31"}`), Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.0.0/31"}},
		{Name: "v6 /127", Conf: ipam(`{"subnet":"fd30::/127"}`), Code: libmini.CodeInvalidConfig, Mention: []string{"fd30::/127"}},
		{Name: "rangeStart outside the subnet", Conf: ipam(`{"subnet":"10.30.0.0/24","rangeStart":"10.31.0.1"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.31.0.1"}},
		{Name: "rangeStart after rangeEnd", Conf: ipam(`{"subnet":"10.30.0.0/24","rangeStart":"10.30.0.50","rangeEnd":"10.30.0.40"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.0.50"}},
		{Name: "gateway outside the subnet", Conf: ipam(`{"subnet":"10.30.0.0/24","gateway":"10.99.0.1"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.99.0.1"}},
		{Name: "mixed families in a set", Conf: ipam(`{"ranges":[[{"subnet":"10.30.0.0/24"},{"subnet":"fd30::/64"}]]}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"fd30::/64"}},
		{Name: "overlapping sets", Conf: ipam(`{"ranges":[[{"subnet":"10.30.0.0/24"}],[{"subnet":"10.30.0.128/25"}]]}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.0.128/25"}},
		{Name: "relative dataDir", Conf: func(r *minitest.Run) string {
			return `{"cniVersion":"` + r.Ver + `","name":"net","ipam":{"type":"miniipam","subnet":"10.30.0.0/24","dataDir":"rel/dir"}}`
		}, Code: libmini.CodeInvalidConfig, Mention: []string{"rel/dir"}},
		{Name: "CNI_ARGS IP not an address", Env: minitest.SetEnv("CNI_ARGS", "IgnoreUnknown=1;IP=10.30.0.300"), Conf: ipam(good),
			Code: libmini.CodeInvalidEnv, Var: "CNI_ARGS", Mention: []string{"10.30.0.300"}},
		{Name: "static address outside the ranges", Conf: ipam(good, `"runtimeConfig":{"ips":["10.31.0.5"]}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.31.0.5"}},
		{Name: "missing resolvConf", Conf: ipam(`{"subnet":"10.30.0.0/24","resolvConf":"/nonexistent/resolv.conf"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"/nonexistent/resolv.conf"}},
		{Name: "lockTimeout not a duration", Conf: ipam(`{"subnet":"10.30.0.0/24","lockTimeout":"soon"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"ipam.lockTimeout", "soon"}},
		{Name: "lockTimeout zero", Conf: ipam(`{"subnet":"10.30.0.0/24","lockTimeout":"0s"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"ipam.lockTimeout", "more than 0"}},
		{Name: "lockTimeout too long", Conf: ipam(`{"subnet":"10.30.0.0/24","lockTimeout":"3m"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"ipam.lockTimeout", "at most 2m0s"}},
		{Name: "lockTimeout a number", Conf: ipam(`{"subnet":"10.30.0.0/24","lockTimeout":30}`),
			Code: libmini.CodeDecode, Mention: []string{"lockTimeout"}},
		{Name: "GC without valid-attachments", Cmd: "GC", Conf: ipam(good), Versions: minitest.From("1.1.0"),
			Code: libmini.CodeInvalidConfig, Mention: []string{"valid-attachments"}},
		{Name: "DEL with an invalid config", Cmd: "DEL", Conf: ipam(`{"subnet":"10.30.0.0/24","gateway":"10.30.1.1"}`),
			Code: libmini.CodeInvalidConfig, Mention: []string{"10.30.1.1"}},
	}
	minitest.Harness{
		Bin:  filepath.Join(binDir, "miniipam"),
		Good: ipam(good),
	}.Check(t, append(minitest.CommonBadInputs(), cases...))
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
