#!/usr/bin/env bash
# Builds the Debian packages (omadmd, omadm-agent, omadm-testserver), checks them with
# lintian and their file lists against each other, installs omadmd alone and then the
# others, checks that every file landed where the units and the bus policy expect it and
# that the programs run as installed, purges them and checks that nothing is left; then
# builds the RPM subpackages and compares them with packaging/install.sh. Needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then
    echo "package-test: needs root (dpkg -i); skipped" >&2
    exit 0
fi
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet
command -v lintian >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null; }

# Three packages (the root Cargo.toml says how they are split): the daemon, the desktop
# agent (a variant of the root package), and the test server (its own workspace package).
cargo build --release --locked --workspace --bins
built() { # cargo deb arguments...; prints the path of the .deb it made
    local deb
    deb=$(cargo deb --locked --no-build "$@" 2>&1 | tail -n 1)
    [ -f "$deb" ] || { echo "package-test: cargo deb $* did not say where the package is: $deb" >&2; exit 1; }
    echo "$deb"
}
deb=$(built)
agent_deb=$(built --variant agent)
fwupd_deb=$(built --variant fwupd)
packagekit_deb=$(built --variant packagekit)
server_deb=$(built -p omadm-testserver)

for d in "$deb" "$agent_deb" "$fwupd_deb" "$packagekit_deb" "$server_deb"; do
    echo "== built $d; lintian (errors fail)"
    lintian --fail-on error "$d" || { echo "lintian found errors in $d" >&2; exit 1; }
done

# Each package holds what it should and nothing of the others'; a headless device that
# installs omadmd alone gets no autostart entry and no DM server.
contents() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's,^\.,,' | grep -v '/$'; }
expect() { # package file-list pattern...: every pattern has a file, and no file is unexpected
    local list=$1; shift
    for want in "$@"; do
        grep -qx "$want" <<<"$list" || { echo "package-test: no file matching $want" >&2; exit 1; }
    done
}
refuse() { # file-list pattern...: no file matches
    local list=$1; shift
    for bad in "$@"; do
        ! grep -qx "$bad" <<<"$list" || { echo "package-test: unexpected $(grep -x "$bad" <<<"$list")" >&2; exit 1; }
    done
}
main_files=$(contents "$deb")
agent_files=$(contents "$agent_deb")
server_files=$(contents "$server_deb")
fwupd_files=$(contents "$fwupd_deb")
packagekit_files=$(contents "$packagekit_deb")
refuse "$main_files" '/usr/bin/omadm-agent' '/usr/bin/omadm-testserver' '/etc/xdg/.*' \
    '/usr/libexec/omadm-fwupd' '.*omadm-fwupd.*' '.*/oma-fumo-1.0.ddf.xml' \
    '.*omadm-packagekit.*' '.*/oma-scomo-1.0.ddf.xml' \
    '/usr/lib/systemd/user/.*' '.*/omadm-agent\.1\.gz' '.*/omadm-testserver\.1\.gz'
expect "$agent_files" /usr/bin/omadm-agent /usr/lib/systemd/user/omadm-agent.service \
    /etc/xdg/autostart/omadm-agent.desktop /usr/share/man/man1/omadm-agent.1.gz
refuse "$agent_files" '/usr/s\?bin/omadm[^-].*' '/usr/lib/systemd/system/.*' '/usr/share/dbus-1/.*'
expect "$fwupd_files" /usr/libexec/omadm-fwupd /usr/lib/systemd/system/omadm-fwupd.service \
    /usr/lib/sysusers.d/omadm-fwupd.conf /usr/share/dbus-1/system.d/org.omadm.Fwupd1.conf \
    /usr/share/polkit-1/rules.d/50-omadm-fwupd.rules /usr/share/omadmd/ddf/oma-fumo-1.0.ddf.xml \
    /usr/share/omadmd/handlers/omadm-fwupd.toml \
    /usr/share/man/man8/omadm-fwupd.8.gz
