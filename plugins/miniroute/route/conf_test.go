package route

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

func cniCode(t *testing.T, err error) uint {
	t.Helper()
	if err == nil {
		return 0
	}
	e, ok := libmini.AsCNIError(err)
	if !ok {
		t.Fatalf("error %v is not a *types.Error", err)
	}
	return e.Code
}

func TestLoadConfValid(t *testing.T) {
	type view struct {
		Cluster    []string
		Masquerade bool
		Forward    bool
		Routes     []string
		Mode       backend.Mode
	}
	tests := []struct {
		name  string
		extra string
		want  view
	}{
		{"defaults", ``, view{Masquerade: true, Forward: true}},
		{"list", `,"clusterCIDR":["172.18.0.0/16"]`, view{Cluster: []string{"172.18.0.0/16"}, Masquerade: true, Forward: true}},
		{"single string", `,"clusterCIDR":"172.18.0.0/16"`, view{Cluster: []string{"172.18.0.0/16"}, Masquerade: true, Forward: true}},
		{"dual stack, duplicates dropped", `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/56","172.18.0.0/16"]`,
			view{Cluster: []string{"172.18.0.0/16", "fd00:172:18::/56"}, Masquerade: true, Forward: true}},
		{"switches off", `,"masquerade":false,"forward":false`, view{}},
		{"null keeps the default", `,"masquerade":null`, view{Masquerade: true, Forward: true}},
		{"routes", `,"routes":[{"dst":"172.18.1.0/24","via":"10.99.0.12"},{"dst":"fd00:172:18:1::/64","via":"fd00:99::12"}]`,
			view{Masquerade: true, Forward: true, Routes: []string{"172.18.1.0/24 via 10.99.0.12", "fd00:172:18:1::/64 via fd00:99::12"}}},
		{"IPv4-mapped gateway is IPv4", `,"routes":[{"dst":"172.18.1.0/24","via":"::ffff:10.99.0.12"}]`,
			view{Masquerade: true, Forward: true, Routes: []string{"172.18.1.0/24 via 10.99.0.12"}}},
		{"iptablesMode auto", `,"iptablesMode":"auto"`, view{Masquerade: true, Forward: true}},
		{"iptablesMode legacy", `,"iptablesMode":"legacy"`, view{Masquerade: true, Forward: true, Mode: backend.Legacy}},
		{"iptablesMode nf_tables", `,"iptablesMode":"nf_tables"`, view{Masquerade: true, Forward: true, Mode: backend.NFT}},
		{"unknown keys ignored", `,"somethingElse":{"a":1},"logFile":"/tmp/x.log"`, view{Masquerade: true, Forward: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"minicni","type":"miniroute"` + tt.extra + `}`))
			if err != nil {
				t.Fatal(err)
			}
			got := view{Masquerade: conf.Masquerade, Forward: conf.Forward, Mode: conf.Mode}
			for _, c := range conf.Cluster {
				got.Cluster = append(got.Cluster, c.String())
			}
			for _, r := range conf.Routes {
				got.Routes = append(got.Routes, r.String())
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("conf (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadConfInvalid(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		code  uint
		msg   string // the offending value or key the message must name
	}{
		{"not a CIDR", `"clusterCIDR":["172.18.0.0"]`, libmini.CodeInvalidConfig, `clusterCIDR[0] "172.18.0.0"`},
		{"garbage CIDR", `"clusterCIDR":"banana"`, libmini.CodeInvalidConfig, `"banana"`},
		{"empty CIDR", `"clusterCIDR":[""]`, libmini.CodeInvalidConfig, `clusterCIDR[0] ""`},
		{"host bits", `"clusterCIDR":["172.18.0.1/16"]`, libmini.CodeInvalidConfig, `"172.18.0.1/16"`},
		{"second CIDR bad", `"clusterCIDR":["172.18.0.0/16","fd00::1/56"]`, libmini.CodeInvalidConfig, `clusterCIDR[1] "fd00::1/56"`},
		{"everything", `"clusterCIDR":["0.0.0.0/0"]`, libmini.CodeInvalidConfig, `"0.0.0.0/0"`},
		{"IPv4-mapped CIDR", `"clusterCIDR":["::ffff:10.0.0.0/104"]`, libmini.CodeInvalidConfig, `clusterCIDR[0] "::ffff:10.0.0.0/104": IPv4-mapped`},
		{"route IPv4-mapped dst", `"routes":[{"dst":"::ffff:172.18.1.0/120","via":"10.0.0.1"}]`, libmini.CodeInvalidConfig, `routes[0].dst "::ffff:172.18.1.0/120": IPv4-mapped`},
		{"route via loopback", `"routes":[{"dst":"172.18.1.0/24","via":"127.0.0.1"}]`, libmini.CodeInvalidConfig, `routes[0].via "127.0.0.1": not a routable unicast address`},
		{"route via multicast", `"routes":[{"dst":"fd00:1::/64","via":"ff02::1"}]`, libmini.CodeInvalidConfig, `"ff02::1"`},
		{"route without dst", `"routes":[{"via":"10.0.0.1"}]`, libmini.CodeInvalidConfig, "routes[0].dst"},
		{"route without via", `"routes":[{"dst":"172.18.1.0/24"}]`, libmini.CodeInvalidConfig, `routes[0].via is missing (route to "172.18.1.0/24")`},
		{"route bad dst", `"routes":[{"dst":"172.18.1.0/33","via":"10.0.0.1"}]`, libmini.CodeInvalidConfig, `"172.18.1.0/33"`},
		{"route dst host bits", `"routes":[{"dst":"172.18.1.7/24","via":"10.0.0.1"}]`, libmini.CodeInvalidConfig, `"172.18.1.7/24"`},
		{"route bad via", `"routes":[{"dst":"172.18.1.0/24","via":"10.0.0"}]`, libmini.CodeInvalidConfig, `routes[0].via "10.0.0"`},
		{"route families differ", `"routes":[{"dst":"172.18.1.0/24","via":"fd00::1"}]`, libmini.CodeInvalidConfig, `"fd00::1"`},
		{"route via link-local", `"routes":[{"dst":"fd00:1::/64","via":"fe80::1"}]`, libmini.CodeInvalidConfig, `"fe80::1"`},
		{"route via unspecified", `"routes":[{"dst":"172.18.1.0/24","via":"0.0.0.0"}]`, libmini.CodeInvalidConfig, `"0.0.0.0"`},
		{"duplicate route dst", `"routes":[{"dst":"172.18.1.0/24","via":"10.0.0.1"},{"dst":"172.18.1.0/24","via":"10.0.0.2"}]`, libmini.CodeInvalidConfig, `routes[1].dst "172.18.1.0/24"`},
		{"bad type", `"type":"../miniroute"`, libmini.CodeInvalidConfig, "../miniroute"},
		{"clusterCIDR a number", `"clusterCIDR":5`, libmini.CodeDecode, "clusterCIDR"},
		{"masquerade a string", `"masquerade":"yes"`, libmini.CodeDecode, "masquerade"},
		{"iptablesMode unknown", `"iptablesMode":"nftables"`, libmini.CodeInvalidConfig, `iptablesMode "nftables": not an iptables mode`},
		{"iptablesMode a bool", `"iptablesMode":true`, libmini.CodeDecode, "iptablesMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := `{"cniVersion":"1.0.0","name":"minicni","type":"miniroute",` + tt.extra + `}`
			_, err := LoadConf([]byte(stdin))
			if got := cniCode(t, err); got != tt.code {
				t.Fatalf("code = %d, want %d (err %v)", got, tt.code, err)
			}
			if e, _ := libmini.AsCNIError(err); !strings.Contains(e.Msg+" "+e.Details, tt.msg) {
				t.Errorf("error %q does not name %q", e.Msg+" "+e.Details, tt.msg)
			}
		})
	}
}

// TestLoadConfLimits: lockTimeout and execTimeout reach the NetConf, with
// their defaults when absent, and NewNodeFor hands them to the backends.
func TestLoadConfLimits(t *testing.T) {
	for _, tt := range []struct {
		extra      string
		lock, exec time.Duration
	}{
		{``, backend.DefaultLockTimeout, backend.DefaultTimeout},
		{`,"lockTimeout":"2s","execTimeout":"1m"`, 2 * time.Second, time.Minute},
	} {
		conf, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"minicni","type":"miniroute"` + tt.extra + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if conf.LockTimeout != tt.lock || conf.ExecTimeout != tt.exec {
			t.Errorf("%s: lock %v exec %v, want %v %v", tt.extra, conf.LockTimeout, conf.ExecTimeout, tt.lock, tt.exec)
		}
		e, ok := NewNodeFor(conf, nil).backend(rules.IPv4).(backend.Exec)
		if !ok || e.LockTimeout != tt.lock || e.Timeout != tt.exec {
			t.Errorf("%s: backend %+v", tt.extra, e)
		}
	}
}
