package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFileUnchangedIsNotRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "10-minicni.conflist")
	if changed, err := WriteFile(path, []byte("one"), 0o644); err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	before, _ := os.Stat(path)
	if changed, err := WriteFile(path, []byte("one"), 0o644); err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want no write", changed, err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("unchanged file was replaced (new inode)")
	}
	tests := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"same size other content", "two", 0o644},
		{"other mode", "two", 0o600},
		{"shorter", "t", 0o600},
		{"longer", "three", 0o600},
	}
	for _, tt := range tests {
		changed, err := WriteFile(path, []byte(tt.data), tt.mode)
		if err != nil || !changed {
			t.Fatalf("%s: changed=%v err=%v, want a write", tt.name, changed, err)
		}
		st, _ := os.Stat(path)
		if got := string(must(os.ReadFile(path))); got != tt.data || st.Mode().Perm() != tt.mode {
			t.Errorf("%s: file %q mode %v, want %q %v", tt.name, got, st.Mode().Perm(), tt.data, tt.mode)
		}
	}
	assertNoTemp(t, dir)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestRunOrderAndChecks(t *testing.T) {
	from, bin, conf := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "net.d", "10-minicni.conflist")
	for _, b := range []string{"minibridge", "miniipam", "miniroute", "portmap"} {
		write(t, filepath.Join(from, b), []byte("#!binary "+b), 0o700)
	}
	p := Plan{
		From: from, BinDir: bin, ConfPath: conf,
		Binaries: []string{"minibridge", "miniipam", "miniroute", "portmap", "loopback"},
		Optional: []string{"portmap", "loopback"},
		Conflist: []byte(`{"conflist":1}`),
		Needs:    []string{"minibridge", "miniipam", "miniroute", "portmap"},
	}
	res, err := Run(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(bin, "minibridge"), filepath.Join(bin, "miniipam"), filepath.Join(bin, "miniroute"),
		filepath.Join(bin, "portmap"), conf,
	}
	if diff := cmp.Diff(want, res.Written); diff != "" {
		t.Errorf("written (-want +got), conflist last:\n%s", diff)
	}
	for _, b := range want[:4] {
		if st, _ := os.Stat(b); st.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v, want 0755", b, st.Mode().Perm())
		}
	}
	res, err = Run(p)
	if err != nil || len(res.Written) != 0 || len(res.Unchanged) != 5 {
		t.Errorf("second run wrote %v (unchanged %v), err %v; want nothing written", res.Written, res.Unchanged, err)
	}

	t.Run("missing required binary", func(t *testing.T) {
		bin2, conf2 := t.TempDir(), filepath.Join(t.TempDir(), "c.conflist")
		q := p
		q.BinDir, q.ConfPath, q.Binaries = bin2, conf2, append([]string{"nonexistent"}, p.Binaries...)
		if _, err := Run(q); err == nil {
			t.Fatal("no error for a missing binary")
		}
		if _, err := os.Stat(conf2); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("conflist written despite the error")
		}
	})
	t.Run("conflist needs a binary not installed", func(t *testing.T) {
		bin2, conf2 := t.TempDir(), filepath.Join(t.TempDir(), "c.conflist")
		q := p
		q.BinDir, q.ConfPath, q.Needs = bin2, conf2, append(p.Needs, "bandwidth")
		_, err := Run(q)
		if err == nil || !strings.Contains(err.Error(), "bandwidth") {
			t.Fatalf("err = %v, want one naming bandwidth", err)
		}
		if _, err := os.Stat(conf2); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("conflist written although a binary it runs is missing")
		}
	})
	t.Run("bad names", func(t *testing.T) {
		for _, name := range []string{"../evil", "a/b", "..", ""} {
			q := p
			q.Binaries = []string{name}
			if _, err := Run(q); err == nil {
				t.Errorf("binary name %q accepted", name)
			}
		}
	})
}

