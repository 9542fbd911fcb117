# What scripts/system-test.sh (a container) and scripts/system-test-vm.sh (a virtual
# machine) share: the packages under test and a cached Debian root file system (sourced,
# not run; scripts/lib.sh first).

# build_debs DIR: this tree's packages in DIR/new, and the same tree as the earlier
# version 0.0.1 (omadmd and omadm-fwupd, for the upgrade) in DIR/old.
build_debs() {
    local dir=$1 variant
    mkdir -p "$dir/new" "$dir/old"
    command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet
    cargo build --release --locked --workspace --bins
    for variant in "" agent fwupd packagekit; do
        cargo deb --locked --no-build ${variant:+--variant "$variant"} -o "$dir/new/" >/dev/null
    done
    cargo deb --locked --no-build -p omadm-testserver -o "$dir/new/" >/dev/null
    for variant in "" fwupd; do
        cargo deb --locked --no-build ${variant:+--variant "$variant"} --deb-version "0.0.1-1" \
            -o "$dir/old/" >/dev/null
    done
}

# The Debian packages the guest needs beside ours: logind for seats, polkitd, fwupd with
# its test devices, packagekitd (apt backend).
guest_packages=(systemd systemd-sysv dbus libpam-systemd polkitd fwupd fwupd-tests packagekit
    packagekit-tools xdg-utils procps)

# root_tarball NAME PACKAGE...: prints the path of a bookworm minbase tarball with the
# packages, made with mmdebstrap from this machine's apt sources the first time and kept
# in $OMADM_SYSTEM_TEST_CACHE (/var/cache/omadm-system-test) by its package list; older
# tarballs of NAME go.
root_tarball() {
    local name=$1
    shift
    local cache=${OMADM_SYSTEM_TEST_CACHE:-/var/cache/omadm-system-test}
    local key tarball sources="" f
    key=$(printf '%s\n' bookworm minbase "$@" | sha256sum | cut -c1-16)
    tarball="$cache/$name-$key.tar"
    if [ ! -f "$tarball" ]; then
        mkdir -p "$cache"
        for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
            [ -s "$f" ] && { sources=$f; break; }
        done
        [ -n "$sources" ] || { echo "system-test: this machine has no apt sources to build from" >&2; return 1; }
        mmdebstrap --quiet --format=tar --variant=minbase --include="$(IFS=,; echo "$*")" \
            bookworm "$tarball.tmp" "$sources" </dev/null >&2
        mv "$tarball.tmp" "$tarball"
        find "$cache" -name "$name-*.tar" ! -name "$name-$key.tar" -delete
    fi
    echo "$tarball"
}

# guest_root TARBALL ROOT DEBS: unpacks the root and puts the packages, the checks and
# fwupd's test devices (a fake webcam to update) in it.
guest_root() {
    local tarball=$1 root=$2 debs=$3
    mkdir -p "$root"
    tar -C "$root" -xf "$tarball"
    mkdir -p "$root/root/system-test"
    cp -r "$debs" "$root/root/system-test/debs"
    install -m 0755 scripts/system-test/guest.sh "$root/root/system-test/guest.sh"
    printf '[fwupd]\nTestDevices=true\nOnlyTrusted=false\n' >"$root/etc/fwupd/fwupd.conf"
}
