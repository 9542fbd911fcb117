#!/usr/bin/env bash
# The checks scripts/system-test.sh runs inside the booted Debian system (systemd as PID 1,
# the real system bus, polkitd, logind, fwupd, packagekitd), as root, one step at a time:
#   guest.sh install        install the packages with apt, first start, polkit, SHOW,
#                           FUMO and SCOMO through the installed handlers, state to keep
#   guest.sh after-reboot   the state kept, a notification-activated session, dpkg -i ten
#                           times, purge
#   guest.sh upgrade        the earlier version with state, upgraded, the state kept, purge
# A failed check says what failed and prints the journal lines that explain it.
set -euo pipefail
cd /

here=/root/system-test
new=$here/debs/new
old=$here/debs/old
server=http://127.0.0.1:8080
webcam=08d460be0f1f9f128413f816022a6439e0078018
fumo="urn:oma:mo:oma-fumo:1.0/$webcam"
scomo=urn:oma:mo:oma-scomo:1.0/SCOMO
noti_data=c3lzdGVtLXRlc3QtZGF0YQ==       # "system-test-data"
noti_secret=c3lzdGVtLXRlc3Qtc2VjcmV0    # "system-test-secret"
export SYSTEMD_PAGER='' LC_ALL=C.UTF-8

say() { echo "== $*"; }
# ok WHAT: a check passed, unless one of its parts failed (KEEP_GOING) since the last ok.
ok() {
    if [ "${failed_since_ok:-0}" = 1 ]; then failed_since_ok=0; return 0; fi
    echo "   ok: $*"
}
# fail MESSAGE [UNIT...]: the failure, then the units' journal lines since boot. With
# KEEP_GOING=1 (scripts/system-test.sh --keep-going, to see every check an old package
# fails) it counts the failure and goes on.
failures=0
fail() {
    echo "FAILED: $1" >&2
    shift
    (($#)) || set -- omadmd.service omadmd.socket dbus.service polkit.service
    for unit in "$@"; do
        echo "--- journalctl -b -u $unit (last 40 lines)" >&2
        journalctl -b -u "$unit" --no-pager -o short-precise -n 40 >&2 || true
    done
    failures=$((failures + 1))
    failed_since_ok=1
    [ -n "${KEEP_GOING:-}" ] || exit 1
    # Returns 0: `check || fail …` must not end the script under set -e.
}
# wait_until SECS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_until() {
    local secs=$1 what=$2
    shift 2
    for _ in $(seq $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "$what: not within ${secs}s" omadmd.service omadm-fwupd.service omadm-packagekit.service omadm-dm-server.service
}
as() { local user=$1; shift; runuser -u "$user" -- "$@"; }
active() { [ "$(systemctl is-active "$1")" = active ]; }
restarts() { systemctl show -p NRestarts --value "$1"; }
main_pid() { systemctl show -p MainPID --value "$1"; }
tree_value() { omadmctl --json tree get "$1" 2>/dev/null; }
# started_once UNIT: active, never restarted, and its start not refused the bus name.
started_once() {
    active "$1" || fail "$1 is not active after install" "$1" dbus.service
    [ "$(restarts "$1")" = 0 ] || fail "$1 was restarted $(restarts "$1") time(s) after install" "$1" dbus.service
    ! journalctl -b -u "$1" --no-pager | grep -q "not allowed to own\|cannot serve" \
        || fail "$1 was refused its bus name" "$1" dbus.service
    ok "$1 started at the first try (NRestarts 0)"
}
socket_listens() {
    active omadmd.socket || fail "omadmd.socket is $(systemctl is-active omadmd.socket)" omadmd.socket omadmd.service
    grep -q ":0B84 " /proc/net/udp /proc/net/udp6 || fail "nothing listens on UDP 2948" omadmd.socket
    ok "omadmd.socket listens on UDP 2948"
}
# The DM server in this system: the test server as a transient unit, playing SCRIPT.
dm_server() {
    systemctl stop omadm-dm-server.service 2>/dev/null || true
    systemctl reset-failed omadm-dm-server.service 2>/dev/null || true
    rm -f "$here/record.jsonl"
    systemd-run --quiet --unit=omadm-dm-server -p Type=exec /usr/bin/omadm-testserver -v \
        --listen 127.0.0.1:8080 --script "$1" --record "$here/record.jsonl"
    wait_until 20 "the DM server" journalctl -u omadm-dm-server.service --no-pager -g "listening on"
}
server_saw() { journalctl -u omadm-dm-server.service --no-pager -o cat | grep -q "$1"; }
bootstrap_file() { # SRVID URL
    cat <<EOF
[{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//",
  "MOData": {"$1": {"SrvID": "$1", "SrvURI": "$2", "Name": "system test: $1",
    "Perm": {"all": {"MOID": "*"}},
    "Auth": {"Noti": {"Type": 0, "Data": "$noti_data", "Secret": "$noti_secret"}}}}}]
EOF
}
# The state that must outlive a reboot and an upgrade: accounts, a queued alert for a
# server that is not there, and the tree.
kept_state() {
    omadmctl account show test-server >/dev/null || fail "the account test-server is gone"
    omadmctl --json account show down-server | grep -q '"queued":1[,}]' \
        || fail "down-server's queued alert is gone: $(omadmctl --json account show down-server)"
    omadmctl --json tree get 'urn:oma:mo:oma-dm-dmacc:1.2/test-server/Name' | grep -q "system test: test-server" \
        || fail "the tree lost test-server's DMAcc"
    ok "accounts, the queued alert and the tree are there"
}

step_install() {
    say "users: alice (granted omadmd's actions by an administrator's rule), bob (no grant), carol (agent only)"
    id alice >/dev/null 2>&1 || useradd -m alice
    id bob >/dev/null 2>&1 || useradd -m bob
    id carol >/dev/null 2>&1 || useradd -m carol
    getent group omadm-admins >/dev/null || groupadd omadm-admins
    usermod -aG omadm-admins alice
    cat >/etc/polkit-1/rules.d/60-omadm-admins.rules <<'EOF'
// An administrator's rule (docs/security.md): members of omadm-admins may do everything
// omadmd's actions guard, without a password.
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.omadm.Client1.") == 0 && subject.isInGroup("omadm-admins"))
        return polkit.Result.YES;
    return polkit.Result.NOT_HANDLED;
});
// carol, without a seat, may register a SHOW agent: she is no one's choice while someone
// sits at seat0.
polkit.addRule(function(action, subject) {
    if (action.id == "org.omadm.Client1.register-agent" && subject.user == "carol")
        return polkit.Result.YES;
    return polkit.Result.NOT_HANDLED;
});
EOF

    say "apt install ./omadmd_*.deb (a headless device)"
    apt-get install -y -q "$new"/omadmd_*.deb >"$here/apt-omadmd.log" 2>&1 || { cat "$here/apt-omadmd.log"; fail "apt install omadmd"; }
    started_once omadmd.service
    socket_listens
    local daemon_pid
    daemon_pid=$(main_pid omadmd.service)
    [ "$(stat -c '%U:%G %a' /etc/omadmd/bootstrap.d)" = "root:omadmd 2750" ] \
        || fail "bootstrap.d is $(stat -c '%U:%G %a' /etc/omadmd/bootstrap.d), not root:omadmd 2750"
    ok "bootstrap.d is root:omadmd 2750"

    say "apt install the test server, the agent and both handlers (omadmd keeps running)"
    apt-get install -y -q "$new"/omadm-testserver_*.deb "$new"/omadm-agent_*.deb \
        "$new"/omadm-fwupd_*.deb "$new"/omadm-packagekit_*.deb >"$here/apt-rest.log" 2>&1 \
        || { cat "$here/apt-rest.log"; fail "apt install the other packages"; }
    started_once omadm-fwupd.service
    started_once omadm-packagekit.service
    [ "$(main_pid omadmd.service)" = "$daemon_pid" ] || fail "omadmd was restarted by the handlers' install"
    # The handlers' MO definitions reached the running daemon: they wrote their MOs.
    wait_until 60 "omadm-fwupd's FUMO instance of fwupd's test webcam" \
        sh -c "omadmctl --json tree get '$fumo/PkgVersion' | grep -q 1.2.2"
    ok "omadm-fwupd registered as its own user and wrote $fumo (no omadmd restart)"
    wait_until 120 "omadm-packagekit's SCOMO inventory" \
        sh -c "omadmctl --json tree get '$scomo/Inventory/Deployed/dpkg/Version' | grep -q '\"'"
    ok "omadm-packagekit registered as its own user and wrote the SCOMO inventory"
    # Each program logs under its own name.
    journalctl -b -t omadm-fwupd --no-pager -o cat | grep -q . || fail "nothing logged as omadm-fwupd" omadm-fwupd.service
    journalctl -b -t omadm-packagekit --no-pager -o cat | grep -q . || fail "nothing logged as omadm-packagekit" omadm-packagekit.service
    ! journalctl -b -t omadmd _SYSTEMD_UNIT=omadm-fwupd.service --no-pager -o cat | grep -q . \
        || fail "omadm-fwupd logs as omadmd" omadm-fwupd.service
    ! journalctl -b -t omadmd _SYSTEMD_UNIT=omadm-packagekit.service --no-pager -o cat | grep -q . \
        || fail "omadm-packagekit logs as omadmd" omadm-packagekit.service
    ok "journalctl -t omadmd, -t omadm-fwupd and -t omadm-packagekit each show their own program"

    say "the DM server, and a SCOMO package for it to install"
    mkdir -p "$here/pkg/DEBIAN" "$here/pkg/usr/share/doc/omadm-system-test"
    printf 'Package: omadm-system-test\nVersion: 1.0\nArchitecture: all\nMaintainer: omadmd tests <omadmd@lists.example.org>\nDescription: a package the system test installs through SCOMO\n' \
        >"$here/pkg/DEBIAN/control"
    echo test >"$here/pkg/usr/share/doc/omadm-system-test/README"
    dpkg-deb --root-owner-group --build "$here/pkg" "$here/omadm-system-test_1.0_all.deb" >/dev/null
    local download="$scomo/Download/st"
    cat >"$here/script.json" <<EOF
{
  "played_at": "/dm",
  "sessions": [
    {"packages": [{"CMD": [["END"]]}]},
    {"packages": [
      {"CMD": [
        ["SHOW", "https://ui.example/system-test"],
        ["HGET", "{base}/repo/pkgurl", "$fumo/DownloadAndUpdate/PkgURL"],
        ["EXEC", "$fumo/DownloadAndUpdate", "{base}/dm/fumo"],
        ["HGET", "{base}/repo/st", "$download"],
        ["EXEC", "$download/Operations/DownloadInstall", "{base}/dm/scomo"]
      ]},
      {"expect": [200, 200, 202, 200, 202], "CMD": [["END"]]}
    ]}
  ],
  "repository": {
    "/repo/pkgurl": {"content_type": "text/plain", "body": "{base}/repo/fakedevice124.cab"},
    "/repo/fakedevice124.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": "/usr/share/installed-tests/fwupd/fakedevice124.cab"},
    "/repo/st": {"content_type": "application/dmmo+json", "body": "[{\"ClientURI\": \"$download\", \"MOData\": {\"st\": {\"PkgID\": \"pkg-st\", \"Name\": \"omadm-system-test\", \"PkgURL\": \"{base}/repo/omadm-system-test_1.0_all.deb\"}}}]"},
    "/repo/omadm-system-test_1.0_all.deb": {"content_type": "application/vnd.debian.binary-package", "file": "$here/omadm-system-test_1.0_all.deb"}
  }
}
EOF
    dm_server "$here/script.json"

    say "bootstrap as docs/bootstrap.md says: install -m 0640 into bootstrap.d, reload"
    bootstrap_file test-server "$server/dm" >"$here/test-server.json"
    install -m 0640 "$here/test-server.json" /etc/omadmd/bootstrap.d/10-test-server.json
    bootstrap_file down-server "http://127.0.0.2:9/dm" >"$here/down-server.json"
    install -m 0640 "$here/down-server.json" /etc/omadmd/bootstrap.d/20-down-server.json
    omadmd check-config >/dev/null || fail "omadmd check-config refuses the documented files"
    systemctl reload omadmd.service || fail "systemctl reload omadmd"
    omadmctl account show test-server >/dev/null || fail "the bootstrap file was not applied"
    wait_until 30 "the BootstrapComplete session" server_saw "session 0: Package#2"
    ok "the account was provisioned from bootstrap.d and its BootstrapComplete session ran"
    # A file only root can read: check-config says so before the daemon refuses it.
    bootstrap_file root-only-server "$server/dm" >"$here/root-only.json"
    install -m 0600 "$here/root-only.json" /etc/omadmd/bootstrap.d/30-root-only.json
    local out code=0
    out=$(omadmd check-config 2>&1) || code=$?
    [ "$code" = 78 ] && grep -q "30-root-only.json.*omadmd, the daemon's user, cannot read it" <<<"$out" \
        || fail "check-config did not flag a file the daemon cannot read (exit $code): $out"
    systemctl reload omadmd.service || true
    omadmctl status | grep -q "30-root-only.json.*Permission denied" \
        || fail "the daemon does not say it cannot read 30-root-only.json: $(omadmctl status)"
    rm /etc/omadmd/bootstrap.d/30-root-only.json
    ok "a file the daemon's user cannot read is flagged by check-config (78) and by the daemon"

    say "SHOW agents: alice in a logind session on seat0; carol and bob in sessions without a seat"
    rm -f /var/tmp/omadm-shown.*
    cat >/usr/local/bin/omadm-test-browser <<'EOF'
