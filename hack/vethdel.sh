#!/usr/bin/env bash
# hack/vethdel.sh [N]: the kernel's floor under a DEL, without any plugin.
# In a throwaway node namespace with a bridge, it makes N pods as minibridge
# does (a veth pair, the host end a port of the bridge and up, the pod end in
# its own namespace, up, with an address), then times `ip link del` of each
# host end, and `ip link show` of the bridge as the cost of running `ip`
# itself. Medians in ms. As root. bench/README.md quotes it.
set -euo pipefail
n=${1:-20}
node=vethdel$$
cleanup() {
  for i in $(seq 1 "$n"); do ip netns del "$node-p$i" 2>/dev/null || true; done
  ip netns del "$node" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$node"
ip -n "$node" link add br0 type bridge
ip -n "$node" link set br0 up
for i in $(seq 1 "$n"); do
  ip netns add "$node-p$i"
  ip -n "$node" link add "h$i" type veth peer name eth0 netns "$node-p$i"
  ip -n "$node" link set "h$i" master br0 up
  ip -n "$node-p$i" link set eth0 up
  ip -n "$node-p$i" addr add "172.19.$((i / 250)).$((i % 250 + 2))/16" dev eth0
done
median() { sort -n | awk '{a[NR] = $1} END {printf "%.1f", 1000 * a[int((NR + 1) / 2)]}'; }
TIMEFORMAT=%R
del=$(for i in $(seq 1 "$n"); do { time ip -n "$node" link del "h$i"; } 2>&1; done | median)
show=$(for i in $(seq 1 "$n"); do { time ip -n "$node" link show br0 >/dev/null; } 2>&1; done | median)
echo "ip link del of a pod's host veth: median $del ms; ip link show (running ip): median $show ms; $n pods"
