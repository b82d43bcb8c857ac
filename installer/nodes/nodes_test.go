package nodes

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParsePodCIDRs(t *testing.T) {
	tests := []struct {
		in   []string
		want string // joined result, or the error's distinctive text
		ok   bool
	}{
		{[]string{"10.244.1.0/24"}, "10.244.1.0/24", true},
		{[]string{"fd00:10:244:1::/64", "10.244.1.0/24"}, "10.244.1.0/24 fd00:10:244:1::/64", true},
		{[]string{"10.244.1.0/30"}, "10.244.1.0/30", true},
		{[]string{"1.2.3.4/33"}, "not a CIDR", false},
		{[]string{"10.0.0.0/24; rm -rf /"}, "not a CIDR", false},
		{[]string{"fd00::g/64"}, "not a CIDR", false},
		{[]string{"fd00:::/64"}, "not a CIDR", false},
		{[]string{}, "no podCIDR", false},
		{nil, "no podCIDR", false},
		{[]string{" 10.0.0.0/24"}, "not a CIDR", false},
		{[]string{"10.0.0.0/24 "}, "not a CIDR", false},
		{[]string{"010.0.0.0/24"}, "not a CIDR", false},
		{[]string{"10.0.0.0/024"}, "", false},
		{[]string{"10.0.0.1/24"}, "host bits", false},
		{[]string{"::/0"}, "every address", false},
		{[]string{"fd00::/127"}, "too small", false},
		{[]string{"224.0.0.0/24"}, "unicast", false},
		{[]string{"fe80::/64"}, "unicast", false},
		{[]string{"::ffff:10.0.0.0/104"}, "IPv4-mapped", false},
		{[]string{"FD00::/64"}, "canonical", false},
		{[]string{"fd00:0::/64"}, "canonical", false},
		{[]string{"10.0.0.0/24", "10.0.1.0/24"}, "same IP family", false},
		{[]string{"10.0.0.0/24", "fd00::/64", "fd01::/64"}, "at most one", false},
	}
	for _, tt := range tests {
		got, err := ParsePodCIDRs(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePodCIDRs(%q) = %v, %v; want ok=%v", tt.in, got, err, tt.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePodCIDRs(%q) error %q lacks %q", tt.in, err, tt.want)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tt.want {
			t.Errorf("ParsePodCIDRs(%q) = %v, want %s", tt.in, s, tt.want)
		}
	}
}

func TestParseIP(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.99.0.12": true, "fd00:99::12": true, "::ffff:10.1.2.3": true,
		"": false, "10.99.0.12; reboot": false, "0.0.0.0": false, "::": false, "127.0.0.1": false,
		"::1": false, "224.0.0.1": false, "169.254.1.1": false, "fe80::1": false, "fe80::1%eth0": false, "10.99.0.12/24": false,
	} {
		a, err := ParseIP(s)
		if (err == nil) != ok {
			t.Errorf("ParseIP(%q) = %v, %v; want ok=%v", s, a, err, ok)
		}
		if err == nil && a.Is4In6() {
			t.Errorf("ParseIP(%q) kept the IPv4-mapped form", s)
		}
	}
}

