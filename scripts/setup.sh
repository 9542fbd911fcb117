#!/usr/bin/env bash
# Installs what building and testing omadmd needs on a Debian machine, and nothing when it
# is all there already. Called by scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need_apt+=(make)
# The D-Bus tests start their own private bus.
command -v dbus-daemon >/dev/null 2>&1 || need_apt+=(dbus-daemon)
# The unit tests use systemd-analyze and systemd-socket-activate (no running systemd needed).
command -v systemd-socket-activate >/dev/null 2>&1 || need_apt+=(systemd)
# Fault injection into the real binary (fsync delays and errors, lock failures).
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# omadm-fleetsim's tests run scripts/fleet-figures.py.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The authorization tests run the real polkitd on the private bus.
[ -x /usr/lib/polkit-1/polkitd ] || need_apt+=(polkitd)
# FUMO's tests run the real fwupd on the private bus with its test devices and cabinets.
[ -x /usr/libexec/fwupd/fwupd ] || need_apt+=(fwupd)
[ -f /usr/share/installed-tests/fwupd/fakedevice124.cab ] || need_apt+=(fwupd-tests)
# SCOMO's tests run the real packagekitd (apt backend) and pkcon as another program.
[ -x /usr/libexec/packagekitd ] || need_apt+=(packagekit)
command -v pkcon >/dev/null 2>&1 || need_apt+=(packagekit-tools)

# DCMO's tests run usbguard's daemon with fake USB devices (umockdev) on the private bus.
# Its libraries are installed; usbguard itself only unpacked (below): installed, its
# service would start guarding this machine's own USB ports.
command -v umockdev-wrapper >/dev/null 2>&1 || need_apt+=(umockdev)
[ -e /usr/lib/x86_64-linux-gnu/libusbguard.so.1 ] || [ -n "$(ls /usr/lib/*/libusbguard.so.1 2>/dev/null)" ] ||
    need_apt+=(libusbguard1 libpolkit-gobject-1-0 libaudit1 libcap-ng0 libseccomp2)

source "$(dirname "$0")/lib.sh"
apt_install setup "${need_apt[@]}"

# usbguard's programs for the tests, unpacked from Debian's package where the tests look
# (tests/it/dcmo.rs): $OMADM_USBGUARD_ROOT, by default ~/.cache/omadmd-tests/usbguard.
usbguard_root=${OMADM_USBGUARD_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/omadmd-tests/usbguard}
if [ ! -x "$usbguard_root/usr/sbin/usbguard-daemon" ]; then
    echo "setup: unpacking usbguard into $usbguard_root (not installing it)" >&2
    mkdir -p "$usbguard_root"
    work=$(mktemp -d)
    (cd "$work" && apt-get download -qq usbguard 2>/dev/null || { apt-get update -qq && apt-get download -qq usbguard; })
    dpkg-deb -x "$work"/usbguard_*.deb "$usbguard_root"
    rm -rf "$work"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: no Rust toolchain found; install one with rustup (https://rustup.rs) and run again" >&2
    exit 1
fi
