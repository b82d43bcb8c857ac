// Package cri tests minicni's chain through the path the kubelet uses: CRI
// calls to containerd, whose CRI plugin runs our binaries through libcni for
// every pod sandbox. TestCRI (cri_test.go) runs Debian's containerd 1.6,
// TestCRIContainerd2 (cri2_test.go) a containerd 2.x built by
// hack/containerd2.sh, which sends the chain STATUS. Each starts its own
// containerd with a private root, state, socket, CNI conf dir and bin dir,
// builds and imports its own images (no registry is reachable), and cleans
// every trace from the root network namespace afterwards. See README.md.
package cri
