#!/usr/bin/env bash
# Kubernetes' own sig-network e2e tests against minicni (integration/conformance):
# builds what make e2e builds (hack/e2e.sh with E2E_SKIP_TEST=1), then e2e.test
# (go test -c of k8s.io/kubernetes/test/e2e), agnhost and kube-proxy at the same
# version from the nested module integration/conformance/kubebuild and CoreDNS
# from integration/conformance/dnsbuild into bin/conformance, and runs
# TestConformance (integration/e2e), which brings the two-node make e2e cluster
# up with CoreDNS and a kube-proxy per node, runs e2e.test with the
# focus and skip expressions below, and tears everything down. The last line is
# "N passed, N failed"; the exit status is non-zero on any failure.
# Must run as root on Debian 12; uses the same fixed names as make e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
kver=v1.34.4

need=()
for pair in curl:curl nc.openbsd:netcat-openbsd dash:dash ldd:libc-bin; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

E2E_SKIP_TEST=1 hack/e2e.sh

mkdir -p bin/conformance
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${kver} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
(cd integration/conformance/kubebuild &&
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$root/bin/conformance/" \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/test/images/agnhost &&
  CGO_ENABLED=0 go test -c -vet=off -mod=mod -trimpath -ldflags "$ldflags" -o "$root/bin/conformance/e2e.test" \
    k8s.io/kubernetes/test/e2e)
# The TLS pair agnhost's porter serves, which the upstream image holds at /.
kdir=$(cd integration/conformance/kubebuild && go list -mod=mod -m -f '{{.Dir}}' k8s.io/kubernetes)
install -m 0644 "$kdir/test/images/agnhost/porter/localhost.crt" "$kdir/test/images/agnhost/porter/localhost.key" bin/conformance/
(cd integration/conformance/dnsbuild &&
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$root/bin/conformance/coredns" github.com/coredns/coredns)
[ "${CONFORMANCE_BUILD_ONLY:-}" = 1 ] && exit 0

# Ginkgo regular expressions, one a line: a spec runs when its full name
# matches a focus and no skip. integration/conformance/README.md says why each
# skip is there and lists the specs that ran.
focus='
\[sig-network\] Networking Granular Checks: Pods
\[sig-network\] Networking Granular Checks: Services
\[sig-network\] HostPort
\[sig-network\] .*\[Conformance\]
'
skip='
\[sig-network\] DNS
\[Feature:
\[Slow\]
'
export MINICNI_CONFORMANCE_FOCUS="${CONFORMANCE_FOCUS:-$focus}" MINICNI_CONFORMANCE_SKIP="${CONFORMANCE_SKIP:-$skip}"

log=bin/conformance/last-run.log
status=0
MINICNI_CONFORMANCE=1 MINICNI_CONFORMANCE_BIN="$root/bin/conformance" MINICNI_E2E_BIN="$root/bin/e2e" \
  MINICNI_E2E_IMAGE=localhost/minicni:e2e \
  go test -count=1 -v -timeout "${CONFORMANCE_TIMEOUT:-100m}" -run '^TestConformance$' ./integration/e2e/ 2>&1 | tee "$log" || status=$?
# The counts again, last: the line TestConformance printed after ginkgo's summary.
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
echo "${line:-0 passed, 0 failed (e2e.test did not report; see $log)}"
exit "$status"
