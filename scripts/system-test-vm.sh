#!/usr/bin/env bash
# The system test with a whole kernel: the same checks as scripts/system-test.sh
# (scripts/system-test/guest.sh), in a qemu virtual machine booting Debian's kernel, for
# what a container cannot show (ProtectKernelModules and the other kernel-facing unit
# settings, devices, a real reboot). Run by hand, as root; about 12 minutes here, where
# qemu emulates the processor (TCG). docs/operations.md says when to run it.
#   OMADM_SYSTEM_TEST_CACHE  where the root file system tarball is kept
#   KEEP=1                   keep the machine's directory (its console log, its disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/system-test/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "system-test-vm: needs root (mmdebstrap, mkfs with the root's owners); not run" >&2
    exit 1
fi
scripts/setup.sh
need=()
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
apt_install system-test-vm "${need[@]}"

work=$(mktemp -d /var/tmp/omadm-system-test-vm.XXXXXX)
cleanup() { if [ -n "${KEEP:-}" ]; then echo "system-test-vm: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT

echo "== system-test-vm: packages"
build_debs "$work/debs"

echo "== system-test-vm: a Debian bookworm root file system with a kernel"
tarball=$(root_tarball vm-bookworm "${guest_packages[@]}" linux-image-amd64 initramfs-tools)
root="$work/root"
guest_root "$tarball" "$root" "$work/debs"
echo omadm-system-test >"$root/etc/hostname"
echo '/dev/vda / ext4 rw 0 1' >"$root/etc/fstab"
# The steps run from a unit at the end of each boot: install, then a reboot; the rest,
# then power off. The result line is what this script looks for on the console.
echo install >"$root/root/system-test/next"
cat >"$root/root/system-test/vm-runner.sh" <<'EOF'
#!/bin/sh
cd /root/system-test
case "$(cat next)" in
    install)
        if ./guest.sh install; then echo after-reboot >next; systemctl reboot; exit 0; fi
        echo "SYSTEM-TEST RESULT: FAILED in install" ;;
    after-reboot)
        echo done >next
        if ./guest.sh after-reboot && ./guest.sh upgrade; then
            echo "SYSTEM-TEST RESULT: passed"
        else
            echo "SYSTEM-TEST RESULT: FAILED after the reboot"
        fi ;;
esac
systemctl poweroff
EOF
chmod 0755 "$root/root/system-test/vm-runner.sh"
cat >"$root/etc/systemd/system/omadm-system-test.service" <<'EOF'
[Unit]
Description=omadmd system test (scripts/system-test-vm.sh)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/system-test/vm-runner.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/omadm-system-test.service \
    "$root/etc/systemd/system/multi-user.target.wants/omadm-system-test.service"

echo "== system-test-vm: a disk image, and qemu (no network device: the DM server runs inside)"
kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | head -n 1)
truncate -s 6G "$work/disk.img"
mkfs.ext4 -q -d "$root" "$work/disk.img"
timeout 1800 qemu-system-x86_64 -accel tcg,thread=multi -m 2048 -smp 2 -nographic -nic none \
    -kernel "$kernel" -initrd "$initrd" -append "root=/dev/vda rw console=ttyS0" \
    -drive "file=$work/disk.img,format=raw,if=virtio" </dev/null >"$work/console.log" 2>&1 || true
grep -a "SYSTEM-TEST RESULT\|== \|   ok: \|FAILED" "$work/console.log" | sed 's/^.*\(SYSTEM-TEST\|== \|   ok: \|FAILED\)/\1/' || true
grep -aq "SYSTEM-TEST RESULT: passed" "$work/console.log" \
    || { echo "system-test-vm: failed; the console: $work/console.log" >&2; KEEP=1; exit 1; }
echo "system-test-vm: ok"
