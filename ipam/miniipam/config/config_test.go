package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
)

// summary is the part of a loaded config the tests compare, as strings.
type summary struct {
	Version     string
	Sets        [][]string // "subnet start-end gw"
	Requested   []string
	Routes      []string
	DataDir     string
	LogFile     string
	Attachments []string
	HasAttach   bool
}

func summarize(c *NetConf) summary {
	s := summary{Version: c.CNIVersion, DataDir: c.DataDir, LogFile: c.LogFile, HasAttach: c.HasAttachments}
	for _, set := range c.Sets {
		var rs []string
		for _, r := range set {
			rs = append(rs, fmt.Sprintf("%s %s-%s %s", r.Subnet, r.Start, r.End, r.Gateway))
		}
		s.Sets = append(s.Sets, rs)
	}
	for _, a := range c.Requested {
		if a.IsValid() {
			s.Requested = append(s.Requested, a.String())
		} else {
			s.Requested = append(s.Requested, "-")
		}
	}
	for _, r := range c.Routes {
		s.Routes = append(s.Routes, r.String())
	}
	for _, a := range c.Attachments {
		s.Attachments = append(s.Attachments, a.ContainerID+"/"+a.IfName)
	}
	return s
}

func TestLoadConf(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		envArgs string
		want    summary
	}{{
		name: "ranges with defaults",
		conf: `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"miniipam","ranges":[[{"subnet":"10.1.2.0/24"}]]}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}},
			Requested: []string{"-"}, DataDir: DefaultDataDir},
	}, {
		name: "flat legacy keys",
		conf: `{"cniVersion":"0.3.1","name":"n","ipam":{"subnet":"10.1.0.0/16","rangeStart":"10.1.5.10","rangeEnd":"10.1.5.20","gateway":"10.1.0.254"}}`,
		want: summary{Version: "0.3.1", Sets: [][]string{{"10.1.0.0/16 10.1.5.10-10.1.5.20 10.1.0.254"}},
			Requested: []string{"-"}, DataDir: DefaultDataDir},
	}, {
		name: "order: runtimeConfig.ipRanges, flat, ranges",
		conf: `{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"ipRanges":[[{"subnet":"10.3.0.0/24"}]]},
			"ipam":{"subnet":"10.1.0.0/24","ranges":[[{"subnet":"fd00::/120"}]]}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{
			{"10.3.0.0/24 10.3.0.1-10.3.0.254 10.3.0.1"},
			{"10.1.0.0/24 10.1.0.1-10.1.0.254 10.1.0.1"},
			{"fd00::/120 fd00::1-fd00::ff fd00::1"},
		}, Requested: []string{"-", "-", "-"}, DataDir: DefaultDataDir},
	}, {
		name: "network and broadcast are never in a range",
		conf: `{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.0","rangeEnd":"10.1.2.255","gateway":"10.1.2.254"}],
			[{"subnet":"fd00::/64","rangeStart":"fd00::"}]]}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{
			{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.254"},
			{"fd00::/64 fd00::1-fd00::ffff:ffff:ffff:ffff fd00::1"},
		}, Requested: []string{"-", "-"}, DataDir: DefaultDataDir},
	}, {
		name: "two ranges in one set, IPv4-mapped addresses unmapped",
		conf: `{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24","rangeEnd":"::ffff:10.1.2.9"},{"subnet":"10.1.3.0/24"}]]}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.9 10.1.2.1", "10.1.3.0/24 10.1.3.1-10.1.3.254 10.1.3.1"}},
			Requested: []string{"-"}, DataDir: DefaultDataDir},
	}, {
		name:    "static requests from CNI_ARGS, args and runtimeConfig",
		conf:    `{"cniVersion":"1.0.0","name":"n","args":{"cni":{"ips":["fd00::9/64"]}},"runtimeConfig":{"ips":["10.1.2.7"]},"ipam":{"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"fd00::/64"}]]}}`,
		envArgs: "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.2.7;K8S_POD_NAMESPACE=ns",
		want: summary{Version: "1.0.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}, {"fd00::/64 fd00::1-fd00::ffff:ffff:ffff:ffff fd00::1"}},
			Requested: []string{"10.1.2.7", "fd00::9"}, DataDir: DefaultDataDir},
	}, {
		name: "routes, dataDir, logFile, missing version",
		conf: `{"name":"n","logFile":"/top.log","ipam":{"logFile":"/ipam.log","dataDir":"/run/x/../ipam/","subnet":"10.1.2.0/24",
			"routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.2.1","mtu":1400}]}}`,
		want: summary{Version: "0.1.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			Routes:  []string{"{Dst:{IP:0.0.0.0 Mask:00000000} GW:<nil> MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}", "{Dst:{IP:192.168.0.0 Mask:ffff0000} GW:10.1.2.1 MTU:1400 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}"},
			DataDir: "/run/ipam", LogFile: "/ipam.log"},
	}, {
		name: "top-level logFile when ipam has none",
		conf: `{"cniVersion":"1.0.0","name":"n","logFile":"/top.log","ipam":{"subnet":"10.1.2.0/24"}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			DataDir: DefaultDataDir, LogFile: "/top.log"},
	}, {
		name: "GC list",
		conf: `{"cniVersion":"1.1.0","name":"n","ipam":{"subnet":"10.1.2.0/24"},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"b","ifname":"eth0"}]}`,
		want: summary{Version: "1.1.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			DataDir: DefaultDataDir, Attachments: []string{"a/eth0"}, HasAttach: true},
	}, {
		name: "GC list under the older key",
		conf: `{"cniVersion":"1.1.0","name":"n","ipam":{"subnet":"10.1.2.0/24"},"cni.dev/attachments":[{"containerID":"b","ifname":"eth1"}]}`,
		want: summary{Version: "1.1.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			DataDir: DefaultDataDir, Attachments: []string{"b/eth1"}, HasAttach: true},
	}, {
		name: "GC list null means nothing is live",
		conf: `{"cniVersion":"1.1.0","name":"n","ipam":{"subnet":"10.1.2.0/24"},"cni.dev/valid-attachments":null}`,
		want: summary{Version: "1.1.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			DataDir: DefaultDataDir, HasAttach: true},
	}, {
		name: "unknown keys are ignored",
		conf: `{"cniVersion":"1.0.0","name":"n","whatever":[1],"ipam":{"type":"miniipam","subnet":"10.1.2.0/24","future":{"x":1}}}`,
		want: summary{Version: "1.0.0", Sets: [][]string{{"10.1.2.0/24 10.1.2.1-10.1.2.254 10.1.2.1"}}, Requested: []string{"-"},
			DataDir: DefaultDataDir},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConf([]byte(tt.conf), tt.envArgs)
			if err != nil {
				t.Fatalf("LoadConf: %v", err)
			}
			if d := cmp.Diff(tt.want, summarize(c)); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadConfErrors(t *testing.T) {
	const v = `"cniVersion":"1.0.0","name":"n"`
	tests := []struct {
		name    string
		conf    string
		envArgs string
		code    uint
		msg     string // a part the message must contain (the offending value)
	}{
		{"bad JSON", `{`, "", libmini.CodeDecode, "decode"},
		{"ranges of the wrong type", `{` + v + `,"ipam":{"ranges":"10.0.0.0/24"}}`, "", libmini.CodeDecode, "decode"},
		{"unsupported version", `{"cniVersion":"9.9.9","name":"n","ipam":{"subnet":"10.0.0.0/24"}}`, "", libmini.CodeIncompatibleVersion, "9.9.9"},
		{"bad name", `{"cniVersion":"1.0.0","name":"../x","ipam":{"subnet":"10.0.0.0/24"}}`, "", libmini.CodeInvalidConfig, "../x"},
		{"bad ipam.type", `{` + v + `,"ipam":{"type":"../evil","subnet":"10.0.0.0/24"}}`, "", libmini.CodeInvalidConfig, "../evil"},
		{"no ipam", `{` + v + `}`, "", libmini.CodeInvalidConfig, "no address ranges"},
		{"no ranges", `{` + v + `,"ipam":{"ranges":[]}}`, "", libmini.CodeInvalidConfig, "no address ranges"},
		{"empty set", `{` + v + `,"ipam":{"ranges":[[]]}}`, "", libmini.CodeInvalidConfig, "ipam.ranges[0] is an empty range set"},
		{"missing subnet", `{` + v + `,"ipam":{"ranges":[[{"rangeStart":"10.0.0.5"}]]}}`, "", libmini.CodeInvalidConfig, "ipam.ranges[0][0].subnet"},
		{"flat keys without subnet", `{` + v + `,"ipam":{"gateway":"10.0.0.1"}}`, "", libmini.CodeInvalidConfig, "without ipam.subnet"},
		{"not a CIDR", `{` + v + `,"ipam":{"subnet":"10.0.0.0/33"}}`, "", libmini.CodeInvalidConfig, `"10.0.0.0/33"`},
		{"not a CIDR at all", `{` + v + `,"ipam":{"ranges":[[{"subnet":"bogus"}]]}}`, "", libmini.CodeInvalidConfig, `"bogus"`},
		{"host bits", `{` + v + `,"ipam":{"subnet":"10.0.0.1/24"}}`, "", libmini.CodeInvalidConfig, "10.0.0.0/24"},
		{"zone", `{` + v + `,"ipam":{"subnet":"fe80::%eth0/64"}}`, "", libmini.CodeInvalidConfig, "fe80::%eth0/64"},
		{"mapped subnet", `{` + v + `,"ipam":{"subnet":"::ffff:10.0.0.0/120"}}`, "", libmini.CodeInvalidConfig, "::ffff:10.0.0.0/120"},
		{"v4 /31", `{` + v + `,"ipam":{"subnet":"10.0.0.0/31"}}`, "", libmini.CodeInvalidConfig, "10.0.0.0/31"},
		{"v4 /32", `{` + v + `,"ipam":{"subnet":"10.0.0.0/32"}}`, "", libmini.CodeInvalidConfig, "10.0.0.0/32"},
		{"v6 /127", `{` + v + `,"ipam":{"subnet":"fd00::/127"}}`, "", libmini.CodeInvalidConfig, "fd00::/127"},
		{"v6 /128", `{` + v + `,"ipam":{"subnet":"fd00::/128"}}`, "", libmini.CodeInvalidConfig, "fd00::/128"},
		{"rangeStart outside", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}}`, "", libmini.CodeInvalidConfig, "10.0.1.5"},
		{"rangeEnd outside", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeEnd":"10.0.1.5"}}`, "", libmini.CodeInvalidConfig, "10.0.1.5"},
		{"rangeEnd other family", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeEnd":"fd00::5"}}`, "", libmini.CodeInvalidConfig, "fd00::5"},
		{"rangeStart not an IP", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeStart":"10.0.0"}}`, "", libmini.CodeInvalidConfig, `"10.0.0"`},
		{"gateway outside", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","gateway":"10.0.1.1"}}`, "", libmini.CodeInvalidConfig, "10.0.1.1"},
		{"gateway is the network address", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","gateway":"10.0.0.0"}}`, "", libmini.CodeInvalidConfig, "10.0.0.0"},
		{"gateway is the broadcast", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","gateway":"10.0.0.255"}}`, "", libmini.CodeInvalidConfig, "10.0.0.255"},
		{"rangeStart after rangeEnd", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.8"}}`, "", libmini.CodeInvalidConfig, "10.0.0.9"},
		{"range of the broadcast only", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.255","rangeEnd":"10.0.0.255"}}`, "", libmini.CodeInvalidConfig, "10.0.0.255-10.0.0.255"},
		{"range of the gateway only", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.1"}}`, "", libmini.CodeInvalidConfig, "10.0.0.1-10.0.0.1"},
		{"mixed families", `{` + v + `,"ipam":{"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]}}`, "", libmini.CodeInvalidConfig, "fd00::/64"},
		{"overlapping sets", `{` + v + `,"ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/16"}]]}}`, "", libmini.CodeInvalidConfig, "10.0.0.0/16"},
		{"overlapping ranges in a set", `{` + v + `,"ipam":{"ranges":[[{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.50"},{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.50"}]]}}`, "", libmini.CodeInvalidConfig, "overlaps"},
		{"flat overlaps ranges", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","ranges":[[{"subnet":"10.0.0.128/25"}]]}}`, "", libmini.CodeInvalidConfig, "10.0.0.128/25"},
		{"two v4 sets in 0.2.0", `{"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.1.0.0/24"}]]}}`, "", libmini.CodeInvalidConfig, "0.2.0"},
		{"relative dataDir", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","dataDir":"var/lib"}}`, "", libmini.CodeInvalidConfig, "var/lib"},
		{"route without dst", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","routes":[{"gw":"10.0.0.1"}]}}`, "", libmini.CodeInvalidConfig, "ipam.routes[0].dst"},
		{"route bad dst", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","routes":[{"dst":"10.0.0.0/99"}]}}`, "", libmini.CodeInvalidConfig, "10.0.0.0/99"},
		{"route gw family", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","routes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]}}`, "", libmini.CodeInvalidConfig, "fd00::1"},
		{"CNI_ARGS malformed", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24"}}`, "IgnoreUnknown=1;IP", libmini.CodeInvalidEnv, `"IP"`},
		{"CNI_ARGS bad IP", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24"}}`, "IP=10.0.0.300", libmini.CodeInvalidEnv, "10.0.0.300"},
		{"runtimeConfig bad IP", `{` + v + `,"runtimeConfig":{"ips":["x"]},"ipam":{"subnet":"10.0.0.0/24"}}`, "", libmini.CodeInvalidConfig, `"x"`},
		{"args bad IP", `{` + v + `,"args":{"cni":{"ips":["10.0.0.1/40"]}},"ipam":{"subnet":"10.0.0.0/24"}}`, "", libmini.CodeInvalidConfig, "10.0.0.1/40"},
		{"request outside ranges", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.100"}}`, "IP=10.0.0.200", libmini.CodeInvalidConfig, "10.0.0.200"},
		{"request of the gateway", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24"}}`, "IP=10.0.0.1", libmini.CodeInvalidConfig, "10.0.0.1"},
		{"two requests in one set", `{` + v + `,"runtimeConfig":{"ips":["10.0.0.8"]},"ipam":{"subnet":"10.0.0.0/24"}}`, "IP=10.0.0.7", libmini.CodeInvalidConfig, "10.0.0.8"},
		{"bad GC list", `{` + v + `,"ipam":{"subnet":"10.0.0.0/24"},"cni.dev/valid-attachments":{"a":1}}`, "", libmini.CodeDecode, "valid-attachments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConf([]byte(tt.conf), tt.envArgs)
			e, ok := err.(*types.Error)
			if !ok {
				t.Fatalf("LoadConf: got %T %v, want a *types.Error", err, err)
			}
			if e.Code != tt.code || !strings.Contains(e.Msg+" "+e.Details, tt.msg) {
				t.Errorf("LoadConf: got code %d %q (%s), want code %d mentioning %q", e.Code, e.Msg, e.Details, tt.code, tt.msg)
			}
		})
	}
}

func TestRangeSize(t *testing.T) {
	tests := []struct {
		conf string
		want []uint64
	}{
		{`{"subnet":"10.0.0.0/24"}`, []uint64{253}}, // .1 is the gateway
		{`{"subnet":"10.0.0.0/24","gateway":"10.0.0.254","rangeStart":"10.0.0.10"}`, []uint64{244}},
		{`{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.19"}`, []uint64{10}}, // gateway outside
		{`{"subnet":"10.0.0.0/30"}`, []uint64{1}},
		{`{"subnet":"fd00::/120"}`, []uint64{254}}, // fd00::1-fd00::ff without the gateway
		{`{"subnet":"fd00::/64"}`, []uint64{1<<64 - 2}},
		{`{"subnet":"fd00::/63"}`, []uint64{^uint64(0)}},
		{`{"subnet":"::/0"}`, []uint64{^uint64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.conf, func(t *testing.T) {
			c, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[`+tt.conf+`]]}}`), "")
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range c.Sets[0] {
				got = append(got, r.Size())
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("sizes (-want +got):\n%s", d)
			}
			if c.Sets[0].Size() != tt.want[0] {
				t.Errorf("set size %d, want %d", c.Sets[0].Size(), tt.want[0])
			}
		})
	}
}

// FuzzLoadConf feeds arbitrary configs and CNI_ARGS to LoadConf: it must never
// panic, every failure must be a CNI error with one of the codes LoadConf
// documents, and every accepted config must satisfy the invariants the
// allocator relies on.
func FuzzLoadConf(f *testing.F) {
	seeds := []string{
		`{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"}]]}}`,
		`{"cniVersion":"0.2.0","name":"n","ipam":{"subnet":"10.1.0.0/16","rangeStart":"10.1.5.10","rangeEnd":"10.1.5.20","gateway":"10.1.0.254"}}`,
		`{"cniVersion":"1.1.0","name":"n","runtimeConfig":{"ips":["fd00::5"],"ipRanges":[[{"subnet":"10.3.0.0/24"}]]},"ipam":{"ranges":[[{"subnet":"fd00::/64","rangeStart":"fd00::"}]],"routes":[{"dst":"0.0.0.0/0","gw":"10.3.0.1"}]},"cni.dev/valid-attachments":[]}`,
		`{"name":"n","ipam":{"subnet":"10.0.0.0/30","dataDir":"/a/../b"},"args":{"cni":{"ips":["10.0.0.2/30"]}}}`,
		`{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.50"},{"subnet":"10.0.1.0/24"}]]}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "IgnoreUnknown=1;IP=10.1.2.9")
		f.Add([]byte(s), "")
	}
	codes := map[uint]bool{libmini.CodeDecode: true, libmini.CodeInvalidConfig: true, libmini.CodeInvalidEnv: true, libmini.CodeIncompatibleVersion: true}
	f.Fuzz(func(t *testing.T, stdin []byte, envArgs string) {
		c, err := LoadConf(stdin, envArgs)
		if err != nil {
			e, ok := err.(*types.Error)
			if !ok || !codes[e.Code] {
				t.Fatalf("LoadConf error %T %v is not a CNI error with a documented code", err, err)
			}
			return
		}
		if len(c.Sets) == 0 || len(c.Requested) != len(c.Sets) {
			t.Fatalf("accepted a config with %d sets and %d requests", len(c.Sets), len(c.Requested))
		}
		if c.DataDir == "" || c.DataDir[0] != '/' {
			t.Fatalf("dataDir %q is not absolute", c.DataDir)
		}
		if err := libmini.ValidateNetworkName(c.Name); err != nil {
			t.Fatalf("accepted network name %q: %v", c.Name, err)
		}
		var all []Range
		for i, set := range c.Sets {
			if len(set) == 0 || set.Size() == 0 {
				t.Fatalf("set %d has no assignable address", i)
			}
			for _, r := range set {
				bits := r.Subnet.Addr().BitLen()
				if r.Subnet.Bits() > bits-2 || r.Subnet.Masked() != r.Subnet {
					t.Fatalf("bad subnet %s", r.Subnet)
				}
				if bits != set[0].Subnet.Addr().BitLen() || r.Start.BitLen() != bits || r.End.BitLen() != bits || r.Gateway.BitLen() != bits {
					t.Fatalf("mixed families in set %d: %s", i, set)
				}
				if !r.Subnet.Contains(r.Start) || !r.Subnet.Contains(r.End) || !r.Subnet.Contains(r.Gateway) || r.Start.Compare(r.End) > 0 {
					t.Fatalf("range %s with gateway %s not inside its subnet", r, r.Gateway)
				}
				if r.Start == r.Subnet.Addr() || (bits == 32 && r.End == lastAddr(r.Subnet)) {
					t.Fatalf("range %s includes the network or broadcast address", r)
				}
				for _, o := range all {
					if o.Overlaps(r) {
						t.Fatalf("ranges %s and %s overlap", o, r)
					}
				}
				all = append(all, r)
			}
			if req := c.Requested[i]; req.IsValid() && !set.Assignable(req) {
				t.Fatalf("requested %s is not assignable from set %d (%s)", req, i, set)
			}
		}
		// What was accepted must survive a JSON round trip of its routes.
		if _, err := json.Marshal(c.Routes); err != nil {
			t.Fatalf("routes do not marshal: %v", err)
		}
	})
}

// TestLockTimeout: ipam.lockTimeout reaches NetConf.LockTimeout; without it
// the default applies. Invalid values are in the binary's TestBadInput.
func TestLockTimeout(t *testing.T) {
	for _, tt := range []struct {
		ipam string
		want time.Duration
	}{
		{`{"subnet":"10.1.2.0/24"}`, DefaultLockTimeout},
		{`{"subnet":"10.1.2.0/24","lockTimeout":"1500ms"}`, 1500 * time.Millisecond},
	} {
		conf, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"n","ipam":`+tt.ipam+`}`), "")
		if err != nil {
			t.Fatalf("%s: %v", tt.ipam, err)
		}
		if conf.LockTimeout != tt.want {
			t.Errorf("%s: LockTimeout %v, want %v", tt.ipam, conf.LockTimeout, tt.want)
		}
	}
}