#!/bin/sh
# The "browser" of the system test's users: writes down who was shown what.
echo "$1" >"/var/tmp/omadm-shown.$(id -un)"
EOF
    chmod 0755 /usr/local/bin/omadm-test-browser
    systemd-run --quiet --unit=alice-session -p PAMName=login --uid=alice \
        -E XDG_SEAT=seat0 -E XDG_SESSION_TYPE=tty -E XDG_SESSION_CLASS=user \
        -E BROWSER=/usr/local/bin/omadm-test-browser /usr/bin/omadm-agent
    local u
    for u in carol bob; do
        systemd-run --quiet --unit=$u-session -p PAMName=login --uid=$u \
            -E XDG_SESSION_TYPE=tty -E XDG_SESSION_CLASS=user \
            -E BROWSER=/usr/local/bin/omadm-test-browser /usr/bin/omadm-agent
    done
    wait_until 20 "alice's session on seat0" sh -c "loginctl list-sessions --no-legend | grep -q 'alice *seat0'"
    wait_until 20 "both agents registered" sh -c "omadmctl --json status | grep -q '\"agents\":2'"
    wait_until 20 "bob's agent refused (no seat, so not a local session for polkit)" \
        sh -c "journalctl -b _UID=$(id -u bob) -o cat | grep -q 'refused this agent.*polkit does not allow uid $(id -u bob) registering a SHOW agent'"
    ok "alice's and carol's agents registered, bob's refused: $(loginctl list-sessions --no-legend | awk '{print $3 "@" ($4 ~ /seat/ ? $4 : "no-seat")}' | xargs)"

    say "a session: SHOW, FUMO DownloadAndUpdate of fwupd's webcam, SCOMO DownloadInstall"
    omadmctl session start --server test-server --wait || fail "the session did not end well" omadmd.service omadm-dm-server.service
    wait_until 30 "the page shown to alice" test -s /var/tmp/omadm-shown.alice
    grep -q "https://ui.example/system-test" /var/tmp/omadm-shown.alice || fail "alice was shown $(cat /var/tmp/omadm-shown.alice)"
    [ ! -e /var/tmp/omadm-shown.carol ] || fail "carol, not at seat0, was shown the page" omadmd.service carol-session.service
    ok "the page went to alice's agent on seat0, not to carol's"
    wait_until 120 "the FUMO result alert" server_saw "downloadandupdate from $fumo/DownloadAndUpdate result 200"
    fwupdmgr get-devices --no-unreported-check 2>/dev/null | grep -A4 "Fake webcam" | grep -q "1.2.4" \
        || fail "fwupd's webcam is not at 1.2.4" omadm-fwupd.service fwupd.service
    ok "omadm-fwupd updated the webcam 1.2.2 -> 1.2.4 through fwupd; the server got result 200"
    wait_until 180 "the SCOMO result alert" server_saw "OperationComplete.*result 1200"
    dpkg -s omadm-system-test 2>/dev/null | grep -q "^Status: install ok installed" \
        || fail "omadm-system-test is not installed" omadm-packagekit.service packagekit.service
    ok "omadm-packagekit installed a package through PackageKit; the server got result 1200"

    say "a compromised handler stays in its MO: as omadm-fwupd, whom polkit lets register"
    local moid out
    for moid in urn:oma:mo:oma-dm-dmacc:1.2 urn:oma:mo:oma-dm-dacmo:1.0 urn:oma:mo:oma-dm-devinfo:1.2 urn:example:mo:other:1.0; do
        out=$(as omadm-fwupd dbus-send --system --print-reply --dest=org.omadm.Client1 /org/omadm/Client1 \
            org.omadm.Client1.Manager.RegisterExecHandler "string:$moid" objpath:/x 2>&1 || true)
        grep -q "^Error org.omadm.Client1.Error.AccessDenied: .*$moid" <<<"$out" \
            || fail "omadm-fwupd registering for $moid: $out"
    done
    journalctl -b -t omadmd -o cat | grep -q "EXEC handler registration refused" || fail "no log line for the refusals"
    ok "omadm-fwupd's user is refused DMAcc, DACMO, DevInfo and a MO its definition does not name"

    # After the scripted session: alice's sessions here get END.
    say "polkit decides for other users, action by action (alice: granted by a rule; bob: not)"
    polkit_matrix

    say "state to keep: an alert queued for a server that is not there"
    omadmctl alert send --server down-server --type org.example.system-test.kept >/dev/null \
        || fail "queuing an alert"
    wait_until 30 "the queued alert" sh -c "omadmctl --json account show down-server | grep -q '\"queued\":1[,}]'"
    kept_state
    systemctl stop alice-session.service bob-session.service carol-session.service || true
}

