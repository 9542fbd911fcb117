#!/usr/bin/env bash
# The omadmd demo: starts omadm-testserver (a scripted DM 2.0 server and Data Repository)
# and omadmd on scratch directories, lets them play one DM session (the server reads
# DevInfo, creates an MO with HGET, reads it back, has the device HPOST a value, ends),
# wakes the device with a DM Notification for a second session, shows both sides, then the
# tree and the session history the device kept.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --quiet --workspace --bins

root=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$root"
}
trap cleanup EXIT

source scripts/lib.sh

echo "== 0. A private D-Bus system bus for the demo (the real one needs root)"
private_bus "$root"
echo "   $DBUS_SYSTEM_BUS_ADDRESS"

echo "== 1. omadm-testserver starts with examples/demo/script.json"
target/debug/omadm-testserver --script examples/demo/script.json --record "$root/server-record.jsonl" -v \
    > "$root/server.log" 2>&1 &
pids+=($!)
wait_for "$root/server.log" "listening on" "omadm-testserver"
base=$(sed -n 's/^listening on //p' "$root/server.log" | head -n 1)
echo "   listening on $base"

echo "== 2. omadmd starts on $root, bootstrapped with an account for that server"
mkdir -p "$root/etc/omadmd/bootstrap.d"
cp examples/demo/omadmd.toml "$root/etc/omadmd/omadmd.toml"
sed "s|{base}|$base|" examples/demo/bootstrap.d/10-demo-server.json > "$root/etc/omadmd/bootstrap.d/10-demo-server.json"
# Bootstrap files hold credentials: owner-only, as on a real device.
chmod 600 "$root/etc/omadmd/bootstrap.d/10-demo-server.json"
omadmd=(target/debug/omadmd --config-root "$root")
"${omadmd[@]}" > "$root/daemon.log" 2>&1 &
pids+=($!)
wait_for "$root/daemon.log" "session ended\|session aborted" "the session"
sed 's/^[0-9TZ:.-]* *//' "$root/daemon.log"

echo
echo "== 3. A user's SHOW agent registers (omadmctl agent), then the server wakes the device"
echo "      with a DM Notification (Package#0 over UDP) for a session that asks the user"
target/debug/omadmctl agent > "$root/agent.log" 2>&1 &
pids+=($!)
wait_for "$root/agent.log" "agent registered" "omadmctl agent"
notify_addr=$(sed -n 's/.*listening for notifications address=\([^ ]*\).*/\1/p' "$root/daemon.log" | head -n 1)
target/debug/omadm-testserver --notify "$notify_addr" --server-id demo-server --notification-id 1 \
    --secret ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0 --auth-data ZGVtby1hdXRoLWRhdGE= --wap | sed 's/^/   /'
for _ in $(seq 300); do
    [ "$(grep -c 'session ended\|session aborted' "$root/daemon.log")" -ge 2 ] && break
    sleep 0.1
done
grep 'notification accepted\|session{id=2' "$root/daemon.log" | sed 's/^[0-9TZ:.-]* *//'
echo "   the agent printed:"
sed 's/^/     /' "$root/agent.log"

echo
echo "== 4. What the server saw and sent"
sed 's/^testserver: /   /' "$root/server.log" | grep -v '^listening'

echo
echo "== 5. The device's tree afterwards: omadmd dump-tree"
"${omadmd[@]}" dump-tree

echo
echo "== 6. Asking the running daemon over D-Bus: omadmctl"
echo "\$ omadmctl status"
target/debug/omadmctl status
echo "\$ omadmctl session start --wait"
target/debug/omadmctl session start --wait
echo "\$ omadmctl history"
target/debug/omadmctl history

echo
echo "== 7. Stopping omadmd with SIGTERM"
kill -TERM "${pids[2]}"
wait "${pids[2]}" || true
echo "== Done. The server's record of every package is JSON lines (omadm-testserver --record)."
