#!/usr/bin/env bash
# make lint: gofmt, go vet, then golangci-lint (.golangci.yml: errcheck,
# staticcheck, unused, ineffassign, govet and gosec's file-permission checks).
# golangci-lint is built from the Go module proxy at the pinned release into
# bin/tools the first time (a few minutes cold), never downloaded as a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
tool=bin/tools/golangci-lint
if [ ! -x "$tool" ] || ! "$tool" version 2>/dev/null | grep -q "version ${version#v} "; then
  mkdir -p bin/tools
  GOBIN="$PWD/bin/tools" CGO_ENABLED=0 go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${version}"
fi
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
go vet ./...
"$tool" run ./...
