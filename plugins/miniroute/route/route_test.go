package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/miniroute/backend"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// prev builds a prevResult with one address per entry ("172.18.0.5/24").
func prev(addrs ...string) *current.Result {
	r := &current.Result{CNIVersion: "1.0.0"}
	for _, a := range addrs {
		ip, n, err := net.ParseCIDR(a)
		if err != nil {
			panic(err)
		}
		n.IP = ip
		r.IPs = append(r.IPs, &current.IPConfig{Address: *n})
	}
	return r
}

// stdin is a miniroute config for version ver with res (if any) as
// prevResult in that version.
func stdin(t *testing.T, ver, extra string, res *current.Result) []byte {
	t.Helper()
	s := fmt.Sprintf(`{"cniVersion":%q,"name":"minicni","type":"miniroute"%s`, ver, extra)
	if res != nil {
		r, err := res.GetAsVersion(ver)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		s += `,"prevResult":` + string(b)
	}
	return []byte(s + "}")
}

func loadConf(t *testing.T, b []byte) *NetConf {
	t.Helper()
	conf, err := LoadConf(b)
	if err != nil {
		t.Fatalf("LoadConf(%s): %v", b, err)
	}
	return conf
}

func TestSpecs(t *testing.T) {
	type view struct {
		Family           rules.Family
		Cluster, PodNets []string
	}
	tests := []struct {
		name  string
		extra string
		addrs []string
		want  []view
		err   string
	}{
		{"cluster given", `,"clusterCIDR":["172.18.0.0/16"]`, []string{"172.18.0.5/24"},
			[]view{{rules.IPv4, []string{"172.18.0.0/16"}, []string{"172.18.0.0/24"}}}, ""},
		{"no cluster: the pod subnet", ``, []string{"172.18.0.5/24"},
			[]view{{rules.IPv4, []string{"172.18.0.0/24"}, []string{"172.18.0.0/24"}}}, ""},
		{"dual stack", `,"clusterCIDR":["fd00:172:18::/56","172.18.0.0/16"]`, []string{"fd00:172:18::5/64", "172.18.0.5/24"},
			[]view{{rules.IPv4, []string{"172.18.0.0/16"}, []string{"172.18.0.0/24"}}, {rules.IPv6, []string{"fd00:172:18::/56"}, []string{"fd00:172:18::/64"}}}, ""},
		{"IPv6 without its cluster CIDR", `,"clusterCIDR":["172.18.0.0/16"]`, []string{"172.18.0.5/24", "fd00::5/64"},
			[]view{{rules.IPv4, []string{"172.18.0.0/16"}, []string{"172.18.0.0/24"}}, {rules.IPv6, []string{"fd00::/64"}, []string{"fd00::/64"}}}, ""},
		{"cluster family without address", `,"clusterCIDR":["172.18.0.0/16","fd00::/56"]`, []string{"172.18.0.5/24"},
			[]view{{rules.IPv4, []string{"172.18.0.0/16"}, []string{"172.18.0.0/24"}}}, ""},
		{"host prefix stands for its cluster CIDR", `,"clusterCIDR":["172.18.0.0/16"]`, []string{"172.18.0.5/32", "172.18.9.7/32"},
			[]view{{rules.IPv4, []string{"172.18.0.0/16"}, []string{"172.18.0.0/16"}}}, ""},
		{"two addresses, one subnet", ``, []string{"172.18.0.5/24", "172.18.0.6/24"},
			[]view{{rules.IPv4, []string{"172.18.0.0/24"}, []string{"172.18.0.0/24"}}}, ""},
		{"no address", `,"clusterCIDR":["172.18.0.0/16"]`, nil, nil, ""},
		{"outside the cluster", `,"clusterCIDR":["10.244.0.0/16"]`, []string{"172.18.0.5/24"}, nil,
			"pod subnet 172.18.0.0/24 (prevResult address 172.18.0.5/24) is outside clusterCIDR 10.244.0.0/16"},
		{"larger than the cluster", `,"clusterCIDR":["172.18.0.0/16"]`, []string{"172.18.0.5/15"}, nil, "pod subnet 172.18.0.0/15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := loadConf(t, stdin(t, "1.0.0", tt.extra, nil))
			specs, err := Specs(conf, prev(tt.addrs...))
			if tt.err != "" {
				if cniCode(t, err) != libmini.CodeInvalidConfig || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Specs = %v, want code 7 with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []view
			for _, s := range specs {
				v := view{Family: s.Family}
				for _, n := range s.Cluster {
					v.Cluster = append(v.Cluster, n.String())
				}
				for _, n := range s.PodNets {
					v.PodNets = append(v.PodNets, n.String())
				}
				if !s.Forward || !s.Masquerade {
					t.Errorf("spec %v lost the defaults", s.Family)
				}
				got = append(got, v)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("specs (-want +got):\n%s", d)
			}
		})
	}
}

func fakeNode() (Node, map[rules.Family]*fakeTables) {
	fakes := map[rules.Family]*fakeTables{rules.IPv4: newFake(), rules.IPv6: newFake()}
	return Node{IPTables: func(f rules.Family) Backend { return fakes[f] }}, fakes
}

