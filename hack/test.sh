#!/usr/bin/env bash
# The whole test suite: unit, root/netns and integration tests (containerd
# 1.6 and 2.x CRI tests included), then a short run of each fuzz target. CI
# runs this through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
# containerd 2.x for integration/cri's TestCRIContainerd2 (bin/containerd2;
# seconds when the Go caches are warm). The test fails without it under CI=true.
hack/containerd2.sh
go test -count=1 -timeout 14m ./...
# go test -fuzz takes one target in one package at a time.
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
  pkg=./$(dirname "${target#./}")
  for f in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$target" | cut -d' ' -f2); do
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="${FUZZTIME:-10s}" "$pkg"
  done
done
