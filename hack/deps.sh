#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need, only when one is
# missing (so a warm machine pays nothing). Must run as root on Debian 12.
set -euo pipefail
need=()
for pair in iptables:iptables ip:iproute2 ping:iputils-ping iperf3:iperf3 sysctl:procps containerd:containerd runc:runc busybox:busybox-static; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then echo "missing packages: ${need[*]} (run as root to install)" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
