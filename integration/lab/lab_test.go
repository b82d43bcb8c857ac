package lab

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"
)

// TestRenderAutoMTU: the overlay MTU replaces an automatic mtu (0 or
// absent) only, as the installer's rendering does.
func TestRenderAutoMTU(t *testing.T) {
	tests := []struct {
		name    string
		mtu     string // the template's "mtu" member, empty: absent
		autoMTU int
		want    float64 // 0: absent
	}{
		{"zero replaced", `"mtu": 0,`, 1450, 1450},
		{"absent replaced", ``, 1450, 1450},
		{"explicit kept", `"mtu": 1400,`, 1450, 1400},
		{"no overlay: zero kept", `"mtu": 0,`, 0, 0},
		{"no overlay: absent kept", ``, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := `{"cniVersion": "1.0.0", "name": "minicni", "plugins": [
				{"type": "minibridge", ` + tt.mtu + ` "ipam": {"type": "miniipam", "ranges": [[{"subnet": "172.18.0.0/24"}]]}},
				{"type": "miniroute", "clusterCIDR": ["172.18.0.0/16"]}]}`
			b, err := Render([]byte(tmpl), []string{"172.18.3.0/24"}, []string{"172.18.0.0/16"}, "/tmp/x", nil, tt.autoMTU)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Plugins []map[string]any `json:"plugins"`
			}
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			got, _ := list.Plugins[0]["mtu"].(float64)
			if got != tt.want {
				t.Errorf("mtu %v, want %v in\n%s", got, tt.want, b)
			}
			if _, ok := list.Plugins[1]["mtu"]; ok {
				t.Errorf("miniroute got an mtu:\n%s", b)
			}
		})
	}
}

// TestWantPath: the path a pod-to-pod cell must take, per routing, overlay
// and segments.
func TestWantPath(t *testing.T) {
	a0, b0, c1 := &Node{Segment: 0}, &Node{Segment: 0}, &Node{Segment: 1}
	tests := []struct {
		name           string
		agent, overlay string
		from, to       *Node
		want           string
	}{
		{"static routes", "", "", a0, b0, PathDirect},
		{"agent default, same segment", "minicni-installer", "", a0, b0, PathDirect},
		{"agent default, other segment", "minicni-installer", "", a0, c1, PathVXLAN},
		{"auto, other segment", "minicni-installer", "auto", c1, a0, PathVXLAN},
		{"vxlan, same segment", "minicni-installer", "vxlan", a0, b0, PathVXLAN},
		{"none, same segment", "minicni-installer", "none", a0, b0, PathDirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lab{Opts: Options{Agent: tt.agent, Overlay: tt.overlay}}
			if got := l.wantPath(tt.from, tt.to); got != tt.want {
				t.Errorf("wantPath = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOptionsDefaults: the topology is checked before anything is made.
func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
	}{
		{"flat by default", Options{Name: "x"}, false},
		{"routed with agents", Options{Name: "x", Topology: Routed, Agent: "minicni-installer"}, false},
		{"routed with static routes", Options{Name: "x", Topology: Routed, StaticRoutes: true}, true},
		{"unknown topology", Options{Name: "x", Topology: "mesh"}, true},
		{"name too long", Options{Name: "123456789"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			err := o.defaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("defaults() = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (o.Topology == "" || o.Underlay2 == "") {
				t.Errorf("defaults left topology %q, underlay2 %q", o.Topology, o.Underlay2)
			}
		})
	}
}

// TestRenderFamilies: the node's pod subnets replace the template's range
// sets of their families, and its cluster CIDRs miniroute's of theirs; a
// family not given keeps the template's.
func TestRenderFamilies(t *testing.T) {
	const tmpl = `{"cniVersion": "1.0.0", "name": "minicni", "plugins": [
		{"type": "minibridge", "ipam": {"type": "miniipam", "ranges": [[{"subnet": "172.18.0.0/24"}], [{"subnet": "fd00:1::/64"}]]}},
		{"type": "miniroute", "clusterCIDR": ["172.18.0.0/16", "fd00:1::/56"]}]}`
	tests := []struct {
		name                   string
		pod, cluster           []string
		wantRanges, wantRoutes string
	}{
		{"ipv4 given", []string{"172.18.3.0/24"}, []string{"172.18.0.0/16"},
			`[[{"subnet":"172.18.3.0/24"}],[{"subnet":"fd00:1::/64"}]]`, `["172.18.0.0/16","fd00:1::/56"]`},
		{"both given", []string{"172.18.3.0/24", "fd18:0:0:3::/64"}, []string{"172.18.0.0/16", "fd18::/48"},
			`[[{"subnet":"172.18.3.0/24"}],[{"subnet":"fd18:0:0:3::/64"}]]`, `["172.18.0.0/16","fd18::/48"]`},
		{"ipv6 given", []string{"fd18:0:0:3::/64"}, []string{"fd18::/48"},
			`[[{"subnet":"fd18:0:0:3::/64"}],[{"subnet":"172.18.0.0/24"}]]`, `["fd18::/48","172.18.0.0/16"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Render([]byte(tmpl), tt.pod, tt.cluster, "/tmp/x", nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Plugins []struct {
					IPAM struct {
						Ranges json.RawMessage `json:"ranges"`
					} `json:"ipam"`
					ClusterCIDR json.RawMessage `json:"clusterCIDR"`
				} `json:"plugins"`
			}
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			if got := compact(t, list.Plugins[0].IPAM.Ranges); got != tt.wantRanges {
				t.Errorf("ranges %s, want %s", got, tt.wantRanges)
			}
			if got := compact(t, list.Plugins[1].ClusterCIDR); got != tt.wantRoutes {
				t.Errorf("clusterCIDR %s, want %s", got, tt.wantRoutes)
			}
		})
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestIPv6Addressing: node i's IPv6 pod subnet is the i-th /64 of the
// IPv6 cluster CIDR; a host's IPv6 address writes its IPv4 host number's
// digits as the last group.
func TestIPv6Addressing(t *testing.T) {
	_, cluster, _ := net.ParseCIDR("fd18::/48")
	for i, want := range []string{"fd18::/64", "fd18:0:0:1::/64", "fd18:0:0:ff::/64"} {
		n := []int{0, 1, 255}[i]
		got, err := nth64(cluster, n)
		if err != nil || got.String() != want {
			t.Errorf("nth64(%s, %d) = %v, %v; want %s", cluster, n, got, err, want)
		}
	}
	_, small, _ := net.ParseCIDR("fd18::/63")
	if _, err := nth64(small, 2); err == nil {
		t.Errorf("nth64(%s, 2): no error, but a /63 holds two /64s", small)
	}
	for host, want := range map[int]string{1: "fd99::1", 11: "fd99::11", 200: "fd99::200"} {
		if got := hostIP6(underlay6(0), host).String(); got != want {
			t.Errorf("hostIP6(fd99::/64, %d) = %s, want %s", host, got, want)
		}
	}
	if got := hostIP6(underlay6(1), 13).String(); got != "fd99:1::13" {
		t.Errorf("hostIP6(fd99:1::/64, 13) = %s, want fd99:1::13", got)
	}
}
