package bridge

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/libmini/minitest"
)

// BenchmarkAddDelWarm runs Add and Del in this process, miniipam in-process,
// on a bridge that exists: the work of one ADD and one DEL without a process
// around it (no exec, no runtime start, no package initialisation) and with
// everything warm (encoding/json's type cache, the heap, the pages of the
// code). It reports the CPU time (getrusage of this process, user+system,
// the kernel's work for the requests included) per ADD and per DEL; a
// plugin process spends its start and its cold first use of the code on top
// (bench/README.md puts the figures side by side):
//
//	go test -run '^$' -bench AddDelWarm ./plugins/minibridge/bridge
func BenchmarkAddDelWarm(b *testing.B) {
	minitest.RequireRoot(b)
	host := minitest.NewNS(b)
	net, br := minitest.Name("net"), minitest.Name("mbw")
	stdin := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"minibridge","bridge":%q,"isGateway":true,`+
		`"isDefaultGateway":true,"ipam":{"type":"miniipam","dataDir":%q,"ranges":[[{"subnet":"10.42.0.0/16"}]]}}`,
		net, br, b.TempDir()))
	conf, err := LoadConf(stdin)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var addCPU, delCPU time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		pod := minitest.NewNS(b)
		a := &libmini.CmdArgs{ContainerID: fmt.Sprintf("warm%d", i), Netns: pod.Path(), IfName: "eth0", StdinData: stdin}
		minitest.Do(b, host, func() error {
			t0 := cpuTime(b)
			if _, err := Add(ctx, conf, a, Node{}); err != nil {
				return err
			}
			t1 := cpuTime(b)
			if err := Del(ctx, conf, a, Node{}); err != nil {
				return err
			}
			addCPU += t1 - t0
			delCPU += cpuTime(b) - t1
			return nil
		})
		if err := minitest.RemoveNS(pod); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(addCPU.Microseconds())/1000/float64(n), "cpu-ms/add")
	b.ReportMetric(float64(delCPU.Microseconds())/1000/float64(n), "cpu-ms/del")
}

// cpuTime is this process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
