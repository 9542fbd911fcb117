#!/usr/bin/env bash
# Runs omadmd in the foreground on a scratch directory with the demo configuration and
# factory bootstrap (examples/demo/), shows the management tree it built, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --quiet --bins

root=$(mktemp -d)
pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT

mkdir -p "$root/etc/omadmd/bootstrap.d"
cp examples/demo/omadmd.toml "$root/etc/omadmd/omadmd.toml"
# Bootstrap files hold credentials: owner-only, as on a real device.
install -m 600 examples/demo/bootstrap.d/*.json "$root/etc/omadmd/bootstrap.d/"
omadmd=(target/debug/omadmd --config-root "$root")

echo "== omadmd starts on $root (every system path below it)"
"${omadmd[@]}" 2> >(tee "$root/daemon.log" >&2) &
pid=$!
for _ in $(seq 300); do
    grep -q ' ready ' "$root/daemon.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "omadmd exited; see the log above" >&2; exit 1; }
    sleep 0.1
done
grep -q ' ready ' "$root/daemon.log" || { echo "omadmd did not get ready" >&2; exit 1; }

echo
echo "== The management tree it built: omadmd dump-tree"
"${omadmd[@]}" dump-tree
echo
echo "== Stopping it with SIGTERM"
kill -TERM "$pid"
wait "$pid"
pid=""
echo "== Done. Next: 'omadmd dump-tree --json' prints the same as application/dmmo+json."
