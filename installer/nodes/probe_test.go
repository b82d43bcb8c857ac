package nodes

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// TestProbe: Probe succeeds while the apiserver answers and the informer
// has no list or watch error outstanding; an error reported by the
// informer's error handler fails it (naming the error) until the informer
// delivers something again. The apiserver itself going away is
// TestAgentLosesAPIServer's (package agent, real HTTP).
func TestProbe(t *testing.T) {
	k := &Kubernetes{Client: fake.NewClientset()}
	if err := k.Probe(context.Background()); err != nil {
		t.Fatalf("Probe of a healthy source: %v", err)
	}
	k.setWatchErr(errors.New("watch of *v1.Node ended with: connection refused"))
	if err := k.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "node watch broken: watch of *v1.Node ended with: connection refused") {
		t.Errorf("Probe with a broken watch: %v", err)
	}
	k.setWatchErr(nil) // what an event or a relist's delivery does
	if err := k.Probe(context.Background()); err != nil {
		t.Errorf("Probe after the informer delivered again: %v", err)
	}
}
