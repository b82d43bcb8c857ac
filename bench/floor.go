package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/minicni/minicni/integration/lab"
	"github.com/vishvananda/netlink"
)

// floorResult is the kernel's own part of a pod's ADD and DEL, measured
// without any plugin: the veth pair made in one netlink request from this
// process, as minibridge makes it, then its deletion.
type floorResult struct {
	Create, Delete stats
}

// kernelFloor times, on a fresh minicni node whose bridge exists (after the
// warm-up pod), the veth request of b.pods pods one after the other (host
// end a port of the bridge and up, the peer straight in the pod's
// namespace) and then the deletion of each host end: the kernel's work an
// ADD and a DEL cannot avoid, with no process start, IPAM or configuration.
// The lab's teardown removes every namespace and so whatever is left.
func (b *bencher) kernelFloor(ctx context.Context) (res floorResult, err error) {
	l, n, _, err := b.freshNode(ctx, "minicni")
	if err != nil {
		return res, err
	}
	defer teardown("lab", l.Down)
	pods, err := b.newPods(l, n, "k")
	if err != nil {
		return res, err
	}
	var creates, deletes []time.Duration
	err = n.Do(func() error {
		br, err := netlinksafe.LinkByName(floorBridge)
		if err != nil {
			return fmt.Errorf("the node's bridge: %w", err)
		}
		for i, p := range pods {
			d, err := floorVeth(br, "kf"+strconv.Itoa(i), p)
			if err != nil {
				return err
			}
			creates = append(creates, d)
		}
		for i := range pods {
			// Looked up first, untimed: with its index known, LinkDel is the
			// one delete request.
			host, err := netlinksafe.LinkByName("kf" + strconv.Itoa(i))
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := netlink.LinkDel(host); err != nil {
				return fmt.Errorf("deleting veth %s: %w", host.Attrs().Name, err)
			}
			deletes = append(deletes, time.Since(t0))
		}
		return nil
	})
	return floorResult{Create: percentiles(creates), Delete: percentiles(deletes)}, err
}

// floorBridge is the bridge of bench/conflists/minicni.conflist.
const floorBridge = "cni0"

// floorVeth makes one pod's veth pair in one request and returns how long
// the request took.
func floorVeth(br netlink.Link, host string, p *lab.Pod) (time.Duration, error) {
	podNS, err := ns.GetNS(p.Path())
	if err != nil {
		return 0, err
	}
	defer podNS.Close()
	// One queue each way on both ends, as minibridge asks for.
	v := netlink.NewVeth(netlink.LinkAttrs{Name: host, MasterIndex: br.Attrs().Index, Flags: net.FlagUp, NumTxQueues: 1, NumRxQueues: 1})
	v.PeerName, v.PeerNamespace = "eth0", netlink.NsFd(int(podNS.Fd()))
	t0 := time.Now()
	if err := netlink.LinkAdd(v); err != nil {
		return 0, fmt.Errorf("creating veth %s: %w", host, err)
	}
	return time.Since(t0), nil
}
