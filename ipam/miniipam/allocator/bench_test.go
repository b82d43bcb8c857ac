package allocator

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	hlalloc "github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	"github.com/minicni/minicni/ipam/miniipam/config"
)

// cpuStart is the process's CPU time (user and system, every thread) when
// a benchmark's loop starts. On a machine shared with other work the CPU an
// iteration uses varies far less than its wall time, and the CPU is what
// a plugin costs a node.
type cpuStart time.Duration

func cpuTime(b *testing.B) cpuStart {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return cpuStart(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
}

// report adds the metric cpu-ns/op: CPU time since c per iteration.
func (c cpuStart) report(b *testing.B) {
	b.Helper()
	if b.N > 0 {
		b.ReportMetric(float64(time.Duration(cpuTime(b)-c).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkAddDel measures one ADD and its DEL through the allocator and the
// on-disk store (lock, directory read, O_TMPFILE write + link, cursor
// write; then lock, directory read, unlink; nothing is fsynced) on a /24
// already holding fill reservations. MINIIPAM_BENCH_DIR names the filesystem
// to run on (default: the test temp dir); on tmpfs no disk is behind the
// writes and what remains is mostly the per-reservation cost of reading the
// directory.
func BenchmarkAddDel(b *testing.B) {
	for _, fill := range []int{0, 100, 250} {
		b.Run(fmt.Sprintf("fill=%d", fill), func(b *testing.B) { benchAddDel(b, fill, false) })
	}
}

// BenchmarkAddDelNamedTemp is BenchmarkAddDel on an empty pool with every
// reservation written through a named temp file (link, then unlink), as
// where the filesystem refuses O_TMPFILE: the difference is what the
// unnamed file saves.
func BenchmarkAddDelNamedTemp(b *testing.B) {
	b.Run("fill=0", func(b *testing.B) { benchAddDel(b, 0, true) })
}

func benchAddDel(b *testing.B, fill int, noTmpfile bool) {
	dataDir := b.TempDir()
	if dir := os.Getenv("MINIIPAM_BENCH_DIR"); dir != "" {
		var err error
		if dataDir, err = os.MkdirTemp(dir, "miniipam-bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dataDir) })
	}
	stdin := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"net","ipam":{"subnet":"10.0.0.0/24","dataDir":%q}}`, dataDir)
	conf, err := config.LoadConf([]byte(stdin), "")
	if err != nil {
		b.Fatal(err)
	}
	a := New(conf, nil)
	a.Store.NoTmpfile = noTmpfile
	for i := range fill {
		if _, err := a.Add(ctx, fmt.Sprintf("fill%d", i), "eth0"); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b)
	for b.Loop() {
		if _, err := a.Add(ctx, "bench", "eth0"); err != nil {
			b.Fatal(err)
		}
		if err := a.Del(ctx, "bench", "eth0"); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkHostLocalAddDel is the same ADD+DEL through the reference
// host-local's own allocator and disk store (in-process, same version as
// go.mod), for comparison.
func BenchmarkHostLocalAddDel(b *testing.B) {
	for _, fill := range []int{0, 100, 250} {
		b.Run(fmt.Sprintf("fill=%d", fill), func(b *testing.B) {
			dataDir := b.TempDir()
			if dir := os.Getenv("MINIIPAM_BENCH_DIR"); dir != "" {
				var err error
				if dataDir, err = os.MkdirTemp(dir, "hostlocal-bench"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = os.RemoveAll(dataDir) })
			}
			stdin := `{"cniVersion":"1.0.0","name":"net","ipam":{"type":"host-local","subnet":"10.0.0.0/24","dataDir":"` + dataDir + `"}}`
			ipamConf, _, err := hlalloc.LoadIPAMConfig([]byte(stdin), "")
			if err != nil {
				b.Fatal(err)
			}
			add := func(id string) error {
				st, err := disk.New(ipamConf.Name, ipamConf.DataDir)
				if err != nil {
					return err
				}
				defer st.Close()
				_, err = hlalloc.NewIPAllocator(&ipamConf.Ranges[0], st, 0).Get(id, "eth0", nil)
				return err
			}
			del := func(id string) error {
				st, err := disk.New(ipamConf.Name, ipamConf.DataDir)
				if err != nil {
					return err
				}
				defer st.Close()
				return hlalloc.NewIPAllocator(&ipamConf.Ranges[0], st, 0).Release(id, "eth0")
			}
			for i := range fill {
				if err := add(fmt.Sprintf("fill%d", i)); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime(b)
			for b.Loop() {
				if err := add("bench"); err != nil {
					b.Fatal(err)
				}
				if err := del("bench"); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}