# Each polkit action, through omadmctl (or dbus-send), as alice and as bob.
polkit_matrix() {
    local action args
    # An administrator's handler definition lets alice handle a MO of her own: polkit lets
    # her register at all, the definition says for what (docs/security.md).
    mkdir -p /etc/omadmd/handlers
    printf 'user = "alice"\nmoids = ["urn:example:mo:system-test:1.0"]\n' >/etc/omadmd/handlers/alice.toml
    systemctl reload omadmd.service
    bootstrap_file added-server "$server/dm" >/tmp/add.json
    chmod 0644 /tmp/add.json
    while IFS='|' read -r action want args; do
        [ -n "$action" ] || continue
        local code=0 out
        # shellcheck disable=SC2086
        out=$(as bob timeout 10 $args 2>&1) || code=$?
        # omadmctl exits 4 for AccessDenied; dbus-send prints the error's name.
        { [ "$code" = 4 ] || grep -q "^Error org.omadm.Client1.Error.AccessDenied" <<<"$out"; } \
            || fail "bob: $args for $action: exit $code, not AccessDenied: $out"
        # Alice gets past polkit: the action is carried out, or refused for what it asks
        # (never with 4). The agent runs until timeout ends it (124).
        code=0
        # shellcheck disable=SC2086
        out=$(as alice timeout 5 $args 2>&1) || code=$?
        [ "$code" = "$want" ] || fail "alice: $args for $action: exit $code, not $want: $out"
        ok "org.omadm.Client1.$action: alice allowed (exit $code), bob refused with AccessDenied"
    done <<EOF
start-session|0|omadmctl session start --server test-server
queue-alert|0|omadmctl alert send --server test-server --type org.example.system-test
inject-notification|0|omadmctl notify --server test-server --notification-id 9 --secret $noti_secret --auth-data $noti_data
register-handler|0|dbus-send --system --print-reply --dest=org.omadm.Client1 /org/omadm/Client1 org.omadm.Client1.Manager.RegisterExecHandler string:urn:example:mo:system-test:1.0 objpath:/x
register-agent|124|omadmctl agent --decline
request-configuration|0|omadmctl tree configure urn:oma:mo:oma-dm-devinfo:1.2
cancel-session|1|omadmctl session cancel --server down-server
manage-accounts|0|omadmctl account add --dry-run /tmp/add.json
reload|0|omadmctl reload
EOF
    # The terminal agent's registration went with it; the desktop agents stay.
    wait_until 10 "alice's terminal agent gone" sh -c "omadmctl --json status | grep -q '\"agents\":2'"
}

