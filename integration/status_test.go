package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/integration/lab"
	"github.com/minicni/minicni/libmini"
)

// TestStatusThroughLibcni: STATUS of the whole 1.1.0 chain, through libcni
// as a runtime asks it, on a node whose CNI_PATH is this test's own copy of
// the binaries: healthy; the IPAM binary removed (50 naming it, though
// minibridge runs miniipam in-process); back; a pod attached and the bridge
// set down (51); up again.
func TestStatusThroughLibcni(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"minibridge", "miniipam", "miniroute", "portmap"} {
		if err := os.Link(filepath.Join(binDir, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	l, ctx := newLabWith(t, bin, 1, "50-minicni-1.1.0.conflist", noRoutes)
	n := l.Nodes[0]
	const bridge = "minicni0" // the conflist's, inside the node's namespace

	status := func(what string, code uint, mention ...string) {
		t.Helper()
		err := statusOf(ctx, n)
		if code == 0 {
			if err != nil {
				t.Fatalf("%s: STATUS = %v", what, err)
			}
			return
		}
		var e *types.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("%s: STATUS = %v, want CNI error %d", what, err, code)
		}
		for _, m := range mention {
			if !strings.Contains(e.Msg, m) {
				t.Errorf("%s: msg %q does not name %q", what, e.Msg, m)
			}
		}
		t.Logf("%s: code %d: %s", what, e.Code, e.Msg)
	}

	status("healthy", 0)
	ipam := filepath.Join(bin, "miniipam")
	if err := os.Rename(ipam, ipam+".away"); err != nil {
		t.Fatal(err)
	}
	status("IPAM binary removed", libmini.CodeNotAvailable, "miniipam", "CNI_PATH")
	if err := os.Rename(ipam+".away", ipam); err != nil {
		t.Fatal(err)
	}
	status("IPAM binary back", 0)

	p, err := l.AddPod(ctx, n, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	status("a pod attached", 0)
	ipIn(t, n, "link", "set", bridge, "down")
	status("bridge down", libmini.CodeLimitedAvailable, bridge, "is down")
	ipIn(t, n, "link", "set", bridge, "up")
	status("bridge up again", 0)
	if err := l.DelPod(ctx, p, false); err != nil {
		t.Fatal(err)
	}
}

func statusOf(ctx context.Context, n *lab.Node) error {
	var err error
	if derr := n.Do(func() error { err = n.CNI.GetStatusNetworkList(ctx, n.Conflist); return nil }); derr != nil {
		return derr
	}
	return err
}

// ipIn runs ip(8) in the node's namespace.
func ipIn(t *testing.T, n *lab.Node, args ...string) {
	t.Helper()
	err := n.Do(func() error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