refuse "$fwupd_files" '/usr/s\?bin/.*' '.*/systemd/system/omadmd.*' '/usr/share/dbus-1/system.d/org.omadm.Client1.conf'
dpkg-deb -f "$fwupd_deb" Depends | grep -q 'fwupd' || { echo "omadm-fwupd does not depend on fwupd" >&2; exit 1; }
expect "$packagekit_files" /usr/libexec/omadm-packagekit /usr/lib/systemd/system/omadm-packagekit.service \
    /usr/lib/sysusers.d/omadm-packagekit.conf /usr/share/dbus-1/system.d/org.omadm.PackageKit1.conf \
    /usr/share/polkit-1/rules.d/50-omadm-packagekit.rules /usr/share/omadmd/ddf/oma-scomo-1.0.ddf.xml \
    /usr/share/omadmd/handlers/omadm-packagekit.toml \
    /usr/share/man/man8/omadm-packagekit.8.gz
refuse "$packagekit_files" '/usr/s\?bin/.*' '.*/systemd/system/omadmd.*' '.*omadm-fwupd.*'
dpkg-deb -f "$packagekit_deb" Depends | grep -q 'packagekit' || { echo "omadm-packagekit does not depend on packagekit" >&2; exit 1; }
expect "$server_files" /usr/bin/omadm-testserver /usr/share/man/man1/omadm-testserver.1.gz \
    /usr/share/doc/omadm-testserver/testserver.md
refuse "$server_files" '/usr/s\?bin/omadm[^-].*' '/usr/bin/omadm-agent' '/usr/lib/systemd/.*' '/etc/.*'
dpkg-deb -f "$agent_deb" Depends | grep -q 'omadmd' || { echo "omadm-agent does not depend on omadmd" >&2; exit 1; }
dpkg-deb -f "$agent_deb" Depends | grep -q 'xdg-utils' || { echo "omadm-agent does not depend on xdg-utils" >&2; exit 1; }
dpkg-deb -f "$agent_deb" Recommends | grep -q 'xdg-desktop-portal' || { echo "omadm-agent does not recommend the portal" >&2; exit 1; }

# Each package's whole file list, against the one committed in packaging/contents/: a
# file gained or lost (a crate moved, an asset renamed) fails here, with the difference.
# OMADM_BLESS=1 rewrites the lists after an intended change.
for pair in "omadmd:$main_files" "omadm-agent:$agent_files" "omadm-fwupd:$fwupd_files" \
    "omadm-packagekit:$packagekit_files" "omadm-testserver:$server_files"; do
    name=${pair%%:*}
    list=packaging/contents/$name.list
    if [ -n "${OMADM_BLESS:-}" ]; then
        mkdir -p packaging/contents
        sort <<<"${pair#*:}" >"$list"
    elif ! diff -u "$list" <(sort <<<"${pair#*:}"); then
        echo "package-test: $name's files changed (above; OMADM_BLESS=1 after an intended change)" >&2
        exit 1
    fi
done

echo "== install omadmd alone (a headless device)"
# Missing dependencies (dbus, systemd) are pulled in the way apt would.
install_debs() {
    if ! dpkg -i "$@" >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f >/dev/null
    fi
}
install_debs "$deb"
dpkg -s omadmd | grep -q '^Status: install ok installed' || { echo "omadmd did not install" >&2; exit 1; }
for f in /usr/bin/omadm-agent /usr/bin/omadm-testserver /etc/xdg/autostart/omadm-agent.desktop; do
    [ ! -e "$f" ] || { echo "omadmd alone installed $f" >&2; exit 1; }
done
getent passwd omadmd >/dev/null || { echo "no omadmd user after install" >&2; exit 1; }
/usr/sbin/omadmd --version
/usr/bin/omadmctl --help >/dev/null
# The man pages render without warnings, and bash completes a subcommand.
command -v man >/dev/null && for page in omadmd.8 omadmctl.1 omadmd.toml.5; do
    warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "/usr/share/man/man${page##*.}/$page.gz" 2>&1 >/dev/null || true)
    [ -z "$warn" ] || { echo "man $page: $warn" >&2; exit 1; }
