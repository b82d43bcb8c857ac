package libmini

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	pod := NotWhole | RoomForPods | Unicast | Canonical
	tests := []struct {
		s    string
		opts []AddrOption
		want string // the prefix, or a part of the error
	}{
		{"10.0.0.0/24", nil, "10.0.0.0/24"},
		{"fd00::/64", nil, "fd00::/64"},
		{"0.0.0.0/0", nil, "0.0.0.0/0"},
		{"10.0.0.0/32", nil, "10.0.0.0/32"},
		{"FD00::/64", nil, "fd00::/64"},
		{"10.0.0.0/33", nil, `invalid f "10.0.0.0/33": not a CIDR`},
		{"10.0.0.0", nil, "not a CIDR"},
		{" 10.0.0.0/24", nil, "not a CIDR"},
		{"010.0.0.0/24", nil, "not a CIDR"},
		{"fe80::%eth0/64", nil, "not a CIDR"},
		{"::ffff:10.0.0.0/104", nil, "IPv4-mapped"},
		{"10.0.0.1/24", nil, "host bits set, the network is 10.0.0.0/24"},
		{"0.0.0.0/0", []AddrOption{NotWhole}, "covers every address"},
		{"::/0", []AddrOption{NotWhole}, "covers every address"},
		{"10.0.0.0/30", []AddrOption{RoomForPods}, "10.0.0.0/30"},
		{"10.0.0.0/31", []AddrOption{RoomForPods}, "too small for a gateway and pods (at most /30)"},
		{"fd00::/126", []AddrOption{RoomForPods}, "fd00::/126"},
		{"fd00::/127", []AddrOption{RoomForPods}, "(at most /126)"},
		{"127.0.0.0/8", []AddrOption{Unicast}, "not a unicast network"},
		{"224.0.0.0/24", []AddrOption{Unicast}, "not a unicast network"},
		{"fe80::/64", []AddrOption{Unicast}, "not a unicast network"},
		{"ff01::/16", []AddrOption{Unicast}, "not a unicast network"},
		{"FD00::/64", []AddrOption{Canonical}, "not in canonical form fd00::/64"},
		{"fd00:0::/64", []AddrOption{pod}, "not in canonical form fd00::/64"},
		{"10.244.1.0/24", []AddrOption{pod}, "10.244.1.0/24"},
	}
	for _, tc := range tests {
		p, err := ParsePrefix("f", tc.s, tc.opts...)
		if err != nil {
			if code(t, err) != CodeInvalidConfig || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePrefix(%q) = code %d %q, want code 7 containing %q", tc.s, code(t, err), err, tc.want)
			}
			if p.IsValid() {
				t.Errorf("ParsePrefix(%q) returned %s with its error", tc.s, p)
			}
			continue
		}
		if p.String() != tc.want {
			t.Errorf("ParsePrefix(%q) = %s, want %s", tc.s, p, tc.want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		s    string
		opts []AddrOption
		want string // the address, or a part of the error
	}{
		{"10.0.0.1", nil, "10.0.0.1"},
		{"::ffff:10.0.0.1", nil, "10.0.0.1"},
		{"127.0.0.1", nil, "127.0.0.1"},
		{"fe80::1%eth0", nil, `invalid f "fe80::1%eth0": not an IP address`},
		{"10.0.0.1/24", nil, "not an IP address"},
		{"10.0.0.1\n", nil, "not an IP address"},
		{"10.0.0.1/24", []AddrOption{PrefixLenIgnored}, "10.0.0.1"},
		{"::ffff:10.0.0.5/120", []AddrOption{PrefixLenIgnored}, "10.0.0.5"},
		{"fe80::1%eth0/64", []AddrOption{PrefixLenIgnored}, "not an IP address"},
		{"10.0.0.1/33", []AddrOption{PrefixLenIgnored}, "not an IP address"},
		{"10.99.0.12", []AddrOption{Unicast}, "10.99.0.12"},
		{"0.0.0.0", []AddrOption{Unicast}, "not a routable unicast address"},
		{"::", []AddrOption{Unicast}, "not a routable unicast address"},
		{"127.0.0.2", []AddrOption{Unicast}, "not a routable unicast address"},
		{"239.1.1.1", []AddrOption{Unicast}, "not a routable unicast address"},
		{"169.254.9.9", []AddrOption{Unicast}, "not a routable unicast address"},
		{"fe80::1", []AddrOption{Unicast}, "not a routable unicast address"},
		{"ff02::1", []AddrOption{Unicast}, "not a routable unicast address"},
		{"::ffff:127.0.0.1", []AddrOption{Unicast}, "not a routable unicast address"},
	}
	for _, tc := range tests {
		a, err := ParseAddr("f", tc.s, tc.opts...)
		if err != nil {
			if code(t, err) != CodeInvalidConfig || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseAddr(%q) = code %d %q, want code 7 containing %q", tc.s, code(t, err), err, tc.want)
			}
			if a.IsValid() {
				t.Errorf("ParseAddr(%q) returned %s with its error", tc.s, a)
			}
			continue
		}
		if a.String() != tc.want {
			t.Errorf("ParseAddr(%q) = %s, want %s", tc.s, a, tc.want)
		}
	}
}

func TestAddrWithCode(t *testing.T) {
	_, err := ParseAddr("CNI_ARGS IP", "x", WithCode(CodeInvalidEnv, "CNI_ARGS=IP=x"))
	e, ok := AsCNIError(err)
	if !ok || e.Code != CodeInvalidEnv || e.Msg != `invalid CNI_ARGS IP "x": not an IP address` || e.Details != "CNI_ARGS=IP=x" {
		t.Errorf("ParseAddr with WithCode = %#v", err)
	}
	_, err = ParsePrefix("p", "10.0.0.1/8", WithCode(CodeInvalidEnv, ""))
	if code(t, err) != CodeInvalidEnv {
		t.Errorf("ParsePrefix with WithCode = %v, want code %d", err, CodeInvalidEnv)
	}
}

func TestWithin(t *testing.T) {
	cluster := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")}
	tests := []struct {
		p    string
		want bool
	}{
		{"10.244.1.0/24", true},
		{"10.244.0.0/16", true},
		{"10.244.1.7/32", true},
		{"10.0.0.0/8", false}, // holds the cluster, is not inside it
		{"10.245.0.0/24", false},
		{"fd00:10:244:1::/64", true},
		{"fd00:10:245::/64", false},
		{"::ffff:10.244.1.0/120", false}, // another family
	}
	for _, tc := range tests {
		if got := Within(netip.MustParsePrefix(tc.p), cluster); got != tc.want {
			t.Errorf("Within(%s, %v) = %v, want %v", tc.p, cluster, got, tc.want)
		}
	}
	if Within(netip.MustParsePrefix("10.244.1.0/24"), nil) {
		t.Error("Within of an empty list is true")
	}
}
