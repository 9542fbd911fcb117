#!/usr/bin/env bash
# The handlers' demo (issue 14): the real fwupd (with its test devices) and the real
# packagekitd run on a private system bus beside omadmd, omadm-fwupd and omadm-packagekit;
# omadm-testserver reads this machine's software inventory (SCOMO) and updates fwupd's fake
# webcam from 1.2.2 to 1.2.4 (FUMO DownloadAndUpdate), and shows the alert it received.
# packagekitd needs root (it reads the package database and runs in a mount namespace that
# puts the private bus at the system bus's path): the build runs as you, the rest through
# sudo. Nothing is installed or changed on this machine beyond scripts/setup.sh's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--built" ]; then
    scripts/setup.sh
    cargo build --locked --quiet --workspace --bins
    if [ "$(id -u)" -ne 0 ]; then
        echo "demo-handlers: packagekitd and fwupd run as root: continuing through sudo" >&2
        exec sudo "$0" --built
    fi
fi

source scripts/lib.sh

root=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $root" >&2 || rm -rf "$root"
}
trap cleanup EXIT

# fwupd's fake webcam (its test plugin): 1.2.2 until fakedevice124.cab makes it 1.2.4.
webcam=08d460be0f1f9f128413f816022a6439e0078018
cab=/usr/share/installed-tests/fwupd/fakedevice124.cab
fumo="urn:oma:mo:oma-fumo:1.0/$webcam"
deployed="urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed"

echo "== 0. A private D-Bus system bus"
private_bus "$root"
socket=${DBUS_SYSTEM_BUS_ADDRESS#unix:path=}
socket=${socket%%,*}
echo "   $DBUS_SYSTEM_BUS_ADDRESS"

echo "== 1. fwupd with its test devices, and packagekitd (apt backend), on that bus"
mkdir -p "$root/fwupd/etc/fwupd"
# The test cabinets are signed by fwupd's test key, which this instance does not trust.
printf '[fwupd]\nTestDevices=true\nOnlyTrusted=false\n' > "$root/fwupd/etc/fwupd/fwupd.conf"
FWUPD_SYSCONFDIR="$root/fwupd/etc" FWUPD_LOCALSTATEDIR="$root/fwupd/var" FWUPD_RUNDIR="$root/fwupd/run" \
    /usr/libexec/fwupd/fwupd --verbose > "$root/fwupd.log" 2>&1 &
pids+=($!)
wait_for "$root/fwupd.log" "ready for requests" "fwupd"
# packagekitd clears its environment and always uses the system bus's path.
unshare -m sh -c "mount -t tmpfs tmpfs /run/dbus && touch /run/dbus/system_bus_socket && \
    mount --bind $socket /run/dbus/system_bus_socket && exec /usr/libexec/packagekitd" \
    > "$root/packagekitd.log" 2>&1 &
pids+=($!)
echo "   fwupd and packagekitd are running"

echo "== 2. omadm-testserver: the session it will play"
cat > "$root/script.json" <<EOF
{
  "played_at": "/dm",
  "sessions": [
    {"packages": [{"CMD": [["END"]]}]},
    {"packages": [
      {"CMD": [
        ["GET", "$deployed"],
        ["GET", "$deployed/dpkg"],
        ["HGET", "{base}/repo/pkgurl", "$fumo/DownloadAndUpdate/PkgURL"],
        ["EXEC", "$fumo/DownloadAndUpdate", "{base}/dm/fumo"]
      ]},
      {"expect": [200, 200, 200, 202], "CMD": [["END"]]}
    ]}
  ],
  "repository": {
    "/repo/pkgurl": {"content_type": "text/plain", "body": "{base}/repo/fakedevice124.cab"},
    "/repo/fakedevice124.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": "$cab"}
  }
}
EOF
sed 's/^/   /' "$root/script.json"
target/debug/omadm-testserver --script "$root/script.json" -v > "$root/server.log" 2>&1 &
pids+=($!)
wait_for "$root/server.log" "listening on" "omadm-testserver"
base=$(sed -n 's/^listening on //p' "$root/server.log" | head -n 1)
echo "   listening on $base"