step_after_reboot() {
    say "after the reboot"
    started_once omadmd.service
    socket_listens
    started_once omadm-fwupd.service
    kept_state
    # PkgVersion follows what fwupd reports, and fwupd's test webcam starts at 1.2.2 again
    # with every fwupd: the instance is there, with what fwupd says now.
    omadmctl --json tree get "$fumo/PkgVersion" | grep -q '"1\.2\.' || fail "the webcam's FUMO instance is gone"

    say "a DM Notification wakes the stopped daemon through omadmd.socket"
    cat >"$here/script2.json" <<'EOF'
{"played_at": "/dm", "sessions": []}
EOF
    dm_server "$here/script2.json"
    systemctl stop omadmd.service
    active omadmd.socket || fail "stopping the service took the socket with it"
    omadm-testserver --notify 127.0.0.1:2948 --server-id test-server --notification-id 4242 \
        --secret "$noti_secret" --auth-data "$noti_data" >/dev/null
    wait_until 30 "omadmd started by the datagram" active omadmd.service
    wait_until 30 "the notification's session" grep -q 'ServerInitiatedMgmt' "$here/record.jsonl"
    ok "the datagram started omadmd.service, which ran a session with test-server"

    say "dpkg -i over itself ten times while a client calls omadmd and notifications arrive; the socket still listens"
    # A client calling org.omadm.Client1 (a monitor, Cockpit, a handler) starts the daemon
    # through D-Bus activation whenever it is stopped: what races a package's restart.
    # So does a notification arriving on the socket: one every round too.
    (n=1; while :; do
        omadmctl status >/dev/null 2>&1
        omadm-testserver --notify 127.0.0.1:2948 --server-id nobody-here --notification-id $((n++ % 60000)) >/dev/null 2>&1
        sleep 0.05
    done) &
    local poller=$!
    for i in $(seq 10); do
        dpkg -i "$new"/omadmd_*.deb >"$here/dpkg-$i.log" 2>&1 || { cat "$here/dpkg-$i.log"; fail "dpkg -i, round $i"; }
        active omadmd.socket || fail "omadmd.socket is $(systemctl is-active omadmd.socket) after reinstall $i" omadmd.socket omadmd.service
        # The daemon runs the binary installed now, not one the reinstall replaced.
        local exe
        exe=$(readlink "/proc/$(main_pid omadmd.service)/exe" || true)
        [ "$exe" = /usr/sbin/omadmd ] || fail "after reinstall $i omadmd runs ${exe:-nothing}" omadmd.service
    done
    kill "$poller"
    wait "$poller" 2>/dev/null || true
    socket_listens
    active omadmd.service || fail "omadmd.service is not running after ten reinstalls"
    ok "ten reinstalls: omadmd.socket listening, omadmd.service running the installed binary"
    kept_state
    purge_all
}

