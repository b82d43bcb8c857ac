#!/bin/bash
# Usage (root, perf installed): hack/minibridge-cpu.sh N DIR_A DIR_B
#
# The CPU time (perf stat task-clock) of minibridge ADD and DEL with the binaries in DIR_A and
# DIR_B (each holding minibridge; the in-process miniipam needs nothing else), interleaved per
# call so that the drift of a shared machine hits both alike: on one scratch node netns, pod i
# of A is ADDed, then pod i of B, ...; then every pod is DELeted in the same order. It prints
# the median and mean in ms of calls 1..N of each (call 0 makes the bridge). ROUTES=n first
# puts a default route and n more /24 routes into the node's main table (an agent's one route
# per node). Build the binaries as the benchmarks do, e.g.
#   CGO_ENABLED=0 go build -trimpath -o DIR/ ./plugins/minibridge
set -euo pipefail
n=${1:?N}; A=${2:?DIR_A}; B=${3:?DIR_B}
node=mbcpu$$
tmp=$(mktemp -d)
cleanup() {
  for i in $(seq 0 "$n"); do ip netns del "$node-a$i" 2>/dev/null || true; ip netns del "$node-b$i" 2>/dev/null || true; done
  ip netns del "$node" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$node"
ip -n "$node" link set lo up
if [ -n "${ROUTES:-}" ]; then
  ip -n "$node" link add up0 mtu 1400 type veth peer name up1
  ip -n "$node" link set up1 up
  ip -n "$node" link set up0 up
  ip -n "$node" addr add 10.254.0.1/16 dev up0
  ip -n "$node" route add default via 10.254.0.2 dev up0
  for ((i = 0; i < ROUTES; i++)); do
    echo "route add 100.$((64 + i / 256)).$((i % 256)).0/24 via 10.254.0.2 dev up0"
  done | ip -n "$node" -batch -
fi
for i in $(seq 0 "$n"); do ip netns add "$node-a$i"; ip netns add "$node-b$i"; done
conf='{"cniVersion":"1.0.0","name":"cpu","type":"minibridge","bridge":"mbcpu0","ipam":{"type":"miniipam","ranges":[[{"subnet":"172.30.0.0/23"}]],"dataDir":"'$tmp'/ipam"}}'
call() { # verb variant dir i
  echo "$conf" | CNI_COMMAND=$1 CNI_CONTAINERID=c$2$4 CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$node-$2$4 CNI_PATH=$3 \
    ip netns exec "$node" perf stat -x, -e task-clock -o "$tmp/$1$2$4.stat" "$3/minibridge" >/dev/null
}
for i in $(seq 0 "$n"); do call ADD a "$A" "$i"; call ADD b "$B" "$i"; done
for i in $(seq 0 "$n"); do call DEL a "$A" "$i"; call DEL b "$B" "$i"; done
for verb in ADD DEL; do
  for v in a b; do
    dir=$A; [ $v = b ] && dir=$B
    for i in $(seq 1 "$n"); do grep task-clock "$tmp/$verb$v$i.stat" | cut -d, -f1; done | sort -n |
      awk -v k="$verb $dir" '{a[NR] = $1; s += $1} END {printf "%s: median %.2f ms, mean %.2f ms of %d calls\n", k, a[int(NR / 2) + 1], s / NR, NR}'
  done
done
