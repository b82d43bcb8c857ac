#!/usr/bin/env bash
# Builds every minicni command (each `package main` under ipam/, plugins/ and
# cmd/, named after its directory, and installer/ as minicni-installer) into $1 as
# static, stripped binaries with the version stamped.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin}
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
mapfile -t pkgs < <(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./ipam/... ./plugins/... ./cmd/... | grep .)
mkdir -p "$out"
flags=(-trimpath -ldflags "-s -w -X github.com/minicni/minicni/libmini.Version=${version}")
CGO_ENABLED=0 go build "${flags[@]}" -o "$out/" "${pkgs[@]}"
CGO_ENABLED=0 go build "${flags[@]}" -o "$out/minicni-installer" ./installer
