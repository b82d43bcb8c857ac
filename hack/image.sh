#!/usr/bin/env bash
# Builds the minicni image from installer/Containerfile with buildah, offline:
# the static binaries are compiled here into a temporary build context, the
# image is FROM scratch (nothing to pull), and the result is written as an OCI
# archive, bin/minicni-image.oci.tar, tagged minicni:$VERSION. buildah's
# storage lives in the temporary directory too (vfs driver, no daemon), so
# nothing is left behind. Load it with e.g.
#   skopeo copy oci-archive:bin/minicni-image.oci.tar containers-storage:minicni:$VERSION
#   ctr -n k8s.io images import bin/minicni-image.oci.tar
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
out=${OUT:-bin/minicni-image.oci.tar}

if ! command -v buildah >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then echo "buildah is missing (Debian package buildah); run as root to install it" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends buildah
fi

work=$(mktemp -d)
trap 'buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ctx=$work/context
mkdir -p "$ctx" "$(dirname "$out")" "$work/net.d"
# buildah sets up its network backend even with --network none, creating
# /etc/cni/net.d/cni.lock: keep that in the temporary directory too, since
# /etc/cni/net.d is where a node's container runtime looks for its CNI config.
printf '[network]\nnetwork_config_dir = "%s"\n' "$work/net.d" > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf

ldflags="-s -w -X github.com/minicni/minicni/libmini.Version=${version}"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$ctx/" \
  ./plugins/minibridge ./ipam/miniipam ./plugins/miniroute \
  github.com/containernetworking/plugins/plugins/meta/portmap \
  github.com/containernetworking/plugins/plugins/main/loopback
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$ctx/minicni-installer" ./installer
cp installer/Containerfile "$ctx/Containerfile"

bah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
# --timestamp 0: the same sources give the same image.
"${bah[@]}" build --network none --pull=false --timestamp 0 --format oci \
  --label "org.opencontainers.image.version=${version}" \
  -f "$ctx/Containerfile" -t "minicni:${version}" "$ctx"
rm -f "$out"
"${bah[@]}" push "minicni:${version}" "oci-archive:${out}:minicni:${version}"
echo "wrote $out (minicni:${version})"