purge_all() {
    say "purge"
    local installed
    installed=$(dpkg-query -W -f '${Package} ${db:Status-Status}\n' 'omadm*' 2>/dev/null | awk '$2 == "installed" && $1 != "omadm-system-test" {print $1}')
    # shellcheck disable=SC2086
    apt-get purge -y -q $installed >"$here/purge.log" 2>&1 || { cat "$here/purge.log"; fail "apt purge $installed"; }
    local f
    for f in /usr/sbin/omadmd /usr/bin/omadmctl /lib/systemd/system/omadmd.service /lib/systemd/system/omadmd.socket \
        /usr/share/dbus-1/system.d/org.omadm.Client1.conf /usr/share/polkit-1/actions/org.omadm.Client1.policy \
        /var/lib/omadmd /var/lib/omadm-fwupd /usr/libexec/omadm-fwupd /usr/libexec/omadm-packagekit \
        /etc/systemd/system/multi-user.target.wants/omadmd.service /etc/systemd/system/sockets.target.wants/omadmd.socket; do
        [ ! -e "$f" ] || fail "left behind after purge: $f"
    done
    ! grep -q ":0B84 " /proc/net/udp /proc/net/udp6 || fail "something still listens on UDP 2948"
    ok "purged: nothing left, nothing listening"
}

