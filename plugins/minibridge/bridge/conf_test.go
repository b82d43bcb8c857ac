package bridge

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
)

func errCode(t *testing.T, err error) uint {
	t.Helper()
	if err == nil {
		return 0
	}
	e, ok := libmini.AsCNIError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *types.Error", err, err)
	}
	return e.Code
}

func TestLoadConf(t *testing.T) {
	type opts struct {
		Bridge                                                     string
		MTU                                                        int
		IsGateway, IsDefaultGateway, HairpinMode, Promisc, ForceAd bool
		IPAMType, LogFile                                          string
		Vlan                                                       int
		PreserveDefaultVlan, PortIsolation, EnableDAD              bool
	}
	defaults := opts{Bridge: DefaultBridge, IsGateway: true, IsDefaultGateway: true, HairpinMode: true, IPAMType: "miniipam"}
	const ipam = `"ipam":{"type":"miniipam","ranges":[[{"subnet":"10.1.0.0/24"}]]}`
	tests := []struct {
		name  string
		stdin string
		want  opts
		code  uint
		msg   string // the error must name the offending value
	}{
		{name: "defaults", stdin: `{"cniVersion":"1.0.0","name":"n","type":"minibridge",` + ipam + `}`, want: defaults},
		{name: "no version", stdin: `{"name":"n",` + ipam + `}`, want: defaults},
		{name: "unknown keys ignored", stdin: `{"cniVersion":"0.4.0","name":"n","ipMasqBackend":"nftables","whatever":{"x":1},` + ipam + `}`, want: defaults},
		{name: "refused keys at their defaults", stdin: `{"cniVersion":"1.0.0","name":"n","vlanTrunk":null,"macspoofchk":false,"disableContainerInterface":false,"ipMasq":false,` + ipam + `}`, want: defaults},
		{name: "vlan, isolation, dad", stdin: `{"cniVersion":"1.0.0","name":"n","vlan":4094,"preserveDefaultVlan":true,"portIsolation":true,"enabledad":true,` + ipam + `}`,
			want: opts{Bridge: DefaultBridge, IsGateway: true, IsDefaultGateway: true, HairpinMode: true, IPAMType: "miniipam", Vlan: 4094, PreserveDefaultVlan: true, PortIsolation: true, EnableDAD: true}},
		{name: "long bridge, vlan without gateway", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"123456789012345","vlan":7,"isGateway":false,` + ipam + `}`,
			want: opts{Bridge: "123456789012345", IsDefaultGateway: true, HairpinMode: true, IPAMType: "miniipam", Vlan: 7}},
		{name: "every key", stdin: `{"cniVersion":"1.1.0","name":"n","bridge":"br-x","mtu":9000,"isGateway":false,"isDefaultGateway":false,"hairpinMode":false,"promiscMode":true,"forceAddress":true,"logFile":"/tmp/l",` + ipam + `}`,
			want: opts{Bridge: "br-x", MTU: 9000, Promisc: true, ForceAd: true, IPAMType: "miniipam", LogFile: "/tmp/l"}},
		{name: "promisc turns default hairpin off", stdin: `{"cniVersion":"1.0.0","name":"n","promiscMode":true,` + ipam + `}`,
			want: opts{Bridge: DefaultBridge, IsGateway: true, IsDefaultGateway: true, Promisc: true, IPAMType: "miniipam"}},
		{name: "15-byte bridge", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"123456789012345",` + ipam + `}`,
			want: opts{Bridge: "123456789012345", IsGateway: true, IsDefaultGateway: true, HairpinMode: true, IPAMType: "miniipam"}},

		{name: "bad json", stdin: `{"name":`, code: libmini.CodeDecode, msg: "decode"},
		{name: "mtu not a number", stdin: `{"cniVersion":"1.0.0","name":"n","mtu":"big",` + ipam + `}`, code: libmini.CodeDecode, msg: "decode"},
		{name: "isGateway not a bool", stdin: `{"cniVersion":"1.0.0","name":"n","isGateway":"yes",` + ipam + `}`, code: libmini.CodeDecode, msg: "decode"},
		{name: "future version", stdin: `{"cniVersion":"9.9.9","name":"n",` + ipam + `}`, code: libmini.CodeIncompatibleVersion, msg: "9.9.9"},
		{name: "no name", stdin: `{"cniVersion":"1.0.0",` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "name"},
		{name: "16-byte bridge", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"1234567890123456",` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "1234567890123456"},
		{name: "slash in bridge", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"br/0",` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "br/0"},
		{name: "empty bridge", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"",` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "bridge"},
		{name: "mtu 10", stdin: `{"cniVersion":"1.0.0","name":"n","mtu":10,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "10"},
		{name: "mtu 65536", stdin: `{"cniVersion":"1.0.0","name":"n","mtu":65536,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "65536"},
		{name: "negative mtu", stdin: `{"cniVersion":"1.0.0","name":"n","mtu":-1,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "-1"},
		{name: "no ipam", stdin: `{"cniVersion":"1.0.0","name":"n"}`, code: libmini.CodeInvalidConfig, msg: "ipam.type"},
		{name: "ipam without type", stdin: `{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.0.0.0/24"}}`, code: libmini.CodeInvalidConfig, msg: "ipam.type"},
		{name: "ipam type with slash", stdin: `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"../bin/sh"}}`, code: libmini.CodeInvalidConfig, msg: "../bin/sh"},
		{name: "vlan 4095", stdin: `{"cniVersion":"1.0.0","name":"n","vlan":4095,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "vlan 4095"},
		{name: "negative vlan", stdin: `{"cniVersion":"1.0.0","name":"n","vlan":-1,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "vlan -1"},
		{name: "vlan not a number", stdin: `{"cniVersion":"1.0.0","name":"n","vlan":"10",` + ipam + `}`, code: libmini.CodeDecode, msg: "decode"},
		{name: "vlan gateway name too long", stdin: `{"cniVersion":"1.0.0","name":"n","bridge":"1234567890123","vlan":100,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "1234567890123.100"},
		{name: "vlanTrunk refused", stdin: `{"cniVersion":"1.0.0","name":"n","vlanTrunk":[{"id":5}],` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "vlanTrunk"},
		{name: "empty vlanTrunk refused", stdin: `{"cniVersion":"1.0.0","name":"n","vlanTrunk":[],` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "vlanTrunk"},
		{name: "macspoofchk refused", stdin: `{"cniVersion":"1.0.0","name":"n","macspoofchk":true,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "macspoofchk"},
		{name: "disableContainerInterface refused", stdin: `{"cniVersion":"1.0.0","name":"n","disableContainerInterface":true,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "disableContainerInterface"},
		{name: "ipMasq refused", stdin: `{"cniVersion":"0.3.1","name":"n","ipMasq":true,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "ipMasq"},
		{name: "hairpin and promisc", stdin: `{"cniVersion":"1.0.0","name":"n","promiscMode":true,"hairpinMode":true,` + ipam + `}`, code: libmini.CodeInvalidConfig, msg: "hairpinMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := LoadConf([]byte(tt.stdin))
			if got := errCode(t, err); got != tt.code {
				t.Fatalf("code %d, want %d (err %v)", got, tt.code, err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("error %q does not name %q", err, tt.msg)
				}
				return
			}
			got := opts{conf.Bridge, conf.MTU, conf.IsGateway, conf.IsDefaultGateway, conf.HairpinMode, conf.PromiscMode, conf.ForceAddress, conf.IPAM.Type, conf.LogFile,
				conf.Vlan, conf.PreserveDefaultVlan, conf.PortIsolation, conf.EnableDAD}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("conf (-want +got):\n%s", d)
			}
		})
	}
}

func TestHostVethName(t *testing.T) {
	names := map[string]bool{}
	for _, c := range []struct{ id, ifname string }{
		{"c1", "eth0"}, {"c1", "eth1"}, {"c2", "eth0"}, {"c1eth", "0"},
		{strings.Repeat("f", 64), "eth0"}, {"", ""},
	} {
		n := HostVethName(c.id, c.ifname)
		if n != HostVethName(c.id, c.ifname) {
			t.Errorf("HostVethName(%q, %q) is not deterministic", c.id, c.ifname)
		}
		if len(n) != 15 || !strings.HasPrefix(n, VethPrefix) {
			t.Errorf("HostVethName(%q, %q) = %q: want %d bytes starting with %q", c.id, c.ifname, n, 15, VethPrefix)
		}
		if err := libmini.ValidateIfName("veth", n); err != nil {
			t.Error(err)
		}
		if names[n] {
			t.Errorf("HostVethName(%q, %q) = %q collides", c.id, c.ifname, n)
		}
		names[n] = true
	}
}

func TestPlanRoutes(t *testing.T) {
	v4 := func(s string) current.IPConfig {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return current.IPConfig{Address: *n}
	}
	withGW := func(c current.IPConfig, gw string) *current.IPConfig { c.Gateway = net.ParseIP(gw); return &c }
	route := func(dst, gw string) *types.Route {
		_, n, _ := net.ParseCIDR(dst)
		return &types.Route{Dst: *n, GW: net.ParseIP(gw)}
	}
	tests := []struct {
		name       string
		defaultGW  bool
		ips        []*current.IPConfig
		routes     []*types.Route
		wantRoutes []string
		wantV6     bool
	}{
		{"default via gateway", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1")}, nil,
			[]string{"0.0.0.0/0 via 10.0.0.1"}, false},
		{"isDefaultGateway off", false, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1")}, nil, nil, false},
		{"no gateway, no default", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "")}, nil, nil, false},
		{"IPAM default kept, no duplicate", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1")},
			[]*types.Route{route("0.0.0.0/0", "")}, []string{"0.0.0.0/0 via <nil>"}, false},
		{"IPAM default with gw kept", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1")},
			[]*types.Route{route("10.9.0.0/16", ""), route("0.0.0.0/0", "10.0.0.254")}, []string{"10.9.0.0/16 via <nil>", "0.0.0.0/0 via 10.0.0.254"}, false},
		{"dual stack", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1"), withGW(v4("fd00::2/64"), "fd00::1")},
			[]*types.Route{route("::/0", "")}, []string{"::/0 via <nil>", "0.0.0.0/0 via 10.0.0.1"}, true},
		{"two ranges of one family, one default", true, []*current.IPConfig{withGW(v4("10.0.0.2/24"), "10.0.0.1"), withGW(v4("10.1.0.2/24"), "10.1.0.1")}, nil,
			[]string{"0.0.0.0/0 via 10.0.0.1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &current.Result{IPs: tt.ips, Routes: tt.routes}
			conf := &NetConf{IsDefaultGateway: tt.defaultGW}
			hasV6 := planRoutes(conf, res)
			var got []string
			for _, r := range res.Routes {
				got = append(got, r.Dst.String()+" via "+r.GW.String())
			}
			if d := cmp.Diff(tt.wantRoutes, got); d != "" {
				t.Errorf("routes (-want +got):\n%s", d)
			}
			if hasV6 != tt.wantV6 {
				t.Errorf("hasV6 = %v, want %v", hasV6, tt.wantV6)
			}
			for _, ipc := range res.IPs {
				if ipc.Interface == nil || *ipc.Interface != 2 {
					t.Errorf("IP %s does not point at interface 2", ipc.Address.String())
				}
			}
		})
	}
}

func TestIsHostVethName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{HostVethName("c1", "eth0"), true},
		{"mbr0123456789ab", true},
		{"mbr0123456789AB", false}, // HostVethName writes lower case
		{"mbr0123456789a", false},
		{"mbr0123456789abc", false},
		{"mbx0123456789ab", false},
		{"mbr0123456789ag", false},
		{"mbv0123456789ab", false}, // a VLAN gateway's peer
		{"veth0123456789", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsHostVethName(tt.name); got != tt.want {
			t.Errorf("IsHostVethName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOwnerAlias(t *testing.T) {
	if got := ownerAlias("minicni"); got != "minibridge network minicni" {
		t.Errorf("ownerAlias(minicni) = %q", got)
	}
	long := strings.Repeat("n", 253)
	a, b := ownerAlias(long), ownerAlias(long[1:]+"m")
	if len(a) > 255 || a == b || !strings.HasPrefix(a, "minibridge network sha256:") {
		t.Errorf("ownerAlias of 253-byte names: %q and %q: want distinct hashes within 255 bytes", a, b)
	}
}

// TestLoadConfLimits: ipamTimeout and linkUpTimeout reach the NetConf, with
// their defaults when absent. Invalid values are in the binary's
// TestBadInput.
func TestLoadConfLimits(t *testing.T) {
	for _, tt := range []struct {
		extra    string
		ipam, up time.Duration
	}{
		{``, libmini.IPAMTimeout, DefaultUpTimeout},
		{`,"ipamTimeout":"10s","linkUpTimeout":"750ms"`, 10 * time.Second, 750 * time.Millisecond},
	} {
		conf, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"n","type":"minibridge","ipam":{"type":"host-local"}` + tt.extra + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.extra, err)
		}
		if conf.IPAMTimeout != tt.ipam || conf.LinkUpTimeout != tt.up {
			t.Errorf("%s: ipamTimeout %v linkUpTimeout %v, want %v %v", tt.extra, conf.IPAMTimeout, conf.LinkUpTimeout, tt.ipam, tt.up)
		}
	}
}
