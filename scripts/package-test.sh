#!/usr/bin/env bash
# Builds the Debian package, checks it with lintian, installs it, checks that every file
# landed where the units and the bus policy expect it and that the programs run as
# installed, then purges it and checks that nothing is left. Needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then
    echo "package-test: needs root (dpkg -i); skipped" >&2
    exit 0
fi
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet
command -v lintian >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null; }

# The test server is its own workspace package: build every binary, then package them.
cargo build --release --locked --workspace --bins
deb=$(cargo deb --locked --no-build 2>&1 | tail -n 1)
[ -f "$deb" ] || { echo "package-test: cargo deb did not say where the package is: $deb" >&2; exit 1; }
echo "== built $deb"

echo "== lintian (errors fail)"
lintian --fail-on error "$deb" || { echo "lintian found errors" >&2; exit 1; }

echo "== install"
# Missing dependencies (dbus, systemd) are pulled in the way apt would.
if ! dpkg -i "$deb" >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f >/dev/null
fi
dpkg -s omadmd | grep -q '^Status: install ok installed' || { echo "omadmd did not install" >&2; exit 1; }
for f in /usr/sbin/omadmd /usr/bin/omadmctl /usr/bin/omadm-agent \
         /lib/systemd/system/omadmd.service /lib/systemd/system/omadmd.socket \
         /usr/lib/sysusers.d/omadmd.conf /usr/share/dbus-1/system.d/org.omadm.Client1.conf \
         /usr/share/dbus-1/system-services/org.omadm.Client1.service \
         /usr/share/polkit-1/actions/org.omadm.Client1.policy \
         /usr/lib/omadmd/config.d/10-defaults.toml /usr/share/omadmd/ddf/oma-dm-dmacc-1.2.ddf.xml \
         /usr/share/man/man8/omadmd.8.gz /usr/share/man/man1/omadmctl.1.gz \
         /usr/share/man/man5/omadmd.toml.5.gz /usr/share/bash-completion/completions/omadmctl \
         /usr/share/zsh/vendor-completions/_omadmctl /usr/share/fish/vendor_completions.d/omadmctl.fish; do
    [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }
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
dpkg --purge omadmd >/dev/null
for f in /usr/sbin/omadmd /lib/systemd/system/omadmd.service /usr/share/dbus-1/system.d/org.omadm.Client1.conf /var/lib/omadmd /usr/lib/omadmd; do
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
echo "== built $(basename "$rpm")"
DESTDIR="$top/layout" packaging/install.sh target/release
rpm -qlp "$rpm" | sort >"$top/rpm.files"
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
echo "package-test: ok"
