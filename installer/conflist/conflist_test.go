package conflist

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func intp(i int) *int { return &i }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name     string
		template string // file under testdata, "" for DefaultTemplate
		pods     []string
		settings Settings
	}{
		{"default-ipv4", "", []string{"10.244.1.0/24"}, Settings{ClusterCIDRs: []string{"10.244.0.0/16"}}},
		{"default-template-cluster", "", []string{"172.18.7.0/24"}, Settings{}},
		{"default-settings", "", []string{"10.244.1.0/24"}, Settings{ClusterCIDRs: []string{"10.244.0.0/16"}, Bridge: "cni-br0", MTU: intp(1450)}},
		{"default-dualstack", "", []string{"fd00:10:244:1::/64", "10.244.1.0/24"}, Settings{ClusterCIDRs: []string{"10.244.0.0/16", "fd00:10:244::/56"}}},
		{"dualstack-keeps-unknown-keys", "dualstack.template", []string{"172.18.3.0/24", "fd00:172:18:3::/64"}, Settings{ClusterCIDRs: []string{"172.18.0.0/16", "fd00:172:18::/48"}, MTU: intp(0)}},
		{"dualstack-template-ipv6-only", "dualstack.template", []string{"fd00:172:18:3::/64"}, Settings{}},
		{"host-local-flat", "host-local-flat.template", []string{"172.18.9.0/24"}, Settings{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := DefaultTemplate
			if tt.template != "" {
				tmpl = readFile(t, filepath.Join("testdata", tt.template))
			}
			got, err := Render(tmpl, tt.pods, tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(string(readFile(t, golden)), string(got)); diff != "" {
				t.Errorf("rendered conflist differs from %s (-want +got; go test -update to accept):\n%s", golden, diff)
			}
			// The rendered file is what a runtime will parse: check it the
			// same way, independently of Render's own Validate.
			list, err := libcni.ConfListFromBytes(got)
			if err != nil {
				t.Fatal(err)
			}
			var ranges [][]Range
			for _, p := range list.Plugins {
				if p.Network.Type != "minibridge" {
					continue
				}
				var c struct {
					IPAM struct {
						Ranges [][]Range `json:"ranges"`
					} `json:"ipam"`
				}
				if err := json.Unmarshal(p.Bytes, &c); err != nil {
					t.Fatal(err)
				}
				ranges = c.IPAM.Ranges
				inj, err := libcni.InjectConf(p, map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bridge.LoadConf(inj.Bytes); err != nil {
					t.Errorf("minibridge refuses the rendered config: %v", err)
				}
			}
			if len(ranges) != len(tt.pods) {
				t.Fatalf("%d range sets, want %d (one per pod CIDR): %v", len(ranges), len(tt.pods), ranges)
			}
			for _, pod := range tt.pods {
				found := false
				for _, set := range ranges {
					found = found || (len(set) == 1 && set[0].Subnet == pod)
				}
				if !found {
					t.Errorf("pod CIDR %s has no range set of its own: %v", pod, ranges)
				}
			}
		})
	}
}

// TestDefaultTemplateIsTheRepositorys keeps the embedded template equal to
// the conflist the repository documents.
func TestDefaultTemplateIsTheRepositorys(t *testing.T) {
	repo := readFile(t, filepath.Join("..", "..", "conflist", "10-minicni.conflist"))
	if !bytes.Equal(repo, DefaultTemplate) {
		t.Errorf("installer/conflist/template.conflist differs from conflist/10-minicni.conflist; copy it over")
	}
}

// TestRenderRefusesNodeValues feeds values an attacker who can edit a Node
// object, or a typo, could put there.
func TestRenderRefusesNodeValues(t *testing.T) {
	cluster := Settings{ClusterCIDRs: []string{"10.0.0.0/8", "fd00::/8"}}
	tests := []struct {
		name string
		pods []string
		want string // in the error
	}{
		{"prefix too long", []string{"1.2.3.4/33"}, `"1.2.3.4/33"`},
		{"shell injection", []string{"10.0.0.0/24; rm -rf /"}, `"10.0.0.0/24; rm -rf /"`},
		{"command substitution", []string{"$(reboot)"}, `"$(reboot)"`},
		{"newline", []string{"10.0.0.0/24\n"}, `"10.0.0.0/24\n"`},
		{"json injection", []string{`10.0.0.0/24"}],"type":"../../bin/sh`}, `not a CIDR`},
		{"ipv6 typo", []string{"fd00::g/64"}, `"fd00::g/64"`},
		{"ipv6 triple colon", []string{"fd00:::/64"}, `"fd00:::/64"`},
		{"empty list", []string{}, "no podCIDR"},
		{"nil list", nil, "no podCIDR"},
		{"empty string", []string{""}, `""`},
		{"host bits", []string{"10.0.0.1/24"}, "host bits"},
		{"whole space", []string{"0.0.0.0/0"}, "every address"},
		{"too small", []string{"10.0.0.0/31"}, "too small"},
		{"two of a family", []string{"10.0.1.0/24", "10.0.2.0/24"}, "same IP family"},
		{"three", []string{"10.0.1.0/24", "fd00::/64", "10.0.2.0/24"}, "at most one per IP family"},
		{"ipv4-mapped", []string{"::ffff:10.0.0.0/120"}, "IPv4-mapped"},
		{"zone", []string{"fe80::%eth0/64"}, "not a CIDR"},
		{"loopback", []string{"127.0.0.0/8"}, "not a unicast"},
		{"not canonical", []string{"FD00::/64"}, "canonical"},
		{"outside cluster", []string{"192.168.0.0/24"}, "outside clusterCIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Render(DefaultTemplate, tt.pods, cluster)
			if err == nil {
				t.Fatalf("Render(%q) accepted it:\n%s", tt.pods, out)
			}
			if out != nil {
				t.Errorf("Render returned output along with the error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestRenderRefusesSettings(t *testing.T) {
	pods := []string{"10.244.1.0/24"}
	tests := []struct {
		name string
		s    Settings
		want string
	}{
		{"cluster not a cidr", Settings{ClusterCIDRs: []string{"10.244.0.0/16; true"}}, "not a CIDR"},
		{"cluster host bits", Settings{ClusterCIDRs: []string{"10.244.0.1/16"}}, "host bits"},
		{"bridge too long", Settings{ClusterCIDRs: []string{"10.244.0.0/16"}, Bridge: "a-very-long-bridge"}, "15"},
		{"bridge slash", Settings{ClusterCIDRs: []string{"10.244.0.0/16"}, Bridge: "a/b"}, "a/b"},
		{"mtu", Settings{ClusterCIDRs: []string{"10.244.0.0/16"}, MTU: intp(20)}, "mtu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Render(DefaultTemplate, pods, tt.s); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestValidateUsesEveryPluginsLoadConf gives templates that libcni accepts
// but one plugin's own loader refuses: Render must refuse them too.
func TestValidateUsesEveryPluginsLoadConf(t *testing.T) {
	pods := []string{"172.18.1.0/24"}
	tests := []struct {
		name, template, want string
	}{
		{"minibridge", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","hairpinMode":true,"promiscMode":true,"ipam":{"type":"miniipam"}}]}`, "promiscMode"},
		{"miniipam", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","ipam":{"type":"miniipam","dataDir":"relative/dir"}}]}`, "dataDir"},
		{"host-local", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","ipam":{"type":"host-local","routes":[{"dst":"nonsense"}]}}]}`, "nonsense"},
		{"miniroute", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","ipam":{"type":"miniipam"}},
			{"type":"miniroute","routes":[{"dst":"10.9.0.0/16"}]}]}`, "via"},
		{"other type", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","ipam":{"type":"miniipam"}},{"type":"../../bin/sh"}]}`, "../../bin/sh"},
		{"version", `{"cniVersion":"9.0.0","name":"minicni","plugins":[
			{"type":"minibridge","ipam":{"type":"miniipam"}}]}`, "9.0.0"},
		{"name", `{"cniVersion":"1.0.0","name":"../x","plugins":[
			{"type":"minibridge","ipam":{"type":"miniipam"}}]}`, "../x"},
		{"no ipam plugin", `{"cniVersion":"1.0.0","name":"minicni","plugins":[{"type":"portmap"}]}`, "exactly one"},
		{"not a conflist", `{"cniVersion":"1.0.0","name":"minicni","type":"minibridge"}`, "not a conflist"},
		{"duplicate key", `{"cniVersion":"1.0.0","name":"minicni","plugins":[
			{"type":"minibridge","type":"bridge","ipam":{"type":"miniipam"}}]}`, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Render([]byte(tt.template), pods, Settings{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTypes(t *testing.T) {
	out, err := Render(DefaultTemplate, []string{"172.18.1.0/24"}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Types(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"minibridge", "miniipam", "miniroute", "portmap"}, got); diff != "" {
		t.Errorf("Types (-want +got):\n%s", diff)
	}
}

// FuzzRender: whatever a Node says, Render either refuses it or produces a
// conflist that passes Validate and holds the value only in canonical form.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"10.244.1.0/24", "1.2.3.4/33", "10.0.0.0/24; rm -rf /", "fd00::g/64", "fd00:1::/64", `","x":"`} {
		f.Add(s)
	}
	cluster := Settings{ClusterCIDRs: []string{"10.0.0.0/8", "fd00::/8"}}
	f.Fuzz(func(t *testing.T, pod string) {
		out, err := Render(DefaultTemplate, []string{pod}, cluster)
		if err != nil {
			return
		}
		if err := Validate(out); err != nil {
			t.Fatalf("rendered %q but it does not validate: %v", pod, err)
		}
		if !bytes.Contains(out, []byte(`"subnet": "`+pod+`"`)) {
			t.Fatalf("accepted %q but it is not in the output verbatim:\n%s", pod, out)
		}
	})
}

// TestRenderAutoMTU: the overlay's MTU replaces an automatic mtu only,
// whether the template or the mtu setting says automatic.
func TestRenderAutoMTU(t *testing.T) {
	fixed := strings.Replace(string(DefaultTemplate), `"mtu": 0`, `"mtu": 9000`, 1)
	absent := strings.Replace(string(DefaultTemplate), `"mtu": 0,`, ``, 1)
	if fixed == string(DefaultTemplate) || absent == string(DefaultTemplate) {
		t.Fatal("the default template has no \"mtu\": 0 to replace")
	}
	tests := []struct {
		name     string
		template string
		s        Settings
		want     int
	}{
		{"template automatic", string(DefaultTemplate), Settings{AutoMTU: 1450}, 1450},
		{"template without mtu", absent, Settings{AutoMTU: 1450}, 1450},
		{"setting automatic", fixed, Settings{MTU: intp(0), AutoMTU: 1450}, 1450},
		{"template fixed", fixed, Settings{AutoMTU: 1450}, 9000},
		{"setting fixed", string(DefaultTemplate), Settings{MTU: intp(1400), AutoMTU: 1450}, 1400},
		{"no overlay", string(DefaultTemplate), Settings{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Render([]byte(tt.template), []string{"172.18.1.0/24"}, tt.s)
			if err != nil {
				t.Fatal(err)
			}
			list, err := libcni.ConfListFromBytes(out)
			if err != nil {
				t.Fatal(err)
			}
			var conf struct {
				MTU int `json:"mtu"`
			}
			if err := json.Unmarshal(list.Plugins[0].Bytes, &conf); err != nil {
				t.Fatal(err)
			}
			if conf.MTU != tt.want {
				t.Errorf("minibridge's mtu = %d, want %d", conf.MTU, tt.want)
			}
		})
	}
	if _, err := Render(DefaultTemplate, []string{"172.18.1.0/24"}, Settings{AutoMTU: 20}); err == nil || !strings.Contains(err.Error(), "overlay MTU") {
		t.Errorf("an overlay MTU of 20: %v", err)
	}
}

// TestRuntimeVersions: the versions Validate checks each plugin at, and the
// one libcni v1.3.1 (containerd 2.x's, and ours) runs the list at.
func TestRuntimeVersions(t *testing.T) {
	const plugins = `"name":"minicni","plugins":[{"type":"minibridge","ipam":{"type":"miniipam","subnet":"172.18.1.0/24"}}]`
	tests := []struct {
		name, list string
		want       []string
		libcni     string // the version libcni v1.3.1 picks
	}{
		{"default template", string(DefaultTemplate), []string{"1.0.0", "1.1.0"}, "1.1.0"},
		{"cniVersion only", `{"cniVersion":"1.0.0",` + plugins + `}`, []string{"1.0.0"}, "1.0.0"},
		{"duplicates", `{"cniVersion":"1.1.0","cniVersions":["1.1.0","0.4.0"],` + plugins + `}`, []string{"1.1.0", "0.4.0"}, "1.1.0"},
		{"no version", `{` + plugins + `}`, []string{""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RuntimeVersions([]byte(tt.list))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RuntimeVersions (-want +got):\n%s", diff)
			}
			list, err := libcni.ConfListFromBytes([]byte(tt.list))
			if err != nil {
				t.Fatal(err)
			}
			if list.CNIVersion != tt.libcni {
				t.Errorf("libcni runs the list at %q, want %q", list.CNIVersion, tt.libcni)
			}
			if err := Validate([]byte(tt.list)); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	for _, bad := range []struct{ name, list, want string }{
		{"unsupported entry", `{"cniVersion":"1.0.0","cniVersions":["1.0.0","9.0.0"],` + plugins + `}`, "9.0.0"},
		{"cniVersions alone", `{"cniVersions":["1.0.0","1.1.0"],` + plugins + `}`, "without cniVersion"},
		{"empty entry", `{"cniVersion":"1.0.0","cniVersions":[""],` + plugins + `}`, "empty"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := Render([]byte(bad.list), []string{"172.18.1.0/24"}, Settings{}); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("Render = %v, want an error mentioning %q", err, bad.want)
			}
		})
	}
}

// recordingExec is an invoke.Exec that runs nothing: it records each
// plugin's CNI_COMMAND and the cniVersion of its stdin, and answers success.
type recordingExec struct{ calls []string }

func (e *recordingExec) ExecPlugin(_ context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var conf struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, err
	}
	cmd := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			cmd = v
		}
	}
	e.calls = append(e.calls, fmt.Sprintf("%s %s %s", filepath.Base(pluginPath), cmd, conf.CNIVersion))
	return nil, nil
}

func (e *recordingExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (e *recordingExec) Decode(b []byte) (version.PluginInfo, error) {
	return version.PluginSupports(version.All.SupportedVersions()...), nil
}

// TestLibcniSendsGCAndStatus: with the installed conflist, libcni v1.3.1
// (containerd 2.x's) sends STATUS and GC to every plugin of the chain, at
// 1.1.0; without cniVersions (cniVersion 1.0.0 alone, as before) it sends
// neither.
func TestLibcniSendsGCAndStatus(t *testing.T) {
	rendered, err := Render(DefaultTemplate, []string{"172.18.1.0/24"}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(rendered, &top); err != nil {
		t.Fatal(err)
	}
	delete(top, "cniVersions")
	old, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		list []byte
		want []string
	}{
		{"installed conflist", rendered, []string{
			"minibridge STATUS 1.1.0", "miniroute STATUS 1.1.0", "portmap STATUS 1.1.0",
			"minibridge GC 1.1.0", "miniroute GC 1.1.0", "portmap GC 1.1.0"}},
		{"cniVersion 1.0.0 alone", old, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list, err := libcni.ConfListFromBytes(tt.list)
			if err != nil {
				t.Fatal(err)
			}
			e := &recordingExec{}
			cni := libcni.NewCNIConfigWithCacheDir([]string{"/fake"}, t.TempDir(), e)
			ctx := context.Background()
			if err := cni.GetStatusNetworkList(ctx, list); err != nil {
				t.Fatal(err)
			}
			if err := cni.GCNetworkList(ctx, list, &libcni.GCArgs{}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, e.calls); diff != "" {
				t.Errorf("plugin calls (-want +got):\n%s", diff)
			}
		})
	}
}
