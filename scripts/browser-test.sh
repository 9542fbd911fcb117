#!/usr/bin/env bash
# SHOW in a real browser, end to end: omadm-testserver (HTTPS) runs a session whose SHOW
# points at its own consent page with the device's [DevID] in the URL; omadmd, on a
# private system bus, hands the SHOW to omadm-agent; the agent finds no portal and no gio
# handler and launches the page with xdg-open, whose $BROWSER is headless Chromium; the
# "user" (Selenium, scripts/browser/submit.py) finds the page in that browser, checks it
# names this device, and presses "Allow"; the test server records the view and the answer,
# and the device told it 200 for the SHOW. It fails if any link of that chain breaks.
# The browser trusts the test server's CA through its own NSS database, as a user's browser
# must (docs/dbus-api.md: the daemon's http.ca-file does not reach the browser).
# Installs what it needs (chromium, chromium-driver, python3-selenium, libnss3-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Debian's Selenium is a module of Debian's Python, whatever python3 is first in PATH.
/usr/bin/python3 -c 'import selenium' 2>/dev/null || need+=(python3-selenium)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
command -v xdg-open >/dev/null 2>&1 || need+=(xdg-utils)
source scripts/lib.sh
apt_install browser-test "${need[@]}"
cargo build --locked --quiet --workspace --bins

root=$(mktemp -d)
chmod 0755 "$root"
pids=()
cleanup() {
    local status=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # The browser runs under xdg-open, which the agent left running: end it by its profile.
    pkill -f -- "--user-data-dir=$root/chromium" 2>/dev/null || true
    # ... and wait for it: a browser still saving its profile makes the rm below fail.
    for _ in $(seq 100); do
        pgrep -f -- "--user-data-dir=$root/chromium" >/dev/null || break
        sleep 0.1
    done
    if [ "$status" -ne 0 ]; then
        for log in bus.log server.log daemon.log agent.log; do
            [ -s "$root/$log" ] && { echo "--- $log" >&2; tail -n 40 "$root/$log" >&2; }
        done
    fi
    rm -rf "$root"
}
trap cleanup EXIT

echo "== a private system bus, the test server over HTTPS, the daemon"
private_bus "$root"
target/debug/omadm-testserver --tls --ca-out "$root/ca.pem" --script scripts/browser/show.json \
    --record "$root/record.jsonl" -v >"$root/server.log" 2>&1 &
pids+=($!)
wait_for "$root/server.log" "listening on" "the test server's start"
base=$(sed -n 's/^listening on //p' "$root/server.log" | head -n 1)
mkdir -p "$root/etc/omadmd/bootstrap.d"
cat >"$root/etc/omadmd/omadmd.toml" <<TOML
[http]
ca-file = "$root/ca.pem"
[notifications]
listen = "127.0.0.1:0"
TOML
sed "s|{base}|$base|" scripts/browser/bootstrap.json >"$root/etc/omadmd/bootstrap.d/10-browser.json"
chmod 600 "$root/etc/omadmd/bootstrap.d/10-browser.json"
target/debug/omadmd --config-root "$root" >"$root/daemon.log" 2>&1 &
pids+=($!)
wait_for "$root/daemon.log" "session ended" "the BootstrapComplete session"
devid=$(target/debug/omadmctl tree get 'urn:oma:mo:oma-dm-devinfo:1.2//DevID' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["MOData"]["DevID"])')
echo "   $base, device $devid"

echo "== the user's browser: headless Chromium that trusts the server's CA"
home="$root/home"
mkdir -p "$home/.pki/nssdb" "$root/no-apps"
certutil -N -d "sql:$home/.pki/nssdb" --empty-password
certutil -A -d "sql:$home/.pki/nssdb" -t "C,," -n omadm-testserver -i "$root/ca.pem"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sandbox=""
[ "$(id -u)" -ne 0 ] || sandbox="--no-sandbox"  # Chromium refuses root with its sandbox
# The user's browser is not on the test's private bus: that bus stands in for the system bus
# only for omadmd and the agent. Chromium aborts ("D-Bus connection was disconnected") when
# a bus connection it holds drops, which it once did in CI just after the answer; so it gets
# no system bus at all, as in most containers, and the check below that omadmd still answers
# on the bus is what tells a dying bus apart. (xdg-open splits $BROWSER at ':': a script.)
cat >"$root/browser" <<SH
#!/bin/sh
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$root/no-system-bus exec chromium --headless=new $sandbox \
    --no-first-run --remote-debugging-port=$port --user-data-dir=$root/chromium "\$@"
SH
chmod 0755 "$root/browser"
browser="$root/browser %s"

echo "== omadm-agent in a 'desktop' with no portal and no gio handler: xdg-open runs \$BROWSER"
env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY -u WAYLAND_DISPLAY -u XDG_CURRENT_DESKTOP \
    HOME="$home" XDG_DATA_HOME="$root/no-apps" XDG_DATA_DIRS="$root/no-apps" \
    BROWSER="$browser" target/debug/omadm-agent --no-notify >"$root/agent.log" 2>&1 &
pids+=($!)
wait_for "$root/agent.log" "registered with omadmd" "the agent's registration"

echo "== a session whose SHOW the agent opens"
target/debug/omadmctl session start --server browser-test --wait --timeout 60
grep -q "opened a page for .* with xdg-open: $base/ui" "$root/agent.log" \
    || { echo "browser-test: the agent did not open the page with xdg-open" >&2; exit 1; }

echo "== the user reads the page in the browser and presses Allow"
/usr/bin/python3 scripts/browser/submit.py --debugger "127.0.0.1:$port" --page "$base/ui" --device "$devid" --timeout 60

echo "== the bus and the daemon outlived the answer"
target/debug/omadmctl status >/dev/null \
    || { echo "browser-test: omadmd no longer answers on the private bus" >&2; exit 1; }

echo "== what the server recorded"
python3 - "$root/record.jsonl" "$devid" <<'PY'
import json, sys, urllib.parse
records = [json.loads(line) for line in open(sys.argv[1])]
devid = sys.argv[2]
def query_device(r):
    return urllib.parse.parse_qs(r.get("query") or "").get("device", [None])[0]
views = [r for r in records if r["kind"] == "ui-view"]
answers = [r for r in records if r["kind"] == "ui-submit"]
assert [query_device(r) for r in views] == [devid], f"page views: {views}"
assert [(query_device(r), r["form"]) for r in answers] == [(devid, "answer=yes")], f"answers: {answers}"
# The device's answer to the SHOW: the Package#3 that follows the Package#2 carrying it.
show = next(r for r in records if r["kind"] == "package2" and "SHOW" in json.dumps(r["body"]))
status = next(r for r in records if r["kind"] == "package3" and r["session"] == show["session"])
assert [s["sc"] for s in status["body"].get("Status", [])] == [200], f"the device answered the SHOW with {status['body']}"
print(f"   the page was viewed once and answered yes for device {devid}; the device answered the SHOW 200")
PY
echo "browser-test: ok"
