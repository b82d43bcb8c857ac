#!/usr/bin/env bash
# hack/offcpu.sh [N [cpu]]: where minibridge's ADD and DEL wait, as the
# kernel sees it. In a throwaway node namespace it attaches N pods (after one
# untraced warm-up pod) and detaches them, each run under
# `perf record -e sched:sched_switch -g`, then sums, per command, the time
# the plugin's main thread spent off the CPU by the kernel stack it blocked
# in (its first frames), per call. With `cpu`, each run is sampled instead
# (`perf record -F 20000 -g`) and it prints the share of the samples whose
# stack holds each step (runtime start, package init, Add's steps, page
# faults). Needs perf (Debian: linux-perf) and root. bench/README.md quotes
# its output.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
mode=${2:-offcpu}
command -v perf >/dev/null || { echo "hack/offcpu.sh needs perf (apt-get install -y linux-perf)" >&2; exit 1; }
tmp=$(mktemp -d)
node=offcpu$$
cleanup() {
  for i in $(seq 0 "$n"); do ip netns del "$node-p$i" 2>/dev/null || true; done
  ip netns del "$node" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/" ./plugins/minibridge
conf='{"cniVersion":"1.0.0","name":"offcpu","type":"minibridge","bridge":"offcpu0","isGateway":true,"isDefaultGateway":true,
"ipam":{"type":"miniipam","ranges":[[{"subnet":"172.18.0.0/24"}]],"dataDir":"'"$tmp"'/ipam"}}'
ip netns add "$node"
for i in $(seq 0 "$n"); do ip netns add "$node-p$i"; done
run() { # run CMD I TRACE
  local w=()
  if [ "$3" = 1 ] && [ "$mode" = cpu ]; then
    w=(perf record -q -F 20000 -g -o "$tmp/$1-$2.data" --)
  elif [ "$3" = 1 ]; then
    w=(perf record -q -e sched:sched_switch -g -o "$tmp/$1-$2.data" --)
  fi
  echo "$conf" | CNI_COMMAND=$1 CNI_CONTAINERID=c$2 CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$node-p$2 CNI_PATH=$tmp \
    ip netns exec "$node" "${w[@]}" "$tmp/minibridge" >/dev/null
}
run ADD 0 0
for i in $(seq 1 "$n"); do run ADD "$i" 1; done
run DEL 0 0
for i in $(seq 1 "$n"); do run DEL "$i" 1; done
if [ "$mode" = cpu ]; then
  for cmd in ADD DEL; do
    echo "== minibridge $cmd: share of the CPU samples (all threads, $n calls) whose stack holds"
    for i in $(seq 1 "$n"); do perf script -i "$tmp/$cmd-$i.data" 2>/dev/null; done | awk '
      BEGIN {
        k = 0
        steps[++k] = "runtime start (schedinit)|runtime\\.schedinit|runtime\\.rt0_go"
        steps[++k] = "package init|runtime\\.doInit"
        steps[++k] = "main.main|main\\.main"
        steps[++k] = "bridge.Add|bridge\\.Add\\+"
        steps[++k] = "  IPAM (miniipam in-process)|bridge\\.ipamCall"
        steps[++k] = "  bridge, gateways, forwarding|bridge\\.prepareHost"
        steps[++k] = "  MTU from the default route|bridge\\.resolveMTU"
        steps[++k] = "  veth request|bridge\\.makeVeth"
        steps[++k] = "  pod side|bridge\\.configurePod"
        steps[++k] = "  wait for the host end|waitUp"
        steps[++k] = "bridge.Del|bridge\\.Del"
        steps[++k] = "config decoding and result encoding (encoding/json)|encoding/json"
        steps[++k] = "page faults|asm_exc_page_fault"
      }
      function flush() { if (blk == "") return; total++; for (i = 1; i <= k; i++) { split(steps[i], p, "|"); re = substr(steps[i], length(p[1]) + 2); if (blk ~ re) hit[i]++ } blk = "" }
      /^$/ { flush(); next }
      { blk = blk "\n" $0 }
      END { flush(); for (i = 1; i <= k; i++) { split(steps[i], p, "|"); printf "%5.1f%%  %s\n", 100 * hit[i] / total, p[1] } }'
  done
  exit 0
fi
for cmd in ADD DEL; do
  echo "== minibridge $cmd: off-CPU time of the main thread per call, by kernel stack (mean over $n calls)"
  for i in $(seq 1 "$n"); do perf script -i "$tmp/$cmd-$i.data" 2>/dev/null; echo "@@END"; done | awk -v n="$n" '
    function flush() {
      if (hdr == "") return
      split(hdr, f, " ")
      t = 0; prev = ""; state = ""; next_pid = ""
      for (k in f) {
        if (f[k] ~ /^[0-9]+\.[0-9]+:$/) t = substr(f[k], 1, length(f[k]) - 1)
        if (f[k] ~ /^prev_pid=/) prev = substr(f[k], 10)
        if (f[k] ~ /^prev_state=/) state = substr(f[k], 12)
        if (f[k] ~ /^next_pid=/) next_pid = substr(f[k], 10)
      }
      if (main == "") main = prev # the first event is the main thread of the plugin
      if (prev == main && (state == "S" || state ~ /^D/)) { since = t; key = stack }
      if (next_pid == main && since != "") { off[key] += t - since; since = "" }
      hdr = ""; stack = ""; depth = 0
    }
    /^@@END/ { flush(); main = ""; since = ""; next }
    /sched:sched_switch/ { flush(); hdr = $0; next }
    /^[ \t]+[0-9a-f]+ / && hdr != "" {
      fn = $2; sub(/\+0x.*/, "", fn)
      if ($0 ~ /kernel/ && fn !~ /^(__schedule|schedule|entry_SYSCALL_64_after_hwframe|do_syscall_64)$/ && depth < 5) {
        stack = stack (depth ? " < " : "") fn; depth++
      }
      next
    }
    END { flush(); for (k in off) printf "%8.2f ms  %s\n", off[k] * 1000 / n, k }' | sort -rn | head -6
done