// TestAddEveryVersion: ADD returns prevResult as given, in every version, and
// ensures the families of its addresses; without a prevResult it is error
// CodeNoPrevResult.
// TestNetwork: a prevResult address becomes its network in its own family
// whatever byte form its IP and mask came in (net.IP keeps IPv4 in 4 or 16
// bytes, and a mask of either length).
func TestNetwork(t *testing.T) {
	v4 := net.IPv4(172, 18, 0, 5)
	tests := []struct {
		name string
		in   net.IPNet
		want string // "" for no address
	}{
		{"4-byte IP, 4-byte mask", net.IPNet{IP: v4.To4(), Mask: net.CIDRMask(24, 32)}, "172.18.0.0/24"},
		{"16-byte IP, 4-byte mask", net.IPNet{IP: v4.To16(), Mask: net.CIDRMask(24, 32)}, "172.18.0.0/24"},
		{"4-byte IP, 16-byte mask", net.IPNet{IP: v4.To4(), Mask: net.CIDRMask(120, 128)}, "172.18.0.0/24"},
		{"16-byte IP, 16-byte mask", net.IPNet{IP: v4.To16(), Mask: net.CIDRMask(120, 128)}, "172.18.0.0/24"},
		{"IPv4 host prefix", net.IPNet{IP: v4.To16(), Mask: net.CIDRMask(32, 32)}, "172.18.0.5/32"},
		{"IPv6", net.IPNet{IP: net.ParseIP("fd00:172:18::5"), Mask: net.CIDRMask(64, 128)}, "fd00:172:18::/64"},
		{"IPv6 host prefix", net.IPNet{IP: net.ParseIP("fd00:172:18::5"), Mask: net.CIDRMask(128, 128)}, "fd00:172:18::5/128"},
		{"no IP", net.IPNet{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := network(tt.in)
			if !ok {
				if tt.want != "" {
					t.Fatalf("network(%v) = no address, want %s", tt.in, tt.want)
				}
				return
			}
			if got.String() != tt.want {
				t.Errorf("network(%v) = %s, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAddEveryVersion(t *testing.T) {
	minitest.ForEachVersion(t, func(t *testing.T, ver string) {
		in := prev("172.18.0.5/24", "fd00:172:18::5/64")
		in.Routes = []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, GW: net.ParseIP("172.18.0.1")}}
		in.IPs[0].Gateway = net.ParseIP("172.18.0.1").To4()
		in.DNS = types.DNS{Nameservers: []string{"10.96.0.10"}}
		node, fakes := fakeNode()
		conf := loadConf(t, stdin(t, ver, `,"clusterCIDR":["172.18.0.0/16","fd00:172:18::/56"]`, in))
		res, err := Add(context.Background(), conf, node)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := in.GetAsVersion(ver)
		got, err := res.GetAsVersion(ver)
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got)
		if string(wantJSON) != string(gotJSON) {
			t.Errorf("result changed:\n got %s\nwant %s", gotJSON, wantJSON)
		}
		for _, f := range []rules.Family{rules.IPv4, rules.IPv6} {
			if len(fakes[f].lines("nat")) != 5 || len(fakes[f].lines("filter")) != 4 {
				t.Errorf("%v rules: %q %q", f, fakes[f].lines("filter"), fakes[f].lines("nat"))
			}
		}
		if _, err := Add(context.Background(), loadConf(t, stdin(t, ver, ``, nil)), node); cniCode(t, err) != libmini.CodeNoPrevResult {
			t.Errorf("ADD without prevResult = %v, want code %d", err, libmini.CodeNoPrevResult)
		}
	})
}

func TestAddOnlyIPv4TouchesOnlyIPv4(t *testing.T) {
	node, fakes := fakeNode()
	conf := loadConf(t, stdin(t, "1.0.0", `,"clusterCIDR":["172.18.0.0/16","fd00::/56"]`, prev("172.18.0.5/24")))
	if _, err := Add(context.Background(), conf, node); err != nil {
		t.Fatal(err)
	}
	if fakes[rules.IPv6].saves != 0 {
		t.Errorf("ip6tables read %d times for an rules.IPv4-only pod", fakes[rules.IPv6].saves)
	}
	conf = loadConf(t, stdin(t, "1.0.0", `,"forward":false,"masquerade":false`, prev("172.18.0.5/24")))
	fakes[rules.IPv4].saves = 0
	if _, err := Add(context.Background(), conf, node); err != nil || fakes[rules.IPv4].saves != 0 {
		t.Errorf("forward and masquerade off: err %v, %d saves; want none", err, fakes[rules.IPv4].saves)
	}
}

func TestAddErrorsKeepTheirCode(t *testing.T) {
	node, fakes := fakeNode()
	fakes[rules.IPv4].restoreErr = errors.New("iptables-restore: Couldn't load match `comment'")
	conf := loadConf(t, stdin(t, "1.0.0", ``, prev("172.18.0.5/24")))
	_, err := Add(context.Background(), conf, node)
	if cniCode(t, err) != libmini.CodeFirewall || !strings.Contains(err.Error(), "comment") {
		t.Errorf("Add = %v, want code %d with the iptables message", err, libmini.CodeFirewall)
	}
	conf = loadConf(t, stdin(t, "1.0.0", `,"clusterCIDR":"10.0.0.0/8"`, prev("172.18.0.5/24")))
	if _, err := Add(context.Background(), conf, node); cniCode(t, err) != libmini.CodeInvalidConfig {
		t.Errorf("pod outside the cluster: %v, want code 7", err)
	}
}

func TestCheckWithFake(t *testing.T) {
	node, fakes := fakeNode()
	conf := loadConf(t, stdin(t, "1.0.0", `,"clusterCIDR":["172.18.0.0/16","fd00::/56"]`, prev("172.18.0.5/24", "fd00::5/64")))
	err := Check(context.Background(), conf, node)
	if cniCode(t, err) != libmini.CodeCheckFailed || !strings.Contains(err.Error(), "iptables -t filter -N MINICNI-FORWARD") ||
		!strings.Contains(err.Error(), "ip6tables -t nat -N MINICNI-POSTROUTING") {
		t.Fatalf("CHECK before ADD = %v, want both families' chains named", err)
	}
	if _, err := Add(context.Background(), conf, node); err != nil {
		t.Fatal(err)
	}
	if err := Check(context.Background(), conf, node); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	fakes[rules.IPv6].saveErr = errors.New("ip6tables-save: boom")
	if err := Check(context.Background(), conf, node); cniCode(t, err) != libmini.CodeFirewall {
		t.Errorf("CHECK with a broken ip6tables = %v, want code %d", err, libmini.CodeFirewall)
	}
	if err := Check(context.Background(), loadConf(t, stdin(t, "1.0.0", ``, nil)), node); cniCode(t, err) != libmini.CodeNoPrevResult {
		t.Errorf("CHECK without prevResult = %v", err)
	}
}

func TestStatus(t *testing.T) {
	node, fakes := fakeNode()
	ctx := context.Background()
	for _, extra := range []string{``, `,"clusterCIDR":["172.18.0.0/16","fd00::/56"]`} {
		if err := Status(ctx, loadConf(t, stdin(t, "1.1.0", extra, nil)), node); err != nil {
			t.Errorf("STATUS %s: %v", extra, err)
		}
	}
	fakes[rules.IPv6].saveErr = errors.New("ip6tables-save: Could not fetch rule set generation id: Permission denied")
	if err := Status(ctx, loadConf(t, stdin(t, "1.1.0", ``, nil)), node); err != nil {
		t.Errorf("IPv6 is not needed without an rules.IPv6 clusterCIDR, yet STATUS = %v", err)
	}
	err := Status(ctx, loadConf(t, stdin(t, "1.1.0", `,"clusterCIDR":["fd00::/56"]`, nil)), node)
	if cniCode(t, err) != libmini.CodeNotAvailable || !strings.Contains(err.Error(), "ip6tables cannot be used") ||
		!strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("STATUS = %v, want code %d saying why", err, libmini.CodeNotAvailable)
	}
	if err := Status(ctx, loadConf(t, stdin(t, "1.1.0", `,"clusterCIDR":["fd00::/56"],"forward":false,"masquerade":false`, nil)), node); err != nil {
		t.Errorf("STATUS needs no iptables with forward and masquerade off: %v", err)
	}
	fakes[rules.IPv4].saveErr = nil
	fakes[rules.IPv4].restoreErr = errors.New("not found")
	if err := Status(ctx, loadConf(t, stdin(t, "1.1.0", ``, nil)), node); cniCode(t, err) != libmini.CodeNotAvailable {
		t.Errorf("STATUS with iptables-restore missing = %v", err)
	}
}

// TestStatusBinaryMissing uses the real backend with a directory holding no
// iptables binaries: no kernel is touched.
func TestStatusBinaryMissing(t *testing.T) {
	dir := t.TempDir()
	node := Node{IPTables: func(f rules.Family) Backend { return backend.Exec{Family: f, Dirs: []string{dir}} }}
	err := Status(context.Background(), loadConf(t, stdin(t, "1.1.0", ``, nil)), node)
	if cniCode(t, err) != libmini.CodeNotAvailable || !strings.Contains(err.Error(), "iptables-restore not found in "+dir) {
		t.Errorf("STATUS = %v", err)
	}
	// A binary that runs but fails, as when the kernel refuses nf_tables.
	for _, name := range []string{"iptables-save", "iptables-restore"} {
		script := "#!/bin/sh\necho 'iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Protocol not supported' >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err = Status(context.Background(), loadConf(t, stdin(t, "1.1.0", ``, nil)), node)
	if cniCode(t, err) != libmini.CodeNotAvailable || !strings.Contains(err.Error(), "Protocol not supported") {
		t.Errorf("STATUS = %v", err)
	}
}
