package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/internal/crashpoint"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
)

// crashBinary is minibridge built with the crashpoints tag (it pauses at
// the point named by MINICNI_CRASHPOINT), built once into binDir.
var crashBinary = sync.OnceValues(func() (string, error) {
	out := filepath.Join(binDir, "minibridge-crash")
	build := exec.Command("go", "build", "-trimpath", "-tags", "crashpoints", "-o", out, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building minibridge-crash: %v\n%s", err, b)
	}
	return "minibridge-crash", nil
})

// killAt runs c with the crash binary in host, waits until it pauses at
// point and SIGKILLs it, as a node losing the runtime mid-ADD would.
func killAt(t *testing.T, host ns.NetNS, c call, point string) {
	t.Helper()
	bin, err := crashBinary()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	minitest.Do(t, host, func() error {
		cmd = exec.Command(filepath.Join(binDir, bin))
		cmd.Env = []string{"CNI_COMMAND=" + c.cmd, "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + c.netns,
			"CNI_IFNAME=" + c.ifname, "CNI_PATH=" + binDir, "PATH=" + os.Getenv("PATH"), crashpoint.Env + "=" + point}
		cmd.Stdin = bytes.NewReader(c.stdin)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		if err := crashpoint.Await(cmd, stderr, point, 30*time.Second); err != nil {
			return fmt.Errorf("minibridge-crash: %w", err)
		}
		if err := cmd.Process.Kill(); err != nil {
			return err
		}
		_ = cmd.Wait()
		return nil
	})
}

