#!/usr/bin/env bash
# make chaos: integration/chaos's churn-with-faults test at
# MINICNI_CHAOS_CYCLES cycles (default 1000) with MINICNI_CHAOS_SEED (default:
# the test's fixed seed), then its counts into docs/reliability.md, between
# the chaos markers; the rest of that file is kept. Needs root. Its names
# are unique (a lab named after the test process), so it needs no lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export MINICNI_CHAOS_CYCLES=${MINICNI_CHAOS_CYCLES:-1000}
cmd="make chaos"
if [[ $MINICNI_CHAOS_CYCLES != 1000 ]]; then cmd="MINICNI_CHAOS_CYCLES=$MINICNI_CHAOS_CYCLES $cmd"; fi
if [[ -n ${MINICNI_CHAOS_SEED:-} ]]; then cmd="MINICNI_CHAOS_SEED=$MINICNI_CHAOS_SEED $cmd"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
MINICNI_CHAOS_REPORT=$tmp/table.md go test -count=1 -v -timeout 60m -run '^TestChurnWithFaults$' ./integration/chaos | tee "$tmp/out"
secs=$((SECONDS - start))
summary=$(grep -o 'chaos: cycles.*' "$tmp/out" | tail -1)
{
  echo '<!-- chaos:begin (written by hack/chaos.sh: make chaos rewrites this section) -->'
  echo '## Churn with faults (make chaos)'
  echo
  echo "Pods added and deleted through libcni at concurrency 16 on one simulated node with the default"
  echo "chain ([conflist/10-minicni.conflist](../conflist/10-minicni.conflist)), plugin processes SIGKILLed"
  echo "at random points of ADD and DEL, DELs after the namespace is gone, repeated ADDs, lost DELs, and"
  echo "the runtime's GC; what it asserts: [integration/chaos](../integration/chaos/README.md)."
  echo
  echo "Command: \`$cmd\` (as root; $(date -u +%Y-%m-%d), ${secs} s including the build, on $(nproc) cores"
  echo "shared with other work). Result:"
  echo
  echo '```'
  echo "$summary"
  echo '```'
  echo
  cat "$tmp/table.md"
  echo '<!-- chaos:end -->'
} > "$tmp/section"
doc=docs/reliability.md
[[ -f $doc ]] || printf '# Reliability\n' > "$doc"
if grep -q '<!-- chaos:begin' "$doc"; then
  awk -v sec="$tmp/section" '
    /<!-- chaos:begin/ { while ((getline line < sec) > 0) print line; skip = 1; next }
    /<!-- chaos:end -->/ { skip = 0; next }
    !skip { print }' "$doc" > "$tmp/doc"
  cat "$tmp/doc" > "$doc"
else
  { echo; cat "$tmp/section"; } >> "$doc"
fi
echo "wrote the chaos section of $doc"
