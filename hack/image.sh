#!/usr/bin/env bash
# Builds the minicni image from installer/Containerfile with buildah, offline:
# the static binaries are compiled here into a temporary build context, the
# image is FROM scratch (nothing to pull), and the result is written as an OCI
# archive, bin/minicni-image.oci.tar (OUT overrides), holding the image under
# its full reference: IMAGE, default localhost/minicni:$VERSION. The
# reference must name a registry host (localhost, or a name with a dot or a
# port): containerd's CRI, like the kubelet, reads a short name such as
# minicni:v1 as docker.io/library/minicni:v1 and would look for an image
# that was never imported. buildah's storage lives in the temporary directory
# too (vfs driver, no daemon), so nothing is left behind. Load it on every
# node with
#   ctr -n k8s.io images import bin/minicni-image.oci.tar
# and put the printed reference in installer/manifests/minicni.yaml's image:.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
out=${OUT:-bin/minicni-image.oci.tar}
image=${IMAGE:-localhost/minicni:${version}}

# registry/path:tag, where the first component is a host the runtime will not
# rewrite to docker.io (the rules of github.com/distribution/reference).
host=${image%%/*}
if [ "$host" = "$image" ] || { [ "$host" != localhost ] && [[ "$host" != *.* ]] && [[ "$host" != *:* ]]; }; then
  echo "IMAGE=$image: name the registry host (for example localhost/minicni:${version} or registry.example/minicni:${version});" \
    "a runtime reads a short name as docker.io/library/… and would not find the imported image" >&2
  exit 1
fi
if [[ ! "$image" =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "IMAGE=$image is not a reference of the form host/path:tag" >&2
  exit 1
fi

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
  ./plugins/minibridge ./ipam/miniipam ./plugins/miniroute ./cmd/minicni \
  github.com/containernetworking/plugins/plugins/meta/portmap \
  github.com/containernetworking/plugins/plugins/main/loopback
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$ctx/minicni-installer" ./installer
cp installer/Containerfile "$ctx/Containerfile"

bah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
# --timestamp 0: the same sources give the same image.
"${bah[@]}" build --network none --pull=false --timestamp 0 --format oci \
  --label "org.opencontainers.image.version=${version}" \
  -f "$ctx/Containerfile" -t "$image" "$ctx"
rm -f "$out"
"${bah[@]}" push "$image" "oci-archive:${out}:${image}"
echo "wrote $out: image $image"
echo "load it with: ctr -n k8s.io images import $out"
echo "then set image: $image in installer/manifests/minicni.yaml"
