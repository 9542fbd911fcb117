#!/usr/bin/env bash
# The packages on a real system (issue 26): a Debian bookworm root file system made from
# Debian's packages (mmdebstrap, cached by its package list), booted with systemd as PID 1
# in a container (systemd-nspawn -b, its own loopback only), the .debs installed with apt
# as a user does, and their whole life checked by scripts/system-test/guest.sh inside:
#   boot 1: install (the first start with no restart), every polkit action as two non-root
#           users, SHOW to the agent on seat0, FUMO and SCOMO through the installed
#           handlers as their own users, state to keep;
#   boot 2: the state after a reboot, a notification-activated session, dpkg -i ten times
#           with the socket still listening, purge, and an upgrade from an earlier version
#           (this tree built with a lower version number) that keeps the state, purge.
# Needs root (CI runs as root). docs/operations.md says how to run it by hand, and the
# whole-kernel variant (scripts/system-test-vm.sh).
#   OMADM_SYSTEM_TEST_CACHE  where the root file system tarball is kept (default
#                            /var/cache/omadm-system-test)
#   KEEP=1                   keep the machine's directory afterwards
# Options: --debs DIR  test the packages in DIR/new and DIR/old instead of building them
#          (the packages of an earlier commit, say); --keep-going  run every check and
#          count the failures instead of stopping at the first.
set -euo pipefail
debs_from="" keep_going=""
while (($#)); do
    case "$1" in
        --debs) debs_from=$(realpath "$2"); shift 2 ;;
        --keep-going) keep_going=1; shift ;;
        *) echo "usage: $0 [--debs DIR] [--keep-going]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/system-test/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "system-test: needs root (mmdebstrap, systemd-nspawn); skipped" >&2
    exit 0
fi
scripts/setup.sh
need=()
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
apt_install system-test "${need[@]}"

echo "== system-test: packages (this version, and the same tree as an earlier one)"
work=$(mktemp -d /var/tmp/omadm-system-test.XXXXXX)
nspawn_pid=""
cleanup() {
    [ -z "$nspawn_pid" ] || kill "$nspawn_pid" 2>/dev/null || true
    [ -z "$nspawn_pid" ] || wait "$nspawn_pid" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "system-test: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
if [ -n "$debs_from" ]; then
    mkdir -p "$work/debs/new" "$work/debs/old"
    cp "$debs_from"/new/*.deb "$work/debs/new/"
    cp "$debs_from"/old/*.deb "$work/debs/old/"
else
    build_debs "$work/debs"
fi
version=$(dpkg-deb -f "$work"/debs/new/omadmd_*.deb Version)
ls "$work/debs/new" "$work/debs/old" | sed 's/^/   /'

echo "== system-test: a Debian bookworm root file system"
tarball=$(root_tarball bookworm "${guest_packages[@]}")
root="$work/root"
guest_root "$tarball" "$root" "$work/debs"
# fwupd refuses to run in a container, which has no firmware of its own: lifted for its
# test devices, the test's only other change to what Debian ships.
mkdir -p "$root/etc/systemd/system/fwupd.service.d"
printf '[Unit]\nConditionVirtualization=\n' >"$root/etc/systemd/system/fwupd.service.d/system-test.conf"

# boot N: boots the root with systemd as PID 1; sets `leader` to its PID 1 (as this host
# sees it) once the system is up.
leader=""
boot() {
    echo "== system-test: boot $1"
    systemd-nspawn --quiet -D "$root" --keep-unit --register=no --private-network \
        --machine=omadm-system-test -b >"$work/console-$1.log" 2>&1 </dev/null &
    nspawn_pid=$!
    leader=""
    for _ in $(seq 300); do
        leader=$( (ps --ppid "$nspawn_pid" -o pid= 2>/dev/null || true) | head -n 1 | tr -d ' ')
        if [ -n "$leader" ]; then
            # nspawn's own child forks the container's init and stays as its parent.
            local inner
            inner=$( (ps --ppid "$leader" -o pid=,comm= 2>/dev/null || true) | awk '$2 == "systemd" {print $1}' | head -n 1)
            [ -z "$inner" ] || leader=$inner
            [ "$(readlink "/proc/$leader/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] \
                && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break
        fi
        leader=""
        sleep 0.1
    done
    [ -n "$leader" ] || { cat "$work/console-$1.log" >&2; echo "system-test: the container did not start" >&2; exit 1; }
    # systemctl answers once systemd has its socket up; then it waits for the boot's end.
    local state=""
    for _ in $(seq 600); do
        state=$(in_guest timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
        case "$state" in running|degraded|maintenance|stopping) break ;; esac
        sleep 0.2
    done
    echo "   systemd: ${state:-no answer}"
    [ "$state" = running ] || { in_guest systemctl --failed --no-pager >&2 || true; }
}
# in_guest COMMAND...: runs COMMAND inside the booted system, as its root.
in_guest() {
    nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd=/ \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"
}
poweroff() {
    in_guest systemctl poweroff || true
    for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    wait "$nspawn_pid" 2>/dev/null || true
    nspawn_pid=""
}
failed=0
step() {
    if ! in_guest ${keep_going:+KEEP_GOING=1} /root/system-test/guest.sh "$1"; then
        echo "system-test: step $1 failed (console: $work/console-*.log)" >&2
        [ -n "$keep_going" ] || exit 1
        failed=1
    fi
}

start=$SECONDS
boot 1
step install
poweroff
boot 2
step after-reboot
step upgrade
poweroff
[ "$failed" = 0 ] || { echo "system-test: FAILED (omadmd $version)" >&2; exit 1; }
echo "system-test: ok (omadmd $version on a booted bookworm; $((SECONDS - start)) s of boots and checks)"
