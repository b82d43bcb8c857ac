package libmini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestMain turns the test binary into a plugin when LIBMINI_TEST_PLUGIN is
// set, so PluginMain is tested as a process, the way a runtime runs it.
func TestMain(m *testing.M) {
	if os.Getenv("LIBMINI_TEST_PLUGIN") != "" {
		testPlugin()
		return
	}
	os.Exit(m.Run())
}

// testPlugin's verbs: ADD prints the stdin it was handed back as a result
// (so the test sees the verb got exactly what PluginMain read), and fails as
// $FAIL says: "cni" a CNI error 107, "plain" a plain error.
func testPlugin() {
	fail := func() error {
		switch os.Getenv("FAIL") {
		case "cni":
			return types.NewError(CodeCheckFailed, "drift", "eth0 is down")
		case "plain":
			return errors.New("something broke")
		}
		return nil
	}
	verb := func(args *CmdArgs) error { return fail() }
	PluginMain(Verbs{
		Add: func(args *CmdArgs) error {
			if err := fail(); err != nil {
				return err
			}
			_, err := fmt.Fprintf(os.Stdout, `{"stdin":%q,"args":%q}`, args.StdinData,
				strings.Join([]string{args.ContainerID, args.Netns, args.IfName, args.Args, args.Path, args.NetnsOverride}, "|"))
			return err
		},
		Del: verb, Check: verb, Status: verb, // GC left nil: refused
	}, "testplugin v0")
}

// runTestPlugin runs the test binary as the plugin with exactly env.
func runTestPlugin(t *testing.T, stdin string, env ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"LIBMINI_TEST_PLUGIN=1"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), exit
}

