#!/usr/bin/env bash
# The end-to-end test against real Kubernetes (integration/e2e): builds
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl
# at the version pinned in integration/e2e/kubebuild into bin/e2e (8-12 min
# cold on 2 cores, seconds warm), installs etcd/containerd/runc/busybox from
# Debian when missing, builds the minicni image, then runs the Go test gated by
# MINICNI_E2E=1. Must run as root on Debian 12 (cgroup v1, no systemd needed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
kver=v1.34.4

need=()
for pair in sysctl:procps etcd:etcd-server containerd:containerd runc:runc busybox:busybox-static buildah:buildah iptables:iptables ip:iproute2 nsenter:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The test runs its own etcd (and everything else) inside namespaces it makes.

mkdir -p bin/e2e
(cd integration/e2e/kubebuild && CGO_ENABLED=0 go build -mod=mod -trimpath \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${kver} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34" \
  -o "$root/bin/e2e/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl)
[ "${E2E_BUILD_ONLY:-}" = 1 ] && exit 0

# The image as a user builds it: make image's script, its archive imported by
# the test as README.md says, the manifest set to the reference it printed.
image=localhost/minicni:e2e
VERSION=e2e IMAGE="$image" OUT=bin/e2e/minicni-image.oci.tar hack/image.sh
# The same binaries as in the image (same flags), for `minicni-installer
# uninstall --from` on the nodes: it removes a reference plugin only when
# identical to the installed copy.
ldflags="-s -w -X github.com/minicni/minicni/libmini.Version=e2e"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o bin/e2e/cni/ \
  ./plugins/minibridge ./ipam/miniipam ./plugins/miniroute \
  github.com/containernetworking/plugins/plugins/meta/portmap \
  github.com/containernetworking/plugins/plugins/main/loopback
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o bin/e2e/cni/minicni-installer ./installer

[ "${E2E_SKIP_TEST:-}" = 1 ] && exit 0 # hack/conformance.sh: everything built, its own test runs

MINICNI_E2E=1 MINICNI_E2E_BIN="$root/bin/e2e" MINICNI_E2E_IMAGE="$image" go test -count=1 -v -timeout "${E2E_TIMEOUT:-30m}" ./integration/e2e/ 2>&1 | tee bin/e2e/last-run.log