// TestAtomicUnderConcurrentReaders installs two versions of a binary and a
// conflist alternately while readers poll the target paths: every read must
// see a whole version, never a mix, a truncated or an empty file.
func TestAtomicUnderConcurrentReaders(t *testing.T) {
	from, bin, confDir := t.TempDir(), t.TempDir(), t.TempDir()
	conf := filepath.Join(confDir, "10-minicni.conflist")
	versions := [2]struct {
		bin, conf []byte
	}{
		{bytes.Repeat([]byte("A"), 3<<20), bytes.Repeat([]byte(`{"a":1}`), 5000)},
		{bytes.Repeat([]byte("B"), 1<<20+17), bytes.Repeat([]byte(`{"bb":22}`), 3000)},
	}
	valid := func(got []byte, which func(int) []byte) bool {
		return bytes.Equal(got, which(0)) || bytes.Equal(got, which(1))
	}
	binOf := func(i int) []byte { return versions[i].bin }
	confOf := func(i int) []byte { return versions[i].conf }

	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	var firstBad atomic.Value
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for _, c := range []struct {
					path  string
					which func(int) []byte
				}{{filepath.Join(bin, "minibridge"), binOf}, {conf, confOf}} {
					got, err := os.ReadFile(c.path)
					if errors.Is(err, fs.ErrNotExist) {
						continue // not installed yet
					}
					reads.Add(1)
					if err != nil || !valid(got, c.which) {
						bad.Add(1)
						firstBad.CompareAndSwap(nil, c.path+": "+describe(got, err))
					}
				}
			}
		}()
	}
	const rounds = 60
	start := time.Now()
	for i := range rounds {
		v := versions[i%2]
		if err := os.WriteFile(filepath.Join(from, "minibridge"), v.bin, 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := Run(Plan{From: from, Binaries: []string{"minibridge"}, BinDir: bin, Conflist: v.conf, ConfPath: conf, Needs: []string{"minibridge"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Written) != 2 {
			t.Fatalf("round %d wrote %v, want both files", i, res.Written)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d installs in %s, %d reads", rounds, time.Since(start).Round(time.Millisecond), reads.Load())
	if reads.Load() < rounds {
		t.Errorf("only %d reads: the readers did not overlap the installs", reads.Load())
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d reads saw a partial file; first: %v", n, firstBad.Load())
	}
	assertNoTemp(t, bin)
	assertNoTemp(t, confDir)
}

func describe(b []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(b) == 0 {
		return "empty file"
	}
	return fmt.Sprintf("%d bytes starting %q", len(b), b[:1])
}

// TestNonAtomicWriteIsCaught checks the reader above can fail: writing in
// place with os.WriteFile (truncate, then write) is seen as partial.
func TestNonAtomicWriteIsCaught(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	a, b := bytes.Repeat([]byte("A"), 4<<20), bytes.Repeat([]byte("B"), 4<<20)
	write(t, path, a, 0o644)
	var stop atomic.Bool
	var partial atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				partial.Add(1)
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; partial.Load() == 0 && time.Now().Before(deadline); i++ {
		write(t, path, [][]byte{a, b}[i%2], 0o644)
	}
	stop.Store(true)
	<-done
	if partial.Load() == 0 {
		t.Skip("could not observe a partial in-place write on this machine within 5 s")
	}
}

func TestCopyFileAndSame(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	write(t, src, []byte("binary"), 0o600)
	if changed, err := CopyFile(dst, src, 0o755); err != nil || !changed {
		t.Fatalf("copy: %v %v", changed, err)
	}
	if same, err := Same(src, dst); err != nil || !same {
		t.Errorf("Same after copy = %v, %v", same, err)
	}
	if changed, err := CopyFile(dst, src, 0o755); err != nil || changed {
		t.Errorf("second copy rewrote: %v %v", changed, err)
	}
	write(t, src, []byte("binarz"), 0o600)
	if same, _ := Same(src, dst); same {
		t.Error("Same says equal for different content")
	}
	if removed, err := Remove(dst); err != nil || !removed {
		t.Errorf("Remove = %v %v", removed, err)
	}
	if removed, err := Remove(dst); err != nil || removed {
		t.Errorf("Remove of a missing file = %v %v, want false, nil", removed, err)
	}
}