done
if command -v bash >/dev/null && [ -f /usr/share/bash-completion/completions/omadmctl ]; then
    # The script asks the installed omadmctl (dynamic completion).
    words=$(bash -c 'source /usr/share/bash-completion/completions/omadmctl; COMP_WORDS=(omadmctl ses); COMP_CWORD=1; COMP_TYPE=9; _clap_complete_omadmctl omadmctl ses omadmctl; echo "${COMPREPLY[*]}"')
    [[ "$words" == *session* ]] || { echo "bash completion offered: $words" >&2; exit 1; }
fi
/usr/sbin/omadmd check-config | grep -q '10-defaults.toml'
out=$(systemd-analyze verify --man=no /lib/systemd/system/omadmd.service /lib/systemd/system/omadmd.socket 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify: $out" >&2; exit 1; }

echo "== install omadm-agent and omadm-testserver beside it (a desktop, an integrator)"
install_debs "$agent_deb" "$server_deb"
for p in omadm-agent omadm-testserver; do
    dpkg -s "$p" | grep -q '^Status: install ok installed' || { echo "$p did not install" >&2; exit 1; }
done
for f in /usr/bin/omadm-agent /usr/lib/systemd/user/omadm-agent.service /etc/xdg/autostart/omadm-agent.desktop \
         /usr/bin/omadm-testserver /usr/share/doc/omadm-testserver/testserver.md; do
    [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
# The user unit starts with every user's graphical session (deb-systemd-helper --user,
# what debhelper does for user units); the autostart entry steps aside for it.
[ -L /etc/systemd/user/graphical-session.target.wants/omadm-agent.service ] \
    || { echo "omadm-agent.service is not enabled for users' sessions" >&2; exit 1; }
grep -qx 'X-systemd-skip=true' /etc/xdg/autostart/omadm-agent.desktop
/usr/bin/omadm-agent --version
/usr/bin/omadm-testserver --version
command -v man >/dev/null && for page in omadm-agent.1 omadm-testserver.1; do
    warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "/usr/share/man/man1/$page.gz" 2>&1 >/dev/null || true)
    [ -z "$warn" ] || { echo "man $page: $warn" >&2; exit 1; }
done

echo "== install omadm-fwupd and omadm-packagekit (a device whose firmware and software a server manages)"
install_debs "$fwupd_deb" "$packagekit_deb"
dpkg -s omadm-packagekit | grep -q '^Status: install ok installed' || { echo "omadm-packagekit did not install" >&2; exit 1; }
getent passwd omadm-packagekit >/dev/null || { echo "no omadm-packagekit user after install" >&2; exit 1; }
[ -L /etc/systemd/system/multi-user.target.wants/omadm-packagekit.service ] \
    || { echo "omadm-packagekit.service is not enabled" >&2; exit 1; }
/usr/libexec/omadm-packagekit --version
out=$(systemd-analyze verify --man=no /lib/systemd/system/omadm-packagekit.service 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify omadm-packagekit.service: $out" >&2; exit 1; }
dpkg -s omadm-fwupd | grep -q '^Status: install ok installed' || { echo "omadm-fwupd did not install" >&2; exit 1; }
getent passwd omadm-fwupd >/dev/null || { echo "no omadm-fwupd user after install" >&2; exit 1; }
[ -L /etc/systemd/system/multi-user.target.wants/omadm-fwupd.service ] \
    || { echo "omadm-fwupd.service is not enabled" >&2; exit 1; }
/usr/libexec/omadm-fwupd --version
out=$(systemd-analyze verify --man=no /lib/systemd/system/omadm-fwupd.service 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify omadm-fwupd.service: $out" >&2; exit 1; }
if command -v man >/dev/null; then
    warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l /usr/share/man/man8/omadm-fwupd.8.gz 2>&1 >/dev/null || true)
    [ -z "$warn" ] || { echo "man omadm-fwupd.8: $warn" >&2; exit 1; }
fi

echo "== enabled for boot, and woken by a notification as the installed units say"
# deb-systemd-helper enables the units even where systemd is not running: these links are
# what starts them at boot.
for link in /etc/systemd/system/multi-user.target.wants/omadmd.service \
            /etc/systemd/system/sockets.target.wants/omadmd.socket; do
    [ -L "$link" ] || { echo "not enabled: $link" >&2; exit 1; }
done
# No systemd as PID 1 here, so do what it would: a system-style bus with the installed
# policy, the state directory, the socket on UDP 2948 (systemd-socket-activate starts the
# daemon on the first datagram), and the daemon as the omadmd user.
run=$(mktemp -d)
chmod 0755 "$run"  # the omadmd user reaches the bus socket in it
sed -e "s|@LISTEN@|unix:path=$run/bus|" \
    -e "s|@POLICY@|<includedir>/usr/share/dbus-1/system.d</includedir>|" \
    tests/fixtures/system-bus.conf.in >"$run/system.conf"
dbus-daemon --config-file="$run/system.conf" --nofork --nopidfile & bus_pid=$!
act_pid=""
trap 'kill $bus_pid $act_pid 2>/dev/null || true' EXIT
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$run/bus"
install -d -m 0700 -o omadmd -g omadmd /var/lib/omadmd
systemd-socket-activate --datagram -l 127.0.0.1:2948 \
    -E DBUS_SYSTEM_BUS_ADDRESS -E STATE_DIRECTORY=/var/lib/omadmd \
    setpriv --reuid omadmd --regid omadmd --init-groups /usr/sbin/omadmd 2>"$run/daemon.log" & act_pid=$!
sleep 0.5
omadm-testserver --notify 127.0.0.1:2948 --server-id nobody-here --notification-id 1 >/dev/null
for _ in $(seq 100); do omadmctl status >/dev/null 2>&1 && break; sleep 0.1; done
omadmctl status || { cat "$run/daemon.log" >&2; exit 1; }
grep -q 'socket="systemd"' "$run/daemon.log" || { echo "the daemon did not take the socket" >&2; cat "$run/daemon.log" >&2; exit 1; }
grep -q 'no account for server' "$run/daemon.log" || { echo "the waking datagram was not read" >&2; cat "$run/daemon.log" >&2; exit 1; }
kill "$act_pid" 2>/dev/null || true; wait "$act_pid" 2>/dev/null || true
kill "$bus_pid"; wait "$bus_pid" 2>/dev/null || true
trap - EXIT
unset DBUS_SYSTEM_BUS_ADDRESS
rm -rf "$run"

echo "== purge"
dpkg --purge omadm-packagekit omadm-fwupd omadm-agent omadm-testserver omadmd >/dev/null
for f in /usr/sbin/omadmd /lib/systemd/system/omadmd.service /usr/share/dbus-1/system.d/org.omadm.Client1.conf /var/lib/omadmd /usr/lib/omadmd \
         /usr/bin/omadm-agent /usr/bin/omadm-testserver /etc/xdg/autostart/omadm-agent.desktop \
         /etc/systemd/user/graphical-session.target.wants/omadm-agent.service \
         /usr/libexec/omadm-fwupd /etc/systemd/system/multi-user.target.wants/omadm-fwupd.service \
         /var/lib/omadm-fwupd /usr/libexec/omadm-packagekit \
         /etc/systemd/system/multi-user.target.wants/omadm-packagekit.service; do
    [ ! -e "$f" ] || { echo "left behind after purge: $f" >&2; exit 1; }
done
echo "== RPM: build packaging/rpm/omadmd.spec from a source tarball, compare with install.sh"
command -v rpmbuild >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm >/dev/null; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
grep -q "^Version: *$version\$" packaging/rpm/omadmd.spec || { echo "the spec's Version is not $version" >&2; exit 1; }
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES" "$top/layout"
tar --exclude=./target --exclude=./.git --exclude=./fuzz/target \
    --transform "s,^\.,omadmd-$version," -czf "$top/SOURCES/omadmd-$version.tar.gz" .
# The release binaries cargo deb built; Debian has no systemd-rpm-macros (see the file).
rpmbuild -bb --nodeps --define "_topdir $top" --define "omadmd_prebuilt $PWD/target/release" \
    --load "$PWD/scripts/rpm-macros.debian" packaging/rpm/omadmd.spec >"$top/rpmbuild.log" 2>&1 \
    || { tail -n 30 "$top/rpmbuild.log" >&2; exit 1; }
rpm=$(ls "$top"/RPMS/*/omadmd-"$version"-*.rpm)
agent_rpm=$(ls "$top"/RPMS/*/omadm-agent-"$version"-*.rpm)
fwupd_rpm=$(ls "$top"/RPMS/*/omadm-fwupd-"$version"-*.rpm)
packagekit_rpm=$(ls "$top"/RPMS/*/omadm-packagekit-"$version"-*.rpm)
server_rpm=$(ls "$top"/RPMS/*/omadm-testserver-"$version"-*.rpm)
echo "== built $(basename "$rpm"), $(basename "$agent_rpm"), $(basename "$fwupd_rpm"), $(basename "$packagekit_rpm"), $(basename "$server_rpm")"
# Together the three hold what install.sh installs; each holds only its own part.
DESTDIR="$top/layout" packaging/install.sh target/release
rpm -qlp "$rpm" "$agent_rpm" "$fwupd_rpm" "$packagekit_rpm" "$server_rpm" | sort >"$top/rpm.files"
rpm_main=$(rpm -qlp "$rpm")
refuse "$rpm_main" '/usr/bin/omadm-agent' '/usr/bin/omadm-testserver' '/etc/xdg/.*' '/usr/lib/systemd/user/.*'
expect "$(rpm -qlp "$agent_rpm")" /usr/bin/omadm-agent /usr/lib/systemd/user/omadm-agent.service /etc/xdg/autostart/omadm-agent.desktop
expect "$(rpm -qlp "$server_rpm")" /usr/bin/omadm-testserver
expect "$(rpm -qlp "$fwupd_rpm")" /usr/libexec/omadm-fwupd /usr/lib/systemd/system/omadm-fwupd.service \
    /usr/share/omadmd/ddf/oma-fumo-1.0.ddf.xml
refuse "$rpm_main" '.*omadm-fwupd.*' '.*/oma-fumo-1.0.ddf.xml' '.*omadm-packagekit.*' '.*/oma-scomo-1.0.ddf.xml'
expect "$(rpm -qlp "$packagekit_rpm")" /usr/libexec/omadm-packagekit /usr/share/omadmd/ddf/oma-scomo-1.0.ddf.xml
rpm -qp --requires "$fwupd_rpm" | grep -q '^fwupd' || { echo "the omadm-fwupd RPM does not require fwupd" >&2; exit 1; }
rpm -qp --requires "$agent_rpm" | grep -q '^omadmd = ' || { echo "the agent RPM does not require omadmd" >&2; exit 1; }
(cd "$top/layout" && find . -type f -o -type l | sed 's,^\.,,' | sort) >"$top/layout.files"
missing=$(comm -23 "$top/layout.files" "$top/rpm.files")
[ -z "$missing" ] || { echo "install.sh installs what the RPM lacks: $missing" >&2; exit 1; }
extra=$(comm -13 "$top/layout.files" "$top/rpm.files" | while read -r f; do
    case "$f" in /usr/lib/.build-id*|/usr/share/licenses/*) continue ;; esac
    [ -d "$top/layout$f" ] || echo "$f"
done)
[ -z "$extra" ] || { echo "the RPM has files install.sh does not: $extra" >&2; exit 1; }
rpm -qp --scripts "$rpm" | grep -q 'systemctl.*preset omadmd.socket omadmd.service' \
    || { echo "the RPM does not enable the units" >&2; exit 1; }
rpm -qp --scripts "$agent_rpm" | grep -q 'preset.*omadm-agent.service' \
    || { echo "the agent RPM does not preset its user unit" >&2; exit 1; }
echo "package-test: ok"
