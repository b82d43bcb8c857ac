package routes

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/nodes"
	"github.com/minicni/minicni/installer/overlay"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func kubeNode(name, ip string, pods ...string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDRs: pods},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.9"},
			{Type: corev1.NodeInternalIP, Address: ip},
		}},
	}
	if len(pods) > 0 {
		n.Spec.PodCIDR = pods[0]
	}
	return n
}

// TestKubernetesSourceDesired drives the informer-backed source with a fake
// clientset: nodes added, changed and deleted must change the desired route
// set accordingly, with nothing but Node objects as input.
func TestKubernetesSourceDesired(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		kubeNode("a", "10.99.0.11", "172.18.0.0/24"),
		kubeNode("b", "10.99.0.12", "172.18.1.0/24"),
	)
	src := &nodes.Kubernetes{Client: client}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nodesAPI := client.CoreV1().Nodes()
	legacy := kubeNode("d", "10.99.0.14")
	legacy.Spec.PodCIDR = "172.18.4.0/24" // only the old single-value field

	steps := []struct {
		name   string
		change func() error
		want   []string
	}{
		{"initial list", func() error { return nil }, []string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b"}},
		{"node added", func() error {
			_, err := nodesAPI.Create(ctx, kubeNode("c", "10.99.0.13", "172.18.2.0/24", "fd00:18:0:2::/64"), metav1.CreateOptions{})
			return err
		}, []string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b", "172.18.2.0/24 via 10.99.0.13 dev 2 node c"}},
		{"node gets an IPv6 address", func() error {
			n := kubeNode("c", "10.99.0.13", "172.18.2.0/24", "fd00:18:0:2::/64")
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00:99::13"})
			_, err := nodesAPI.Update(ctx, n, metav1.UpdateOptions{})
			return err
		}, []string{"172.18.1.0/24 via 10.99.0.12 dev 2 node b", "172.18.2.0/24 via 10.99.0.13 dev 2 node c", "fd00:18:0:2::/64 via fd00:99::13 dev 2 node c"}},
		{"podCIDR changed", func() error {
			_, err := nodesAPI.Update(ctx, kubeNode("b", "10.99.0.12", "172.18.9.0/24"), metav1.UpdateOptions{})
			return err
		}, []string{"172.18.2.0/24 via 10.99.0.13 dev 2 node c", "172.18.9.0/24 via 10.99.0.12 dev 2 node b", "fd00:18:0:2::/64 via fd00:99::13 dev 2 node c"}},
		{"internal IP changed", func() error {
			_, err := nodesAPI.Update(ctx, kubeNode("b", "10.99.0.200", "172.18.9.0/24"), metav1.UpdateOptions{})
			return err
		}, []string{"172.18.2.0/24 via 10.99.0.13 dev 2 node c", "172.18.9.0/24 via 10.99.0.200 dev 3 node b", "fd00:18:0:2::/64 via fd00:99::13 dev 2 node c"}},
		{"node deleted", func() error { return nodesAPI.Delete(ctx, "c", metav1.DeleteOptions{}) },
			[]string{"172.18.9.0/24 via 10.99.0.200 dev 3 node b"}},
		{"legacy spec.podCIDR", func() error {
			_, err := nodesAPI.Create(ctx, legacy, metav1.CreateOptions{})
			return err
		}, []string{"172.18.4.0/24 via 10.99.0.14 dev 2 node d", "172.18.9.0/24 via 10.99.0.200 dev 3 node b"}},
		{"podCIDR made invalid", func() error {
			_, err := nodesAPI.Update(ctx, kubeNode("b", "10.99.0.200", "172.18.9.0/24; rm -rf /"), metav1.UpdateOptions{})
			return err
		}, []string{"172.18.4.0/24 via 10.99.0.14 dev 2 node d"}},
		{"everything deleted", func() error {
			for _, n := range []string{"b", "d"} {
				if err := nodesAPI.Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
					return err
				}
			}
			return nil
		}, nil},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var got []string
		deadline := time.After(10 * time.Second)
		for {
			list, err := src.List()
			if err != nil {
				t.Fatal(err)
			}
			got = routeSet(Desired("a", list, local, overlay.None).Desired)
			if cmp.Equal(st.want, got) {
				break
			}
			select {
			case <-src.Changed():
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: desired routes (-want +got):\n%s", st.name, cmp.Diff(st.want, got))
			}
		}
	}
	if n, ok, err := src.Get("a"); err != nil || !ok || n.InternalIPs[0] != "10.99.0.11" || len(n.InternalIPs) != 1 {
		t.Errorf("Get(a) = %+v %v %v, want only the InternalIP", n, ok, err)
	}
	if _, ok, err := src.Get("zzz"); ok || err != nil {
		t.Errorf("Get of a missing node = %v %v", ok, err)
	}
}
