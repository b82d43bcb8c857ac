#!/usr/bin/env bash
# hack/ipam-syscalls.sh [FILL]: the system calls of miniipam's store in one
# ADD and its DEL, as ipam/miniipam/README.md quotes them. It builds
# miniipam as `make build` does, fills a /24 in a temporary data dir with
# FILL reservations (default 0) plus one ADD+DEL to warm up, then runs one
# ADD and its DEL under `strace -f` and counts, per command, the calls from
# the first one naming the store to the last before the result is printed
# (ADD) or the network namespace is checked (DEL), leaving out the Go
# runtime's own (futex, nanosleep, signals, mmap...). Needs strace (Debian:
# strace) and root (CNI_NETNS is a throwaway namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
fill=${1:-0}
command -v strace >/dev/null || { echo "hack/ipam-syscalls.sh needs strace (apt-get install -y strace)" >&2; exit 1; }
tmp=$(mktemp -d)
ns=ipamsc$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$ns"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/miniipam" ./ipam/miniipam
conf='{"cniVersion":"1.0.0","name":"net","ipam":{"type":"miniipam","subnet":"10.0.0.0/24","dataDir":"'$tmp/data'"}}'
run() { # run CMD ID [wrapper...]
  local cmd=$1 id=$2; shift 2
  echo "$conf" | CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$ns CNI_PATH=/nonexistent \
    "$@" "$tmp/miniipam" >/dev/null
}
for i in $(seq 1 "$fill"); do run ADD "fill$i"; done
run ADD warm; run DEL warm
run ADD bench strace -f -qq -o "$tmp/add.trace"
run DEL bench strace -f -qq -o "$tmp/del.trace"
for k in add del; do
  sed 's/^[0-9]* *//' "$tmp/$k.trace" | grep -v 'resumed>' |
    awk -v d="$tmp/data" 'index($0, d) && !on {on=1} on' |
    awk '/^write\(1,|\/var\/run\/netns\// {exit} {print}' |
    grep -v -E '^(futex|nanosleep|sched_yield|rt_sig|mmap|munmap|madvise|getpid|tgkill|gettid|clone|epoll_pwait)' >"$tmp/$k.store" || true
  printf '%s fill=%s: %s store system calls (%s)\n' "$(echo $k | tr a-z A-Z)" "$fill" "$(wc -l <"$tmp/$k.store")" \
    "$(sed 's/(.*//' "$tmp/$k.store" | sort | uniq -c | sort -rn | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}')"
done
