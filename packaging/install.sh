#!/usr/bin/env bash
# Installs the files of omadmd, omadm-agent, omadm-fwupd, omadm-packagekit and omadm-testserver under
# $DESTDIR (default: /), the layout the Debian packages and the RPM spec's subpackages use. Build first: cargo build --release --locked --workspace --bins.
#   DESTDIR=/tmp/root packaging/install.sh [TARGET_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${DESTDIR:-/}
bin=${1:-target/release}

put() { # mode source destination
    install -D -m "$1" "$2" "$dest/$3"
}

put 0755 "$bin/omadmd"           usr/sbin/omadmd
put 0755 "$bin/omadmctl"         usr/bin/omadmctl
put 0755 "$bin/omadm-agent"      usr/bin/omadm-agent
put 0755 "$bin/omadm-testserver" usr/bin/omadm-testserver

put 0644 systemd/omadmd.service            usr/lib/systemd/system/omadmd.service
put 0644 systemd/omadmd.socket             usr/lib/systemd/system/omadmd.socket
put 0644 systemd/sysusers.d/omadmd.conf    usr/lib/sysusers.d/omadmd.conf
put 0644 systemd/user/omadm-agent.service  usr/lib/systemd/user/omadm-agent.service
put 0644 systemd/user/80-omadm-agent.preset usr/lib/systemd/user-preset/80-omadm-agent.preset
put 0644 packaging/omadm-agent.desktop     etc/xdg/autostart/omadm-agent.desktop

put 0644 dbus/org.omadm.Client1.conf       usr/share/dbus-1/system.d/org.omadm.Client1.conf
put 0644 dbus/org.omadm.Client1.service    usr/share/dbus-1/system-services/org.omadm.Client1.service
put 0644 dbus/org.omadm.Client1.xml        usr/share/dbus-1/interfaces/org.omadm.Client1.xml
put 0644 dbus/org.omadm.Client1.policy     usr/share/polkit-1/actions/org.omadm.Client1.policy

# omadm-fwupd: the FUMO handler (docs/fumo.md).
put 0755 "$bin/omadm-fwupd"                  usr/libexec/omadm-fwupd
put 0644 systemd/omadm-fwupd.service         usr/lib/systemd/system/omadm-fwupd.service
put 0644 systemd/sysusers.d/omadm-fwupd.conf usr/lib/sysusers.d/omadm-fwupd.conf
put 0644 dbus/org.omadm.Fwupd1.conf          usr/share/dbus-1/system.d/org.omadm.Fwupd1.conf
put 0644 packaging/polkit/50-omadm-fwupd.rules usr/share/polkit-1/rules.d/50-omadm-fwupd.rules
put 0644 data/ddf/fumo/oma-fumo-1.0.ddf.xml  usr/share/omadmd/ddf/oma-fumo-1.0.ddf.xml
put 0644 data/handlers/omadm-fwupd.toml      usr/share/omadmd/handlers/omadm-fwupd.toml

# omadm-packagekit: the SCOMO handler (docs/scomo.md).
put 0755 "$bin/omadm-packagekit"                  usr/libexec/omadm-packagekit
put 0644 systemd/omadm-packagekit.service         usr/lib/systemd/system/omadm-packagekit.service
put 0644 systemd/sysusers.d/omadm-packagekit.conf usr/lib/sysusers.d/omadm-packagekit.conf
put 0644 dbus/org.omadm.PackageKit1.conf          usr/share/dbus-1/system.d/org.omadm.PackageKit1.conf
put 0644 packaging/polkit/50-omadm-packagekit.rules usr/share/polkit-1/rules.d/50-omadm-packagekit.rules
put 0644 data/ddf/scomo/oma-scomo-1.0.ddf.xml     usr/share/omadmd/ddf/oma-scomo-1.0.ddf.xml
put 0644 data/handlers/omadm-packagekit.toml      usr/share/omadmd/handlers/omadm-packagekit.toml

put 0644 packaging/config.d/10-defaults.toml usr/lib/omadmd/config.d/10-defaults.toml
for ddf in data/ddf/*.xml; do
    put 0644 "$ddf" "usr/share/omadmd/ddf/$(basename "$ddf")"
done
for doc in README.md docs/*.md; do
    put 0644 "$doc" "usr/share/doc/omadmd/$(basename "$doc")"
done
# Man pages (generated from the CLI and committed; see tests/it/generated.rs) go in
# uncompressed: rpmbuild compresses them itself, and cargo-deb does for the Debian package.
for page in packaging/man/*.[158]; do
    put 0644 "$page" "usr/share/man/man${page##*.}/$(basename "$page")"
done
put 0644 packaging/completions/omadmctl.bash usr/share/bash-completion/completions/omadmctl
put 0644 packaging/completions/_omadmctl     usr/share/zsh/site-functions/_omadmctl
put 0644 packaging/completions/omadmctl.fish usr/share/fish/vendor_completions.d/omadmctl.fish
put 0644 docs/testserver.md usr/share/doc/omadm-testserver/testserver.md
put 0644 examples/demo/bootstrap.d/10-demo-server.json usr/share/doc/omadmd/examples/bootstrap.d/10-example-server.json
install -d -m 0755 "$dest/etc/omadmd/bootstrap.d" "$dest/etc/omadmd/config.d"
# Bootstrap files are read by the omadmd group only (docs/bootstrap.md): set here when
# installing onto this system with its user there; packages set it themselves.
if [ -z "${DESTDIR:-}" ] && getent group omadmd >/dev/null 2>&1; then
    chown root:omadmd "$dest/etc/omadmd/bootstrap.d"
    chmod 2750 "$dest/etc/omadmd/bootstrap.d"
fi