echo "== 3. omadmd (with the FUMO and SCOMO DDFs) and the two handlers"
mkdir -p "$root/etc/omadmd/bootstrap.d" "$root/etc/omadmd/ddf"
# The demo's configuration without its session at start: the session below is asked for.
grep -v '^at-start\|Talk to every server' examples/demo/omadmd.toml > "$root/etc/omadmd/omadmd.toml"
sed "s|{base}|$base|" examples/demo/bootstrap.d/10-demo-server.json > "$root/etc/omadmd/bootstrap.d/10-demo-server.json"
chmod 600 "$root/etc/omadmd/bootstrap.d/10-demo-server.json"
cp data/ddf/fumo/*.xml data/ddf/scomo/*.xml "$root/etc/omadmd/ddf/"
# The handlers' definitions (which MOs each may handle), made out for root, who runs them here.
mkdir -p "$root/etc/omadmd/handlers"
for def in data/handlers/*.toml; do
    sed 's/^user = .*/user = "root"/' "$def" > "$root/etc/omadmd/handlers/$(basename "$def")"
done
target/debug/omadmd --config-root "$root" > "$root/daemon.log" 2>&1 &
pids+=($!)
wait_for "$root/daemon.log" "session ended\|session aborted" "the BootstrapComplete session"
target/debug/omadm-fwupd --state-dir "$root/fwupd-state" > "$root/omadm-fwupd.log" 2>&1 &
pids+=($!)
target/debug/omadm-packagekit --state-dir "$root/packagekit-state" > "$root/omadm-packagekit.log" 2>&1 &
pids+=($!)
wait_for "$root/omadm-fwupd.log" "registered with omadmd" "omadm-fwupd"
# The first inventory of a whole machine takes PackageKit a few seconds.
for _ in $(seq 120); do grep -q "SCOMO inventory written" "$root/omadm-packagekit.log" && break; sleep 0.5; done
wait_for "$root/omadm-packagekit.log" "SCOMO inventory written" "omadm-packagekit's inventory"
sed 's/^[0-9TZ:.-]* *//; s/^/   omadm-fwupd: /' "$root/omadm-fwupd.log"
sed 's/^[0-9TZ:.-]* *//; s/^/   omadm-packagekit: /' "$root/omadm-packagekit.log"
echo "\$ omadmctl tree list"
target/debug/omadmctl tree list | sed 's/^/   /'
echo "\$ omadmctl tree get $fumo/"
target/debug/omadmctl tree get "$fumo/" | sed 's/^/   /'

echo
echo "== 4. A session: the server reads the inventory and updates the webcam"
target/debug/omadmctl session start --wait | sed 's/^/   /'
for _ in $(seq 120); do grep -q "firmwareupdate.downloadandupdate" "$root/server.log" && break; sleep 0.5; done
wait_for "$root/server.log" "firmwareupdate.downloadandupdate" "the FUMO alert"

echo
echo "== 5. What the server saw and sent (the inventory by its size, the alert with its result)"
grep -v '^listening' "$root/server.log" | sed 's/^testserver: /   /; t; s/^/   /'

echo
echo "== 6. The webcam afterwards, as its FUMO instance has it"
echo "\$ omadmctl tree get $fumo/"
target/debug/omadmctl tree get "$fumo/" | sed 's/^/   /'
grep -h "SCOMO inventory written\|FUMO result\|result reported" "$root/omadm-fwupd.log" "$root/omadm-packagekit.log" \
    | sed 's/^[0-9TZ:.-]* *//; s/^/   /' || true
# CI runs this demo: it fails unless the update succeeded and the inventory was read.
grep -q "downloadandupdate from $fumo/DownloadAndUpdate result 200" "$root/server.log" \
    || { echo "demo-handlers: the server did not receive a successful update's alert" >&2; exit 1; }
grep -q "GET result (application/dmmo+json): [0-9]* bytes" "$root/server.log" \
    || { echo "demo-handlers: the server did not receive the inventory" >&2; exit 1; }
echo "== Done."
