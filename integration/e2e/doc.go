// Package e2e tests minicni against real Kubernetes on one machine: etcd, a
// kube-apiserver, kube-controller-manager and kube-scheduler built from source,
// and simulated nodes, each a network namespace plus a mount namespace with its
// own containerd and kubelet, joined by an underlay. The DaemonSet from
// installer/manifests/minicni.yaml installs the chain on every node, then pods
// ping each other the four ways of the original walkthrough.
//
// The test (e2e_test.go) runs only with MINICNI_E2E=1 and the Kubernetes
// binaries in MINICNI_E2E_BIN: `make e2e` (hack/e2e.sh) builds them and runs
// it. See README.md.
package e2e
