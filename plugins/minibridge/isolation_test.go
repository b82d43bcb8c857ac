package main

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unreachable fails t unless a ping from n to addr gets no answer.
func unreachable(t *testing.T, from ns.NetNS, addr string) {
	t.Helper()
	minitest.Do(t, from, func() error {
		if out, err := exec.Command("ping", "-c", "1", "-W", "1", addr).CombinedOutput(); err == nil {
			return fmt.Errorf("ping %s answered, want no answer:\n%s", addr, out)
		}
		return nil
	})
}

// wantCNIError runs c and fails t unless it ends with CNI error code whose
// message names every mention.
func wantCNIError(t *testing.T, host ns.NetNS, c call, code uint, mention ...string) {
	t.Helper()
	_, cniErr, err := execIn(host, c)
	if err != nil {
		t.Fatal(err)
	}
	if cniErr == nil || cniErr.Code != code {
		t.Fatalf("%s: %+v, want CNI error %d", c.cmd, cniErr, code)
	}
	for _, m := range mention {
		if !strings.Contains(cniErr.Msg, m) {
			t.Errorf("%s error %q does not name %q", c.cmd, cniErr.Msg, m)
		}
	}
}

// TestPortIsolation: with portIsolation the host end is an isolated bridge
// port: two such pods cannot reach each other, each reaches the gateway
// and a pod of the same network attached without portIsolation; CHECK
// notices the flag being turned off.
func TestPortIsolation(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	n := newNetwork(t, "host-local", "10.53.0.0/24")
	open := n.conf(t, "1.1.0", nil)
	n.extra["portIsolation"] = true
	isolated := n.conf(t, "1.1.0", nil)

	a, b, c := newPod(t), newPod(t), newPod(t)
	ra := parseResult(t, "1.1.0", run(t, host, a.call("ADD", isolated)))
	rb := parseResult(t, "1.1.0", run(t, host, b.call("ADD", isolated)))
	rc := parseResult(t, "1.1.0", run(t, host, c.call("ADD", open)))

	for _, p := range []struct {
		pod  *pod
		want bool
	}{{a, true}, {b, true}, {c, false}} {
		var info netlink.Protinfo
		minitest.Do(t, host, func() (err error) {
			info, err = netlinksafe.LinkGetProtinfo(link(t, host, bridge.HostVethName(p.pod.id, p.pod.if_)))
			return err
		})
		if info.Isolated != p.want {
			t.Errorf("pod %s: isolated %v, want %v", p.pod.id, info.Isolated, p.want)
		}
	}
	ping(t, a.ns, ra.IPs[0].Gateway.String())
	ping(t, b.ns, rb.IPs[0].Gateway.String())
	ping(t, a.ns, rc.IPs[0].Address.IP.String())
	ping(t, c.ns, rb.IPs[0].Address.IP.String())
	unreachable(t, a.ns, rb.IPs[0].Address.IP.String())
	unreachable(t, b.ns, ra.IPs[0].Address.IP.String())

	check := a.call("CHECK", n.conf(t, "1.1.0", mustJSON(t, ra)))
	run(t, host, check)
	hostEnd := bridge.HostVethName(a.id, a.if_)
	ipCmd(t, host, "link", "set", hostEnd, "type", "bridge_slave", "isolated", "off")
	wantCNIError(t, host, check, libmini.CodeCheckFailed, hostEnd, "isolated false, want true")
	ipCmd(t, host, "link", "set", hostEnd, "type", "bridge_slave", "isolated", "on")
	run(t, host, check)
	// The open pod's CHECK wants its port not isolated.
	delete(n.extra, "portIsolation")
	checkC := c.call("CHECK", n.conf(t, "1.1.0", mustJSON(t, rc)))
	run(t, host, checkC)
	ipCmd(t, host, "link", "set", bridge.HostVethName(c.id, c.if_), "type", "bridge_slave", "isolated", "on")
	wantCNIError(t, host, checkC, libmini.CodeCheckFailed, "isolated true, want false")

	for _, p := range []*pod{a, b, c} {
		run(t, host, p.call("DEL", open))
		expectDetachedPod(t, host, p)
	}
	if r := n.reservations(t); len(r) != 0 {
		t.Errorf("reservations left: %v", r)
	}
}

// expectDetachedPod checks that p's host end is gone and the pod holds only lo.
func expectDetachedPod(t *testing.T, host ns.NetNS, p *pod) {
	t.Helper()
	if slices.Contains(minitest.LinkNames(t, host), bridge.HostVethName(p.id, p.if_)) {
		t.Errorf("host end of %s left", p.id)
	}
	if got := minitest.LinkNames(t, p.ns); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("pod %s links %v, want only lo", p.id, got)
	}
}

