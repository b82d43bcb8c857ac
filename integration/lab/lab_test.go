package lab

import (
	"encoding/json"
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
			b, err := Render([]byte(tmpl), "172.18.3.0/24", "172.18.0.0/16", "/tmp/x", nil, tt.autoMTU)
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