func TestValidateName(t *testing.T) {
	for s, ok := range map[string]bool{
		"node-1": true, "ip-10-0-0-1.ec2.internal": true, "a": true,
		"": false, "Node": false, "-a": false, "a-": false, "a..b": false, "a b": false, "a/b": false, "$(id)": false,
		strings.Repeat("a", 254): false,
	} {
		if err := ValidateName(s); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := Parse(Node{Name: "b", InternalIPs: []string{"fd00:99::12", "10.99.0.12"}, PodCIDRs: []string{"fd00:18::/64", "172.18.1.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Parsed{Name: "b",
		InternalIPs: []netip.Addr{netip.MustParseAddr("fd00:99::12"), netip.MustParseAddr("10.99.0.12")},
		PodCIDRs:    []netip.Prefix{netip.MustParsePrefix("172.18.1.0/24"), netip.MustParsePrefix("fd00:18::/64")}}
	if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if _, err := Parse(Node{Name: "b"}); err != nil {
		t.Errorf("a node without podCIDRs yet is valid: %v", err)
	}
	for _, n := range []Node{
		{Name: "b", InternalIPs: []string{"x"}},
		{Name: "b", PodCIDRs: []string{"x"}},
		{Name: "B"},
	} {
		if _, err := Parse(n); err == nil {
			t.Errorf("Parse(%+v) accepted it", n)
		}
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nodes.json")
	write := func(s string) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(`[{"name":"a","internalIPs":["10.0.0.1"],"podCIDRs":["172.18.0.0/24"]},{"name":"b"}]`)
	f := &File{Path: path, Poll: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := f.List()
	if err != nil || len(list) != 2 || list[0].PodCIDRs[0] != "172.18.0.0/24" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if n, ok, err := f.Get("b"); !ok || err != nil || n.Name != "b" {
		t.Errorf("Get(b) = %+v %v %v", n, ok, err)
	}
	write(`[{"name":"a","internalIPs":["10.0.0.1"],"podCIDRs":["172.18.0.0/24"]}]`)
	select {
	case <-f.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification")
	}
	for _, bad := range []string{
		`[{"name":"a","podCIDR":"172.18.0.0/24"}]`, // typo for podCIDRs
		`[{"name":"a"},{"name":"a"}]`,
		`{"name":"a"}`,
		`[`,
	} {
		write(bad)
		if _, err := f.List(); err == nil {
			t.Errorf("List accepted %s", bad)
		}
	}
	if err := (&File{Path: filepath.Join(dir, "missing")}).Start(ctx); err == nil {
		t.Error("Start accepted a missing file")
	}
}

func TestFromObject(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "a"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.0.0.0/24"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeExternalIP, Address: "203.0.113.1"},
			{Type: corev1.NodeInternalIP, Address: "10.99.0.11"},
			{Type: corev1.NodeInternalIP, Address: "fd00:99::11"},
		}},
	}
	want := Node{Name: "a", InternalIPs: []string{"10.99.0.11", "fd00:99::11"}, PodCIDRs: []string{"10.0.0.0/24"}}
	if diff := cmp.Diff(want, FromObject(n)); diff != "" {
		t.Errorf("legacy podCIDR (-want +got):\n%s", diff)
	}
	n.Spec.PodCIDRs = []string{"10.0.0.0/24", "fd00::/64"}
	if got := FromObject(n).PodCIDRs; len(got) != 2 {
		t.Errorf("podCIDRs = %v, want spec.podCIDRs", got)
	}
	slimmed, _ := slim(n)
	if diff := cmp.Diff(FromObject(n), FromObject(slimmed.(*corev1.Node))); diff != "" {
		t.Errorf("slim lost something used (-want +got):\n%s", diff)
	}
}

// FuzzParsePodCIDRs: an accepted value is canonical, so it is exactly what
// gets written; nothing with a shell or JSON metacharacter is accepted.
func FuzzParsePodCIDRs(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "1.2.3.4/33", "10.0.0.0/24; rm -rf /", "fd00::/64", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParsePodCIDRs([]string{s})
		if err != nil {
			return
		}
		if got[0].String() != s {
			t.Fatalf("accepted %q as %s", s, got[0])
		}
		if strings.ContainsAny(s, " ;$`\"'\\|&<>(){}\n") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func TestRelevant(t *testing.T) {
	base := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "1"},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.0.0.0/24"}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.11"}}},
	}
	heartbeat := base.DeepCopy()
	heartbeat.ResourceVersion = "2"
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	heartbeat.Status.Addresses = append(heartbeat.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "a"})
	cidr := base.DeepCopy()
	cidr.Spec.PodCIDRs = []string{"10.0.1.0/24"}
	ip := base.DeepCopy()
	ip.Status.Addresses[0].Address = "10.99.0.12"
	for _, tt := range []struct {
		name string
		n    *corev1.Node
		want bool
	}{{"heartbeat", heartbeat, false}, {"podCIDR", cidr, true}, {"InternalIP", ip, true}} {
		if got := Relevant(base, tt.n); got != tt.want {
			t.Errorf("%s: Relevant = %v, want %v", tt.name, got, tt.want)
		}
	}
}