// vlanFiltering reports whether this kernel's bridges can filter VLANs
// (CONFIG_BRIDGE_VLAN_FILTERING), trying it in a namespace of its own.
func vlanFiltering(t *testing.T) bool {
	t.Helper()
	probe := minitest.NewNS(t)
	var supported bool
	minitest.Do(t, probe, func() error {
		on := true
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "probe0"
		err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs, VlanFiltering: &on})
		supported = err == nil
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		return nil
	})
	return supported
}

// TestVlan: with vlan the bridge filters VLANs and the pod's port is an
// untagged port of that VLAN only; the gateway is on bridge.vid. Pods in
// one VLAN reach each other, pods in different VLANs of one subnet do not
// (nor a pod without a vlan), a VLAN pod reaches its gateway; CHECK
// notices a port put back in the default VLAN; with preserveDefaultVlan
// the port keeps it. hack/vm-test.sh runs this where the kernel can. On a kernel without bridge VLAN
// filtering, ADD with vlan fails (code 104, saying so) and leaves nothing:
// never an unisolated pod.
func TestVlan(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	if !vlanFiltering(t) {
		n := newNetwork(t, "host-local", "10.54.0.0/24")
		n.extra["vlan"] = 10
		p := newPod(t)
		before := minitest.LinkNames(t, host)
		wantCNIError(t, host, p.call("ADD", n.conf(t, "1.0.0", nil)), libmini.CodeLink, "VLAN filtering", "vlan")
		if d := minitest.LinkNames(t, host); !slices.Equal(before, d) {
			t.Errorf("host links %v after the failed ADD, want %v", d, before)
		}
		expectDetachedPod(t, host, p)
		// An existing bridge without VLAN filtering is not used silently either.
		ipCmd(t, host, "link", "add", n.br, "type", "bridge")
		wantCNIError(t, host, p.call("ADD", n.conf(t, "1.0.0", nil)), libmini.CodeLink, "VLAN filtering")
		expectDetached(t, host, n, p)
		t.Log("this kernel has no bridge VLAN filtering: checked that ADD with vlan fails cleanly; the VLAN datapath is not exercised")
		return
	}

	// Layer 2: one subnet, no gateways; the VLAN alone separates pods.
	l2 := newNetwork(t, "host-local", "10.54.0.0/24")
	l2.extra["isGateway"] = false
	l2.extra["isDefaultGateway"] = false
	conf := func(vlan int) []byte {
		if vlan == 0 {
			delete(l2.extra, "vlan")
		} else {
			l2.extra["vlan"] = vlan
		}
		return l2.conf(t, "1.1.0", nil)
	}
	a1, a2, b1, plain := newPod(t), newPod(t), newPod(t), newPod(t)
	var outA1 []byte
	addr := func(p *pod, c []byte) string {
		out := run(t, host, p.call("ADD", c))
		if p == a1 {
			outA1 = out
		}
		return parseResult(t, "1.1.0", out).IPs[0].Address.IP.String()
	}
	ipA1, ipA2, ipB1, ipPlain := addr(a1, conf(10)), addr(a2, conf(10)), addr(b1, conf(20)), addr(plain, conf(0))
	if br := link(t, host, l2.br).(*netlink.Bridge); br.VlanFiltering == nil || !*br.VlanFiltering {
		t.Errorf("bridge %s does not filter VLANs", l2.br)
	}
	ping(t, a1.ns, ipA2)
	ping(t, a2.ns, ipA1)
	unreachable(t, a1.ns, ipB1)
	unreachable(t, b1.ns, ipA2)
	unreachable(t, plain.ns, ipA1)
	unreachable(t, a1.ns, ipPlain)

	// CHECK, then drift: the default VLAN back on a1's port.
	l2.extra["vlan"] = 10
	checkA1 := a1.call("CHECK", l2.conf(t, "1.1.0", outA1))
	run(t, host, checkA1)
	hostEnd := bridge.HostVethName(a1.id, a1.if_)
	minitest.Do(t, host, func() error {
		out, err := exec.Command("bridge", "vlan", "add", "dev", hostEnd, "vid", "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bridge vlan add: %v: %s", err, out)
		}
		return nil
	})
	wantCNIError(t, host, checkA1, libmini.CodeCheckFailed, hostEnd, "also in VLAN")

	// preserveDefaultVlan: the port stays in the default VLAN too, as the
	// VLAN's PVID; CHECK accepts that.
	l2.extra["vlan"] = 10
	l2.extra["preserveDefaultVlan"] = true
	kept := newPod(t)
	keptOut := run(t, host, kept.call("ADD", l2.conf(t, "1.1.0", nil)))
	var vlans []string
	minitest.Do(t, host, func() error {
		all, err := netlinksafe.BridgeVlanList()
		for _, v := range all[int32(link(t, host, bridge.HostVethName(kept.id, kept.if_)).Attrs().Index)] {
			vlans = append(vlans, fmt.Sprintf("%d pvid=%v untagged=%v", v.Vid, v.PortVID(), v.EngressUntag()))
		}
		return err
	})
	if want := []string{"1 pvid=false untagged=true", "10 pvid=true untagged=true"}; !slices.Equal(vlans, want) {
		t.Errorf("preserveDefaultVlan: port VLANs %v, want %v", vlans, want)
	}
	run(t, host, kept.call("CHECK", l2.conf(t, "1.1.0", keptOut)))
	run(t, host, kept.call("DEL", l2.conf(t, "1.1.0", nil)))
	delete(l2.extra, "preserveDefaultVlan")

	// Layer 3: a VLAN with a gateway on bridge.vid, on the same bridge.
	l3 := newNetwork(t, "host-local", "10.55.0.0/24")
	l3.br = l2.br
	l3.extra["vlan"] = 30
	g := newPod(t)
	r := parseResult(t, "1.1.0", run(t, host, g.call("ADD", l3.conf(t, "1.1.0", nil))))
	gw := bridge.VlanGateway(l3.br, 30)
	if got := minitest.GlobalAddrs(t, host, gw); !slices.Equal(got, []string{r.IPs[0].Gateway.String() + "/24"}) {
		t.Errorf("%s holds %v, want the gateway", gw, got)
	}
	if len(r.Interfaces) != 4 || r.Interfaces[3].Name != gw {
		t.Errorf("result interfaces %v, want the VLAN gateway last", r.Interfaces)
	}
	ping(t, g.ns, r.IPs[0].Gateway.String())
	run(t, host, g.call("CHECK", l3.conf(t, "1.1.0", mustJSON(t, r))))
	run(t, host, g.call("DEL", l3.conf(t, "1.1.0", nil)))

	for _, p := range []*pod{a1, a2, b1, plain} {
		run(t, host, p.call("DEL", conf(0)))
		expectDetachedPod(t, host, p)
	}
}

