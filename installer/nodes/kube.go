package nodes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Kubernetes watches Node objects with a client-go informer. It needs only
// get, list and watch on nodes.
type Kubernetes struct {
	Client kubernetes.Interface
	// Resync is the informer's own resync period (0: none; the agent has its
	// own timer).
	Resync time.Duration
	// ProbeTimeout bounds Probe's request (0: DefaultProbeTimeout).
	ProbeTimeout time.Duration

	lister  listers.NodeLister
	changed chan struct{}

	mu sync.Mutex
	// watchErr is the informer's last list or watch error since it last
	// delivered anything (nil: none); Probe reports it.
	watchErr error
	dirty    map[string]bool // nodes changed since the last TakeChanged
}

// DefaultProbeTimeout bounds Probe's request unless ProbeTimeout says
// otherwise.
const DefaultProbeTimeout = 5 * time.Second

// NewKubernetes returns a source using the in-cluster config, or kubeconfig
// when it is not empty.
func NewKubernetes(kubeconfig string) (*Kubernetes, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "minicni-installer"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Kubernetes{Client: client}, nil
}

// Start runs the informer until ctx ends and waits for its first full list.
func (k *Kubernetes) Start(ctx context.Context) error {
	k.changed = make(chan struct{}, 1)
	factory := informers.NewSharedInformerFactory(k.Client, k.Resync)
	inf := factory.Core().V1().Nodes()
	// Keep only what is used: a big cluster's Node objects are mostly
	// images, conditions and managed fields.
	if err := inf.Informer().SetTransform(slim); err != nil {
		return err
	}
	// A broken list or watch is remembered until the informer delivers
	// anything again (after a relist it delivers every object).
	if err := inf.Informer().SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		k.setWatchErr(err)
	}); err != nil {
		return err
	}
	k.dirty = map[string]bool{}
	on := func(obj any) {
		k.setWatchErr(nil)
		// A Node's key is its name; a tombstone's too.
		if name, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.mu.Lock()
			k.dirty[name] = true
			k.mu.Unlock()
		}
		notify(k.changed)
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: on,
		UpdateFunc: func(o, n any) {
			k.setWatchErr(nil)
			if Relevant(o, n) {
				on(n)
			}
		},
		DeleteFunc: on,
	}); err != nil {
		return err
	}
	k.lister = inf.Lister()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync: %w", typ, context.Cause(ctx))
		}
	}
	return nil
}

func (k *Kubernetes) setWatchErr(err error) {
	k.mu.Lock()
	k.watchErr = err
	k.mu.Unlock()
}

// Probe asks the apiserver for its version (GET /version: served from
// memory, no etcd read, no RBAC beyond discovery) within ProbeTimeout, and
// fails when that fails or when the informer's last list or watch failed
// and it has delivered nothing since. A quiet cluster sends no events, so
// a view is taken as current while both hold.
func (k *Kubernetes) Probe(ctx context.Context) error {
	timeout := k.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	if rc := k.Client.Discovery().RESTClient(); rc != nil {
		err = rc.Get().AbsPath("/version").Do(ctx).Error()
	} else {
		_, err = k.Client.Discovery().ServerVersion() // a fake clientset's
	}
	if err != nil {
		return fmt.Errorf("apiserver unreachable: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.watchErr != nil {
		return fmt.Errorf("node watch broken: %w", k.watchErr)
	}
	return nil
}

// slim strips a Node down to name, podCIDRs and addresses.
func slim(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, ResourceVersion: n.ResourceVersion, UID: n.UID},
		Spec:       corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
		Status:     corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// Relevant reports whether an update changed anything the installer uses.
// Most Node updates (status heartbeats, conditions, images) do not, and in a
// big cluster they arrive several times a second.
func Relevant(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	a, b := FromObject(o), FromObject(n)
	return a.Name != b.Name || !slices.Equal(a.PodCIDRs, b.PodCIDRs) || !slices.Equal(a.InternalIPs, b.InternalIPs)
}

// FromObject converts a Node object: spec.podCIDRs, else spec.podCIDR, and
// the InternalIP addresses of its status. Nothing is validated.
func FromObject(n *corev1.Node) Node {
	out := Node{Name: n.Name, PodCIDRs: slices.Clone(n.Spec.PodCIDRs)}
	if len(out.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		out.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			out.InternalIPs = append(out.InternalIPs, a.Address)
		}
	}
	return out
}

// List returns every node in the informer's cache, sorted by name.
func (k *Kubernetes) List() ([]Node, error) {
	if k.lister == nil {
		return nil, fmt.Errorf("kubernetes node source not started")
	}
	objs, err := k.lister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, FromObject(o))
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the node called name from the cache.
func (k *Kubernetes) Get(name string) (Node, bool, error) {
	if k.lister == nil {
		return Node{}, false, fmt.Errorf("kubernetes node source not started")
	}
	o, err := k.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return Node{}, false, nil
	}
	if err != nil {
		return Node{}, false, err
	}
	return FromObject(o), true, nil
}

// TakeChanged returns the names of the nodes added, changed (in a way
// Relevant sees) or deleted since its last call, and forgets them. A
// name may be returned for a node that changed back, or whose change a
// List has already shown; Get tells what it is now.
func (k *Kubernetes) TakeChanged() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	names := make([]string, 0, len(k.dirty))
	for name := range k.dirty {
		names = append(names, name)
	}
	clear(k.dirty)
	return names
}

// Changed receives a value after any Node event.
func (k *Kubernetes) Changed() <-chan struct{} { return k.changed }
