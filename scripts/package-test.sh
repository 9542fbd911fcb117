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

deb=$(cargo deb --locked 2>&1 | tail -n 1)
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
    words=$(bash -c 'source /usr/share/bash-completion/completions/omadmctl; COMP_WORDS=(omadmctl ses); COMP_CWORD=1; _omadmctl omadmctl ses omadmctl; echo "${COMPREPLY[*]}"')
    [[ "$words" == *session* ]] || { echo "bash completion offered: $words" >&2; exit 1; }
fi
/usr/sbin/omadmd check-config | grep -q '10-defaults.toml'
out=$(systemd-analyze verify --man=no /lib/systemd/system/omadmd.service /lib/systemd/system/omadmd.socket 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify: $out" >&2; exit 1; }

echo "== purge"
dpkg --purge omadmd >/dev/null
for f in /usr/sbin/omadmd /lib/systemd/system/omadmd.service /usr/share/dbus-1/system.d/org.omadm.Client1.conf /var/lib/omadmd /usr/lib/omadmd; do
    [ ! -e "$f" ] || { echo "left behind after purge: $f" >&2; exit 1; }
done
echo "package-test: ok"