// TestGC: GC through libcni, as a runtime drives it, collects what lost
// DELs and ADDs killed half-way leave: the host veths (attached to the
// bridge or not yet) and the reservations of attachments the runtime no
// longer lists. The live pod keeps its veth, address and connectivity;
// links minibridge did not make, or made for another network, stay.
func TestGC(t *testing.T) {
	requireIPAM(t, "miniipam")
	t.Parallel()
	ctx := context.Background()
	host := minitest.NewNS(t)
	n := newNetwork(t, "miniipam", "10.58.0.0/24")
	plugin := n.conf(t, "1.1.0", nil)
	list, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"plugins":[%s]}`, n.name, plugin)))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil)
	rt := func(p *pod) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.ns.Path(), IfName: p.if_}
	}
	inHost := func(f func() error) {
		t.Helper()
		if err := host.Do(func(ns.NetNS) error { return f() }); err != nil {
			t.Fatal(err)
		}
	}
	add := func(p *pod) {
		t.Helper()
		inHost(func() error { _, err := cni.AddNetworkList(ctx, list, rt(p)); return err })
	}

	keep, lostCached, lost := newPod(t), newPod(t), newPod(t)
	add(keep)
	add(lostCached)
	add(lost)
	// The runtime lost its record of one attachment (its libcni cache);
	// the other is still cached, and libcni's GC DELs it itself.
	if err := os.Remove(filepath.Join(cacheDir, "results", fmt.Sprintf("%s-%s-%s", n.name, lost.id, lost.if_))); err != nil {
		t.Fatal(err)
	}
	// ADDs killed: after the reservation (miniipam in-process), after the
	// host end was made, after it was attached. libcni never cached them.
	killed := map[string]*pod{}
	for _, point := range []string{crashpoint.Linked, crashpoint.VethCreated, crashpoint.VethAttached} {
		p := newPod(t)
		killAt(t, host, p.call("ADD", plugin), point)
		killed[point] = p
	}
	stale := []*pod{lostCached, lost, killed[crashpoint.VethCreated], killed[crashpoint.VethAttached]}
	hostLinks := minitest.LinkNames(t, host)
	for _, p := range stale {
		if !slices.Contains(hostLinks, bridge.HostVethName(p.id, p.if_)) {
			t.Fatalf("before GC: no host end for %s", p.id)
		}
	}
	if r := n.reservations(t); len(r) != 6 {
		t.Fatalf("before GC: reservations %v, want 6", r)
	}
	// minibridge creates the host end already a port of the bridge (one
	// request): an ADD killed right after leaves it there.
	if master := link(t, host, bridge.HostVethName(killed[crashpoint.VethCreated].id, "eth0")).Attrs().MasterIndex; master != link(t, host, n.br).Attrs().Index {
		t.Fatalf("the ADD killed at %s left its host end off the bridge (master %d)", crashpoint.VethCreated, master)
	}
	// A host end marked as this network's but on no bridge, as an ADD of an
	// older minibridge killed before it attached the host end left it, is
	// collected too.
	detached := bridge.HostVethName("killed-old", "eth0")
	ipCmd(t, host, "link", "add", detached, "type", "veth", "peer", "name", minitest.Name("dtp"))
	ipCmd(t, host, "link", "set", detached, "alias", "minibridge network "+n.name)

	// Links GC must leave alone: not named like a host end, though on the
	// bridge; named like one but on another bridge; named like one, on the
	// bridge, but marked as another network's (networks in different VLANs
	// may share a bridge); named like one, on no bridge, unmarked.
	other := minitest.Name("mbo")
	foreign := minitest.Name("fgn")
	otherNet, elsewhere, unmarked := bridge.HostVethName("x1", "eth0"), bridge.HostVethName("x2", "eth0"), bridge.HostVethName("x3", "eth0")
	ipCmd(t, host, "link", "add", other, "type", "bridge")
	for _, l := range []string{foreign, otherNet, elsewhere, unmarked} {
		ipCmd(t, host, "link", "add", l, "type", "veth", "peer", "name", l[:3]+"p"+l[4:])
	}
	ipCmd(t, host, "link", "set", foreign, "master", n.br)
	ipCmd(t, host, "link", "set", otherNet, "master", n.br, "alias", "minibridge network another")
	ipCmd(t, host, "link", "set", elsewhere, "master", other)
	untouched := []string{foreign, otherNet, elsewhere, unmarked}

	gc := func(valid ...*pod) error {
		args := &libcni.GCArgs{}
		for _, p := range valid {
			args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: p.id, IfName: p.if_})
		}
		return host.Do(func(ns.NetNS) error { return cni.GCNetworkList(ctx, list, args) })
	}
	if err := gc(keep); err != nil {
		t.Fatalf("GC: %v", err)
	}

	hostLinks = minitest.LinkNames(t, host)
	for _, p := range stale {
		if slices.Contains(hostLinks, bridge.HostVethName(p.id, p.if_)) {
			t.Errorf("after GC: host end of %s is left", p.id)
		}
	}
	if slices.Contains(hostLinks, detached) {
		t.Errorf("after GC: the marked host end on no bridge %s is left", detached)
	}
	for _, l := range append(untouched, bridge.HostVethName(keep.id, keep.if_)) {
		if !slices.Contains(hostLinks, l) {
			t.Errorf("after GC: %s was removed", l)
		}
	}
	var keepRes struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	inHost(func() error {
		r, err := cni.GetNetworkListCachedResult(list, rt(keep))
		if err == nil {
			err = json.Unmarshal(mustJSON(t, r), &keepRes)
		}
		return err
	})
	if r := n.reservations(t); len(r) != 1 || len(keepRes.IPs) != 1 || r[0]+"/24" != keepRes.IPs[0].Address {
		t.Errorf("after GC: reservations %v, want only the live pod's %v", r, keepRes.IPs)
	}
	inHost(func() error { return cni.CheckNetworkList(ctx, list, rt(keep)) })
	ping(t, keep.ns, "10.58.0.1")

	// A second GC has nothing left to do; DEL of the live pod still works.
	if err := gc(keep); err != nil {
		t.Fatalf("second GC: %v", err)
	}
	inHost(func() error { return cni.DelNetworkList(ctx, list, rt(keep)) })
	expectDetached(t, host, n, keep)
}

// TestGCWithoutList: GC without cni.dev/valid-attachments is refused with
// code 7 (read as "nothing is live" it would cut every pod off) and removes
// nothing.
func TestGCWithoutList(t *testing.T) {
	for _, ipam := range ipams {
		t.Run("ipam="+ipam, func(t *testing.T) {
			requireIPAM(t, ipam)
			t.Parallel()
			host := minitest.NewNS(t)
			n := newNetwork(t, ipam, "10.59.0.0/24")
			conf := n.conf(t, "1.1.0", nil)
			p := newPod(t)
			run(t, host, p.call("ADD", conf))
			wantCNIError(t, host, call{cmd: "GC", stdin: conf}, libmini.CodeInvalidConfig, "cni.dev/valid-attachments")
			if !slices.Contains(minitest.LinkNames(t, host), bridge.HostVethName(p.id, p.if_)) || len(n.reservations(t)) != 1 {
				t.Error("the refused GC removed the pod's veth or reservation")
			}
			run(t, host, p.call("DEL", conf))
		})
	}
}