// TestEnableDAD: enabledad turns IPv6 duplicate address detection on in the
// pod (accept_dad=1, enhanced_dad=1); by default it is off (accept_dad=0).
func TestEnableDAD(t *testing.T) {
	for _, dad := range []bool{false, true} {
		t.Run(fmt.Sprintf("enabledad=%v", dad), func(t *testing.T) {
			minitest.RequireRoot(t)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, "host-local", "fd00:56::/64")
			if dad {
				n.extra["enabledad"] = true
			}
			p := newPod(t)
			conf := n.conf(t, "1.0.0", nil)
			res := parseResult(t, "1.0.0", run(t, host, p.call("ADD", conf)))
			want := map[bool]string{false: "0", true: "1"}[dad]
			minitest.Do(t, p.ns, func() error {
				for _, k := range []string{"accept_dad", "enhanced_dad"} {
					if k == "enhanced_dad" && !dad {
						continue
					}
					v, err := sysctl.Sysctl("net/ipv6/conf/" + p.if_ + "/" + k)
					if err != nil {
						return err
					}
					if v != want {
						t.Errorf("%s = %s, want %s", k, v, want)
					}
				}
				return nil
			})
			ping(t, p.ns, res.IPs[0].Gateway.String())
			run(t, host, p.call("DEL", conf))
		})
	}
}

// TestRefusedKeys: keys of the reference bridge that minibridge does not
// implement are refused with code 7 naming the key when set, accepted at
// their defaults; nothing is created either way before the refusal.
func TestRefusedKeys(t *testing.T) {
	minitest.RequireRoot(t)
	t.Parallel()
	host := minitest.NewNS(t)
	for _, tt := range []struct {
		key   string
		value any
	}{
		{"vlanTrunk", []map[string]int{{"minID": 100, "maxID": 120}}},
		{"macspoofchk", true},
		{"disableContainerInterface", true},
		{"ipMasq", true},
	} {
		t.Run(tt.key, func(t *testing.T) {
			n := newNetwork(t, "host-local", "10.57.0.0/24")
			n.extra[tt.key] = tt.value
			p := newPod(t)
			minitest.ForEachVersion(t, func(t *testing.T, ver string) {
				wantCNIError(t, host, p.call("ADD", n.conf(t, ver, nil)), libmini.CodeInvalidConfig, tt.key)
			})
			if slices.Contains(minitest.LinkNames(t, host), n.br) {
				t.Errorf("the refused ADD created bridge %s", n.br)
			}
			expectDetachedPod(t, host, p)
			if r := n.reservations(t); len(r) != 0 {
				t.Errorf("reservations left: %v", r)
			}
		})
	}
}
