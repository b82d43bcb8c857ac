#!/usr/bin/env bash
# Runs minibridge's tests in a throw-away virtual machine (qemu) booted with
# Debian 12's own kernel (linux-image-amd64), for the kernel features the
# kernel of the machine running the suite may lack: bridge VLAN filtering
# (CONFIG_BRIDGE_VLAN_FILTERING), which TestVlan needs to exercise VLANs
# rather than their clean refusal. The VM sees the host's root file system
# read-only over virtio-9p (so ip, ping, bridge and the test binaries are
# the host's) with its own tmpfs /run (its scratch dir; /tmp stays the host's, read-only, since a checkout may live there); nothing it does reaches the
# host. Needs root and Debian's apt (installs qemu-system-x86 and downloads
# the kernel package into bin/vm when missing).
#
#   hack/vm-test.sh                       # TestVlan and TestPortIsolation
#   hack/vm-test.sh -test.run 'TestVlan'  # any go test flags
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bin/vm
mkdir -p "$out"

if ! command -v qemu-system-x86_64 >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi
if [ ! -f "$out/kernel/vmlinuz" ]; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null && dpkg -x ./*.deb x)
  rm -rf "$out/kernel" && mkdir -p "$out/kernel"
  cp "$tmp"/x/boot/vmlinuz-* "$out/kernel/vmlinuz"
  mv "$tmp"/x/lib/modules "$out/kernel/modules"
  rm -rf "$tmp"
  echo "$pkg" >"$out/kernel/package"
fi

# The initramfs: vminit as /init and the modules it loads.
export CGO_ENABLED=0
rm -rf "$out/initramfs" && mkdir -p "$out/initramfs/lib/modules"
go build -trimpath -o "$out/initramfs/init" ./hack/vminit
(cd "$out/kernel/modules" && find . \( -path '*/net/bridge/bridge.ko' -o -path '*/net/802/*.ko' -o -path '*/net/llc/*.ko' \
  -o -path '*/drivers/net/veth.ko' -o -path '*/net/9p/*.ko' -o -path '*/fs/9p/*.ko' -o -path '*/fs/netfs/*.ko' \
  -o -path '*/fs/fscache/*.ko' -o -path '*/drivers/virtio/*.ko' \) -print0 | xargs -0 cp --parents -t "$out/initramfs/lib/modules")
(cd "$out/initramfs" && find . | busybox cpio -o -H newc 2>/dev/null) >"$out/initramfs.cpio"

# What the VM runs: the test binary with prebuilt plugins (no Go toolchain
# or build cache is writable there).
mkdir -p "$out/plugins"
go build -trimpath -o "$out/plugins/" ./plugins/minibridge ./ipam/miniipam \
  github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/main/bridge
go test -c -o "$out/minibridge.test" ./plugins/minibridge
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-test.run '^(TestVlan|TestPortIsolation)$' -test.v)
{
  echo "cd $root/plugins/minibridge"
  printf 'MINITEST_PREBUILT_PLUGINS=%q exec %q' "$out/plugins" "$out/minibridge.test"
  printf ' %q' "${args[@]}"
  echo
} >"$out/run.sh"

# TCG, not KVM: on the development machine /dev/kvm exists but a nested
# guest hangs before its kernel prints a line; emulated, the kernel boots in
# about 8 s and TestVlan plus TestPortIsolation take about 2 minutes.
log=$out/console.log
timeout 900 qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 2 -nographic -no-reboot -nic none \
  -kernel "$out/kernel/vmlinuz" -initrd "$out/initramfs.cpio" \
  -append "console=ttyS0 quiet panic=-1 minicni.modules=virtio_pci,9pnet_virtio,9p,bridge,veth minicni.run=$out/run.sh" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" </dev/null | tee "$log"
code=$(tr -d '\r' <"$log" | awk '/^minicni-vm-exit / {print $2}' | tail -1)
echo "vm-test: kernel $(cat "$out/kernel/package"), exit status ${code:-unknown}"
[ "${code:-1}" = 0 ]
