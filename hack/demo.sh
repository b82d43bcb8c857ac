#!/usr/bin/env bash
# The local lab: a simulated cluster in network namespaces on this machine
# (two nodes; three on two underlay subnets with --topology routed), pods
# attached by the real chain, the connectivity matrix printed.
# Extra arguments go to `minicni-lab up` (e.g. --topology routed, --dual-stack, --keep,
# --nodes 1, --pods 3).
set -euo pipefail
cd "$(dirname "$0")/.."
# The lab's command and the reference plugins the default conflist names
# (portmap), next to minicni's own binaries that `make build` put in bin/.
CGO_ENABLED=0 go build -trimpath -o bin/ ./integration/minicni-lab \
  github.com/containernetworking/plugins/plugins/meta/portmap
exec bin/minicni-lab up --bin bin --conflist conflist/10-minicni.conflist "$@"
