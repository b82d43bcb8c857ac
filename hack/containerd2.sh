#!/usr/bin/env bash
# Builds containerd 2.x (containerd, containerd-shim-runc-v2 and ctr) at the
# version pinned in integration/cri/containerd2build into bin/containerd2, for
# the CRI test TestCRIContainerd2 (integration/cri). Static (CGO_ENABLED=0;
# the btrfs, devmapper and zfs snapshotters, which need cgo or are unused,
# are left out by their build tags). hack/test.sh runs it before go test.
# Cold: minutes (module downloads and the build); warm: seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mod=integration/cri/containerd2build
ver=$(cd "$mod" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
mkdir -p bin/containerd2
(cd "$mod" && CGO_ENABLED=0 go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${ver}" \
  -o "$root/bin/containerd2/" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr)
echo "built containerd ${ver} in bin/containerd2"