func TestPluginMain(t *testing.T) {
	addEnv := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin"}
	conf := func(ver string) string { return `{"cniVersion":"` + ver + `","name":"n","type":"testplugin"}` }
	tests := []struct {
		name  string
		stdin string
		env   []string
		want  *ErrorObject // nil: success
		args  string       // ADD's CmdArgs, '|'-joined
	}{
		{"ADD gets stdin", conf("0.4.0"), addEnv, nil, "c1|/run/netns/none|eth0||/opt/cni/bin|"},
		{"ADD gets every variable", conf("1.1.0"), append(addEnv, "CNI_ARGS=K8S_POD_NAME=p;A=b", "CNI_NETNS_OVERRIDE=1"), nil,
			"c1|/run/netns/none|eth0|K8S_POD_NAME=p;A=b|/opt/cni/bin|1"},
		{"a verb the plugin lacks", conf("1.1.0"), []string{"CNI_COMMAND=GC", "CNI_PATH=/x"},
			&ErrorObject{"1.1.0", CodeInvalidEnv, "CNI_COMMAND GC is not implemented by this plugin", ""}, ""},
		{"verb's CNI error in the config's version", conf("0.3.1"), append(addEnv, "FAIL=cni"),
			&ErrorObject{"0.3.1", CodeCheckFailed, "drift", "eth0 is down"}, ""},
		{"plain error is 999, details present", conf("1.0.0"), append(addEnv, "FAIL=plain"),
			&ErrorObject{"1.0.0", types.ErrInternal, "something broke", ""}, ""},
		{"no cniVersion means 0.1.0", `{"name":"n"}`, append(addEnv, "FAIL=cni"),
			&ErrorObject{"0.1.0", CodeCheckFailed, "drift", "eth0 is down"}, ""},
		{"runtime forgot CNI_COMMAND", conf("0.2.0"), addEnv[1:],
			&ErrorObject{"0.2.0", CodeInvalidEnv, "CNI_COMMAND is not set", "want one of ADD, DEL, CHECK, GC, STATUS, VERSION"}, ""},
		{"missing variables, all named", conf("1.1.0"), []string{"CNI_COMMAND=ADD", "CNI_NETNS=/x"},
			&ErrorObject{"1.1.0", CodeInvalidEnv, "required environment variables not set: CNI_CONTAINERID, CNI_IFNAME, CNI_PATH",
				"CNI_COMMAND=ADD needs CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH"}, ""},
		{"env error with an unsupported version", `{"cniVersion":"2.0.0","name":"n"}`, []string{"CNI_COMMAND=GC"},
			&ErrorObject{"1.1.0", CodeInvalidEnv, "required environment variables not set: CNI_PATH", "CNI_COMMAND=GC needs CNI_PATH"}, ""},
		{"unsupported version", `{"cniVersion":"2.0.0","name":"n"}`, addEnv,
			&ErrorObject{"1.1.0", CodeIncompatibleVersion, `unsupported cniVersion "2.0.0"`, "supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"}, ""},
		{"STATUS in 1.0.0", conf("1.0.0"), []string{"CNI_COMMAND=STATUS", "CNI_PATH=/x"},
			&ErrorObject{"1.0.0", CodeIncompatibleVersion, "CNI_COMMAND STATUS is not part of cniVersion 1.0.0", "STATUS exists from CNI 1.1.0 on"}, ""},
		{"STATUS in 1.1.0", conf("1.1.0"), []string{"CNI_COMMAND=STATUS", "CNI_PATH=/x"}, nil, ""},
		{"DEL without CNI_NETNS", conf("1.0.0"), []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", "CNI_PATH=/x"}, nil, ""},
		{"empty stdin", "", addEnv,
			&ErrorObject{"1.1.0", CodeDecode, "no network configuration on stdin", "the runtime must pass the network configuration as JSON on stdin"}, ""},
		{"bad JSON", `{"cniVersion":"1.0.0","name":`, addEnv,
			&ErrorObject{"1.1.0", CodeDecode, "failed to decode the network configuration", "unexpected end of JSON input"}, ""},
		{"no name", `{"cniVersion":"1.0.0"}`, addEnv,
			&ErrorObject{"1.0.0", CodeInvalidConfig, "missing network name", `the network configuration has no "name"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, exit := runTestPlugin(t, tt.stdin, tt.env...)
			if tt.want == nil {
				var got struct{ Stdin, Args string }
				if exit != 0 || json.Unmarshal([]byte(stdout), &got) != nil && stdout != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q", exit, stdout, stderr)
				}
				if stdout != "" && got.Stdin != tt.stdin {
					t.Errorf("the verb got stdin %q, want %q", got.Stdin, tt.stdin)
				}
				if stdout != "" && got.Args != tt.args {
					t.Errorf("the verb got CNI variables %q, want %q", got.Args, tt.args)
				}
				return
			}
			if exit != 1 {
				t.Fatalf("exit %d, want 1; stdout %q, stderr %q", exit, stdout, stderr)
			}
			var keys map[string]any
			if err := json.Unmarshal([]byte(stdout), &keys); err != nil || len(keys) != 4 {
				t.Fatalf("stdout is not a 4-key object (%v): %s", err, stdout)
			}
			var got ErrorObject
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			if got != *tt.want {
				t.Errorf("error object\n got %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

// TestPluginMainAbout: run by hand without any CNI variable, the plugin
// says what it is and exits 0; VERSION answers without reading stdin.
func TestPluginMainAbout(t *testing.T) {
	stdout, stderr, exit := runTestPlugin(t, "")
	if exit != 0 || stdout != "" || !strings.Contains(stderr, "testplugin v0") || !strings.Contains(stderr, "1.1.0") {
		t.Errorf("about: exit %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
	stdout, _, exit = runTestPlugin(t, "", "CNI_COMMAND=VERSION")
	if exit != 0 || !strings.Contains(stdout, `"supportedVersions":["0.1.0"`) {
		t.Errorf("VERSION: exit %d, stdout %q", exit, stdout)
	}
}

func TestCheckEnv(t *testing.T) {
	self := "/proc/self/ns/net"
	tests := []struct {
		name string
		env  map[string]string
		vars string // the variable named, "" for no error
	}{
		{"ADD ok", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/p", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=a=b;"}, ""},
		{"DEL without netns ok", map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, ""},
		{"GC ok", map[string]string{"CNI_COMMAND": "GC", "CNI_PATH": "/p", "CNI_IFNAME": "not/checked"}, ""},
		{"VERSION ok", map[string]string{"CNI_COMMAND": "VERSION"}, ""},
		{"no command", map[string]string{"CNI_PATH": "/p"}, "CNI_COMMAND"},
		{"unknown command", map[string]string{"CNI_COMMAND": "Add"}, "CNI_COMMAND"},
		{"ADD missing netns", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, "CNI_NETNS"},
		{"CHECK bad id", map[string]string{"CNI_COMMAND": "CHECK", "CNI_CONTAINERID": "a b", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, "CNI_CONTAINERID"},
		{"DEL bad ifname", map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "a:b", "CNI_PATH": "/p"}, "CNI_IFNAME"},
		{"ifname with NUL", map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "a\x00", "CNI_PATH": "/p"}, "CNI_IFNAME"},
		{"ifname with a unicode space", map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "a\u00a0b", "CNI_PATH": "/p"}, "CNI_IFNAME"},
		{"bad args", map[string]string{"CNI_COMMAND": "STATUS", "CNI_PATH": "/p", "CNI_ARGS": "a=1;b"}, "CNI_ARGS"},
		{"own netns on ADD", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": self, "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, "CNI_NETNS"},
		{"own netns with override", map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": self, "CNI_IFNAME": "eth0", "CNI_PATH": "/p", "CNI_NETNS_OVERRIDE": "true"}, ""},
		{"own netns on CHECK", map[string]string{"CNI_COMMAND": "CHECK", "CNI_CONTAINERID": "c1", "CNI_NETNS": self, "CNI_IFNAME": "eth0", "CNI_PATH": "/p"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckEnv(func(k string) string { return tt.env[k] })
			if tt.vars == "" {
				if err != nil {
					t.Fatalf("CheckEnv = %v", err)
				}
				return
			}
			e, ok := AsCNIError(err)
			if !ok || e.Code != CodeInvalidEnv || !strings.Contains(e.Msg, tt.vars) || e.Details == "" {
				t.Errorf("CheckEnv = %#v, want code 4 naming %s, with details", err, tt.vars)
			}
		})
	}
}

func TestNewestVersion(t *testing.T) {
	if got := NewestVersion(); got != "1.1.0" {
		t.Errorf("NewestVersion() = %s", got)
	}
}

func TestPrintError(t *testing.T) {
	var b bytes.Buffer
	if err := PrintError(&b, types.NewError(7, "bad", ""), "0.4.0"); err != nil {
		t.Fatal(err)
	}
	want := "{\n    \"cniVersion\": \"0.4.0\",\n    \"code\": 7,\n    \"msg\": \"bad\",\n    \"details\": \"\"\n}\n"
	if b.String() != want {
		t.Errorf("PrintError wrote %q, want %q", b.String(), want)
	}
}
