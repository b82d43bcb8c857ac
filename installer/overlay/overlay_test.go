package overlay

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"vxlan mode", func(c *Config) { c.Mode = VXLAN }, ""},
		{"none mode", func(c *Config) { c.Mode = None }, ""},
		{"smallest VNI", func(c *Config) { c.VNI = 1 }, ""},
		{"largest VNI", func(c *Config) { c.VNI = 16777215 }, ""},
		{"highest port", func(c *Config) { c.Port = 65535 }, ""},
		{"15-byte name", func(c *Config) { c.Device = "minicni.vxlan01" }, ""},
		{"VNI 0", func(c *Config) { c.VNI = 0 }, "invalid VXLAN VNI 0: must be 1-16777215"},
		{"VNI over 24 bits", func(c *Config) { c.VNI = 1 << 24 }, "invalid VXLAN VNI 16777216"},
		{"negative VNI", func(c *Config) { c.VNI = -1 }, "invalid VXLAN VNI -1"},
		{"port 0", func(c *Config) { c.Port = 0 }, "invalid VXLAN UDP port 0: must be 1-65535"},
		{"port over 16 bits", func(c *Config) { c.Port = 65536 }, "invalid VXLAN UDP port 65536"},
		{"name too long", func(c *Config) { c.Device = "minicni.vxlan012" }, "at most 15"},
		{"name with a slash", func(c *Config) { c.Device = "vx/0" }, "contains '/'"},
		{"empty name", func(c *Config) { c.Device = "" }, "is empty"},
		{"unknown mode", func(c *Config) { c.Mode = "geneve" }, `invalid overlay mode "geneve"`},
		{"zero mode", func(c *Config) { c.Mode = "" }, `invalid overlay mode ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want valid", c, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate(%+v) = %v, want an error containing %q", c, err, tt.want)
			}
		})
	}
	if (Config{}).Enabled() || (Config{Mode: None}).Enabled() || !(Config{Mode: Auto}).Enabled() || !(Config{Mode: VXLAN}).Enabled() {
		t.Error("Enabled: want true for auto and vxlan only")
	}
}

func TestMAC(t *testing.T) {
	for _, tt := range []struct{ addr, mac string }{
		{"10.99.0.11", "0a:58:0a:63:00:0b"},
		{"192.168.7.7", "0a:58:c0:a8:07:07"},
	} {
		if got := MAC(netip.MustParseAddr(tt.addr)).String(); !strings.HasPrefix(got, tt.mac) {
			t.Errorf("MAC(%s) = %s, want %s…", tt.addr, got, tt.mac)
		}
	}
	m := MAC(netip.MustParseAddr("fd00:99::11"))
	if m[0] != 0x0a || m[1] != 0x59 || m[0]&1 != 0 || m[0]&2 == 0 {
		t.Errorf("MAC of an IPv6 address %s: want 0a:59:…, unicast and locally administered", m)
	}
	if m.String() != MAC(netip.MustParseAddr("fd00:99::11")).String() || m.String() == MAC(netip.MustParseAddr("fd00:99::12")).String() {
		t.Error("MAC of IPv6 addresses: want the same for one address and different for two")
	}
}

func TestDerivations(t *testing.T) {
	if got := NextHop(netip.MustParsePrefix("172.18.1.0/24")); got != netip.MustParseAddr("172.18.1.0") {
		t.Errorf("NextHop = %s", got)
	}
	if got := NextHop(netip.MustParsePrefix("fd00:18:0:1::/64")); got != netip.MustParseAddr("fd00:18:0:1::") {
		t.Errorf("NextHop = %s", got)
	}
	if Overhead(netip.MustParseAddr("10.0.0.1")) != 50 || Overhead(netip.MustParseAddr("fd00::1")) != 70 || MaxOverhead != 70 {
		t.Error("Overhead: want 50 over IPv4, 70 over IPv6")
	}
	got := DeviceAddrs([]netip.Prefix{netip.MustParsePrefix("172.18.0.0/24"), netip.MustParsePrefix("fd00:18::/64")})
	if !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("172.18.0.0/32")}) {
		t.Errorf("DeviceAddrs = %v, want the IPv4 network address only", got)
	}
}

func TestUnderlay(t *testing.T) {
	local := map[string]bool{"10.99.0.11": true, "10.99.0.12": true, "fd00:99::11": true}
	isLocal := func(a netip.Addr) bool { return local[a.String()] }
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tt := range []struct {
		ips  []netip.Addr
		want string
	}{
		{addrs("10.99.0.11", "fd00:99::11"), "10.99.0.11"},
		{addrs("fd00:99::11", "10.99.0.11"), "10.99.0.11"}, // IPv4 first, whatever the order
		{addrs("10.99.0.12", "10.99.0.11"), "10.99.0.12"},  // the first of the family
		{addrs("10.50.0.1", "fd00:99::11"), "fd00:99::11"}, // the IPv4 one is not local
		{addrs("10.50.0.1"), "invalid IP"},
		{nil, "invalid IP"},
	} {
		if got := Underlay(tt.ips, isLocal); got.String() != tt.want {
			t.Errorf("Underlay(%v) = %s, want %s", tt.ips, got, tt.want)
		}
	}
	for _, s := range []string{"auto", "vxlan", "none"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Auto", "VXLAN", "direct"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted it", s)
		}
	}
}