step_upgrade() {
    say "the earlier version, with state"
    apt-get install -y -q "$old"/omadmd_*.deb "$old"/omadm-fwupd_*.deb >"$here/apt-old.log" 2>&1 \
        || { cat "$here/apt-old.log"; fail "apt install the earlier version"; }
    local was
    was=$(dpkg-query -W -f '${Version}' omadmd)
    install -m 0640 "$here/test-server.json" /etc/omadmd/bootstrap.d/10-test-server.json
    install -m 0640 "$here/down-server.json" /etc/omadmd/bootstrap.d/20-down-server.json
    systemctl reload omadmd.service
    omadmctl alert send --server down-server --type org.example.system-test.kept >/dev/null
    wait_until 30 "the queued alert" sh -c "omadmctl --json account show down-server | grep -q '\"queued\":1[,}]'"
    wait_until 60 "omadm-fwupd's FUMO instance" sh -c "omadmctl --json tree get '$fumo/PkgVersion' | grep -q 1.2"
    kept_state

    say "apt upgrade to this version"
    apt-get install -y -q "$new"/omadmd_*.deb "$new"/omadm-fwupd_*.deb >"$here/apt-upgrade.log" 2>&1 \
        || { cat "$here/apt-upgrade.log"; fail "apt upgrade"; }
    local now
    now=$(dpkg-query -W -f '${Version}' omadmd)
    [ "$now" != "$was" ] || fail "the upgrade left omadmd at $was"
    active omadmd.service || fail "omadmd is not running after the upgrade"
    socket_listens
    kept_state
    omadmctl --json tree get "$fumo/PkgVersion" | grep -q 1.2 || fail "the FUMO instance is gone after the upgrade"
    ok "upgraded $was -> $now: accounts, queued alert and tree kept, socket listening"
    purge_all
}

case "${1:-}" in
    install) step_install ;;
    after-reboot) step_after_reboot ;;
    upgrade) step_upgrade ;;
    *) echo "usage: $0 install|after-reboot|upgrade" >&2; exit 2 ;;
esac
[ "$failures" = 0 ] || { echo "== step $1: $failures check(s) FAILED"; exit 1; }
echo "== step $1: passed"
