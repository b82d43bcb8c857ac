package libmini

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// fakeExec answers delegated calls without running a binary.
type fakeExec struct {
	out   []byte
	err   error
	block bool
	verbs []string
}

func (f *fakeExec) ExecPlugin(ctx context.Context, _ string, _ []byte, environ []string) ([]byte, error) {
	for _, e := range environ {
		if len(e) > 12 && e[:12] == "CNI_COMMAND=" {
			f.verbs = append(f.verbs, e[12:])
		}
	}
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.out, f.err
}
func (f *fakeExec) FindInPath(p string, _ []string) (string, error) { return "/fake/" + p, nil }
func (f *fakeExec) Decode([]byte) (version.PluginInfo, error)       { return version.All, nil }

func withExec(t *testing.T, f *fakeExec) {
	old := IPAMExec
	IPAMExec = f
	t.Setenv("CNI_PATH", "/fake")
	t.Cleanup(func() { IPAMExec = old })
}

func TestIPAMAdd(t *testing.T) {
	stdin := []byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"x"}}`)
	tests := []struct {
		name string
		exec fakeExec
		code uint
	}{
		{"result", fakeExec{out: []byte(`{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}]}`)}, 0},
		{"no address", fakeExec{out: []byte(`{"cniVersion":"1.0.0","ips":[]}`)}, CodeIPAM},
		{"ipam's own error kept", fakeExec{err: types.NewError(CodePoolExhausted, "full", "")}, CodePoolExhausted},
		{"plain error", fakeExec{err: errors.New("exec format error")}, CodeIPAM},
		{"deadline", fakeExec{block: true}, CodeTryAgainLater},
	}
	old := IPAMTimeout
	IPAMTimeout = 50 * time.Millisecond
	t.Cleanup(func() { IPAMTimeout = old })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withExec(t, &tt.exec)
			res, err := IPAMAdd(context.Background(), "x", stdin)
			if got := code(t, err); got != tt.code {
				t.Fatalf("code = %d, want %d (%v)", got, tt.code, err)
			}
			if err == nil && res.IPs[0].Address.String() != "10.0.0.2/24" {
				t.Errorf("result = %v", res)
			}
			if tt.exec.verbs[0] != "ADD" {
				t.Errorf("CNI_COMMAND = %v", tt.exec.verbs)
			}
		})
	}
}

func TestIPAMVerbs(t *testing.T) {
	f := &fakeExec{out: []byte(`{}`)}
	withExec(t, f)
	ctx := context.Background()
	for _, call := range []func(context.Context, string, []byte) error{IPAMDel, IPAMCheck, IPAMGC, IPAMStatus} {
		if err := call(ctx, "x", []byte(`{"cniVersion":"1.1.0","name":"n"}`)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"DEL", "CHECK", "GC", "STATUS"}
	if len(f.verbs) != len(want) {
		t.Fatalf("verbs = %v, want %v", f.verbs, want)
	}
	for i := range want {
		if f.verbs[i] != want[i] {
			t.Errorf("verbs = %v, want %v", f.verbs, want)
		}
	}
	f.err = types.NewError(CodeNotAvailable, "pool full", "")
	if got := code(t, IPAMStatus(ctx, "x", nil)); got != CodeNotAvailable {
		t.Errorf("STATUS code = %d, want %d", got, CodeNotAvailable)
	}
}

// TestWithIPAMTimeout: a timeout carried by the context bounds the call
// instead of IPAMTimeout, and the error names it.
func TestWithIPAMTimeout(t *testing.T) {
	withExec(t, &fakeExec{block: true})
	ctx := WithIPAMTimeout(context.Background(), 30*time.Millisecond)
	start := time.Now()
	_, err := IPAMAdd(ctx, "x", []byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"x"}}`))
	e, ok := AsCNIError(err)
	if !ok || e.Code != CodeTryAgainLater || !strings.Contains(e.Msg, "did not finish within 30ms") {
		t.Fatalf("IPAMAdd = %v, want code 11 naming 30ms", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
	if got := ipamTimeout(WithIPAMTimeout(context.Background(), 0)); got != IPAMTimeout {
		t.Errorf("zero keeps IPAMTimeout: got %v", got)
	}
}
