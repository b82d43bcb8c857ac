package libmini

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

type testConf struct {
	NetConf
	Extra int `json:"extra"`
}

func code(t *testing.T, err error) uint {
	t.Helper()
	if err == nil {
		return 0
	}
	e, ok := AsCNIError(err)
	if !ok {
		t.Fatalf("error %v is not a *types.Error", err)
	}
	return e.Code
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		code  uint
		msg   string
	}{
		{"ok", `{"cniVersion":"1.0.0","name":"net1","type":"minibridge","extra":3,"unknown":true}`, 0, ""},
		{"no version means 0.1.0", `{"name":"net1","type":"x"}`, 0, ""},
		{"every version", `{"cniVersion":"0.2.0","name":"n"}`, 0, ""},
		{"1.1.0", `{"cniVersion":"1.1.0","name":"n"}`, 0, ""},
		{"bad json", `{"name":`, CodeDecode, "decode"},
		{"wrong type", `{"name":"n","extra":"x"}`, CodeDecode, "decode"},
		{"future version", `{"cniVersion":"9.9.9","name":"n"}`, CodeIncompatibleVersion, "9.9.9"},
		{"no name", `{"cniVersion":"1.0.0"}`, CodeInvalidConfig, "missing network name"},
		{"path in name", `{"cniVersion":"1.0.0","name":"../x"}`, CodeInvalidConfig, "../x"},
		{"slash in name", `{"cniVersion":"1.0.0","name":"a/b"}`, CodeInvalidConfig, "a/b"},
		{"bad type", `{"cniVersion":"1.0.0","name":"n","type":"../../bin/sh"}`, CodeInvalidConfig, "type"},
		{"bad ipam type", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"a/b"}}`, CodeInvalidConfig, "ipam.type"},
		{"dotdot ipam type", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":".."}}`, CodeInvalidConfig, "ipam.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConf
			err := Decode([]byte(tt.stdin), &c)
			if got := code(t, err); got != tt.code {
				t.Fatalf("code = %d, want %d (err %v)", got, tt.code, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
	var c testConf
	if err := Decode([]byte(`{"cniVersion":"1.0.0","name":"n","extra":7,"logFile":"/tmp/x"}`), &c); err != nil || c.Extra != 7 || c.LogFile != "/tmp/x" || c.Name != "n" {
		t.Errorf("Decode lost fields: %+v, %v", c, err)
	}
}

func TestValidateIfName(t *testing.T) {
	for name, ok := range map[string]bool{
		"eth0": true, "minicni0": true, "a": true, "123456789012345": true,
		"": false, "1234567890123456": false, ".": false, "..": false,
		"a/b": false, "a b": false, "a\tb": false, "a:b": false, "eth\n": false,
	} {
		if err := ValidateIfName("ifname", name); (err == nil) != ok {
			t.Errorf("ValidateIfName(%q) = %v, want ok=%v", name, err, ok)
		} else if err != nil && code(t, err) != CodeInvalidConfig {
			t.Errorf("ValidateIfName(%q) code %d", name, code(t, err))
		}
	}
}

func TestValidateIfNameAs(t *testing.T) {
	err := ValidateIfNameAs(CodeInvalidEnv, "CNI_IFNAME", "a/b")
	if code(t, err) != CodeInvalidEnv || err.Error() != `CNI_IFNAME "a/b" contains '/', ':' or whitespace` {
		t.Errorf("ValidateIfNameAs = %v (code %d)", err, code(t, err))
	}
	if err := ValidateIfNameAs(CodeInvalidEnv, "CNI_IFNAME", "eth0"); err != nil {
		t.Errorf("eth0: %v", err)
	}
	if err := ValidateIfName("bridge", ""); code(t, err) != CodeInvalidConfig || err.Error() != "bridge is empty" {
		t.Errorf("ValidateIfName empty = %v", err)
	}
}

func TestValidateMTU(t *testing.T) {
	for mtu, ok := range map[int]bool{0: true, 68: true, 1500: true, 9000: true, 65535: true, -1: false, 10: false, 67: false, 65536: false} {
		if err := ValidateMTU("mtu", mtu); (err == nil) != ok {
			t.Errorf("ValidateMTU(%d) = %v, want ok=%v", mtu, err, ok)
		}
	}
}

func TestWrapKeepsCNIError(t *testing.T) {
	orig := types.NewError(CodePoolExhausted, "full", "")
	if got := Wrap(orig, CodeIPAM, "ipam failed"); got != orig {
		t.Errorf("Wrap replaced a CNI error: %v", got)
	}
	if got := code(t, Wrap(errString("boom"), CodeLink, "link")); got != CodeLink {
		t.Errorf("Wrap code = %d", got)
	}
	if Wrap(nil, CodeLink, "x") != nil {
		t.Error("Wrap(nil) != nil")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPrevResult(t *testing.T) {
	for _, v := range Versions.SupportedVersions() {
		var c testConf
		stdin := `{"cniVersion":"` + v + `","name":"n","prevResult":{"cniVersion":"` + v + `","ips":[{"version":"4","address":"10.0.0.2/24"}],"ip4":{"ip":"10.0.0.2/24"}}}`
		if err := Decode([]byte(stdin), &c); err != nil {
			t.Fatalf("%s: decode: %v", v, err)
		}
		res, err := PrevResult(&c.NetConf)
		if err != nil {
			t.Fatalf("%s: PrevResult: %v", v, err)
		}
		if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.0.0.2/24" {
			t.Errorf("%s: prevResult IPs = %v", v, res.IPs)
		}
	}
	var c testConf
	if res, err := PrevResult(&c.NetConf); res != nil || err != nil {
		t.Errorf("no prevResult gave %v, %v", res, err)
	}
}

// TestPrevResultKeepsConf: PrevResult leaves its argument as it was, so a
// second call (CHECK reading the config twice) gets the same answer.
func TestPrevResultKeepsConf(t *testing.T) {
	var c testConf
	stdin := `{"cniVersion":"0.4.0","name":"n","prevResult":{"ips":[{"version":"4","address":"10.0.0.2/24"}]}}`
	if err := Decode([]byte(stdin), &c); err != nil {
		t.Fatal(err)
	}
	raw := string(c.RawPrev)
	for i := range 2 {
		res, err := PrevResult(&c.NetConf)
		if err != nil || res == nil || len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.0.0.2/24" {
			t.Fatalf("call %d: PrevResult = %v, %v", i+1, res, err)
		}
		if string(c.RawPrev) != raw || c.PrevResult != nil {
			t.Fatalf("call %d changed conf: raw %s, parsed %v", i+1, c.RawPrev, c.PrevResult)
		}
	}
	// A conf parsed already answers from PrevResult.
	parsed := c.NetConf
	parsed.RawPrev = nil
	parsed.PrevResult, _ = PrevResult(&c.NetConf)
	if res, err := PrevResult(&parsed); err != nil || res == nil || len(res.IPs) != 1 {
		t.Errorf("parsed conf: PrevResult = %v, %v", res, err)
	}
}

// TestPrevResultAsTheLibrary: PrevResult parses every prevResult as the CNI
// library's version.ParsePrevResult does, in every version, with and
// without the result's own cniVersion, and fails where it fails.
func TestPrevResultAsTheLibrary(t *testing.T) {
	results := []string{
		`{"cniVersion":"V","ips":[{"version":"4","address":"10.0.0.2/24","gateway":"10.0.0.1"}],"ip4":{"ip":"10.0.0.2/24"},"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.0.0.10"]}}`,
		`{"ips":[{"address":"10.0.0.2/24","interface":0}],"interfaces":[{"name":"eth0","sandbox":"/x"}],"ip4":{"ip":"10.0.0.2/24"}}`,
		`{"cniVersion":"V","ips":[{"address":"fd00::2/64"}],"ip6":{"ip":"fd00::2/64"}}`,
		`{"cniVersion":"9.9.9","ips":[]}`,
		`{"cniVersion":"V","ips":[{"address":"not an address"}]}`,
		`{}`,
		`null`,
	}
	for _, v := range Versions.SupportedVersions() {
		for _, r := range results {
			r = strings.ReplaceAll(r, `"V"`, `"`+v+`"`)
			stdin := []byte(`{"cniVersion":"` + v + `","name":"n","prevResult":` + r + `}`)
			var c testConf
			if err := Decode(stdin, &c); err != nil {
				t.Fatalf("%s %s: decode: %v", v, r, err)
			}
			got, gotErr := PrevResult(&c.NetConf)

			var lib types.PluginConf
			if err := json.Unmarshal(stdin, &lib); err != nil {
				t.Fatal(err)
			}
			var want *current.Result
			wantErr := cniversion.ParsePrevResult(&lib)
			if wantErr == nil && lib.PrevResult != nil {
				want, wantErr = current.NewResultFromResult(lib.PrevResult)
			}
			if (gotErr != nil) != (wantErr != nil) {
				t.Errorf("%s %s: error %v, the library's %v", v, r, gotErr, wantErr)
				continue
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s %s:\n got %s\nwant %s", v, r, g, w)
			}
		}
	}
}

// TestValidName: the hand-written check accepts exactly what namePattern
// matches.
func TestValidName(t *testing.T) {
	re := regexp.MustCompile(namePattern)
	for _, s := range []string{"", "a", "A", "0", "_", ".", "-", "a_b", "a.b-c", "0-", "-a", ".a", "_a", "a b", "a/b",
		"a:b", "é", "aé", "a\x00", "k8s-pod-network", "cbr0", "a..b", "Z9._-", "a\n"} {
		if got, want := validName(s), re.MatchString(s); got != want {
			t.Errorf("validName(%q) = %v, the pattern says %v", s, got, want)
		}
	}
	for i := 0; i < 2000; i++ { // every short string over a small alphabet
		var b []byte
		for n := i; n > 0; n /= 7 {
			b = append(b, "a0_.-/ "[n%7])
		}
		if got, want := validName(string(b)), re.MatchString(string(b)); got != want {
			t.Errorf("validName(%q) = %v, the pattern says %v", b, got, want)
		}
	}
}
