#!/usr/bin/env bash
# make bench: builds minicni's plugins and the reference ones (go.mod's
# version, same flags) into bin/bench, runs the Go benchmarks of the packages
# (miniipam's store, miniroute's fast path) and the chain benchmark, which
# writes docs/benchmarks.md, then the route agent's scale benchmark, which
# adds its section to it. Extra arguments go to the chain benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/build.sh bin/bench
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/bench/ \
  github.com/containernetworking/plugins/plugins/main/bridge \
  github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/meta/firewall \
  github.com/containernetworking/plugins/plugins/main/loopback \
  github.com/containernetworking/plugins/plugins/meta/portmap
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/bench/ ./bench/noop ./bench/nooplibs
go test -run='^$' -bench=. -benchmem ./ipam/... ./plugins/... | tee bin/bench/go-bench.txt
go run ./bench -bin bin/bench "$@"
# The route agent at 1,000 and 5,000 nodes (installer/internal/scale): its
# section goes between the agent-scale markers of docs/benchmarks.md, which
# the line above has just rewritten.
go test -run='^$' -bench=AgentScale -benchtime=1x -timeout=30m ./installer/internal/scale \
  -args -report="$PWD/docs/benchmarks.md" | tee bin/bench/agent-scale.txt
