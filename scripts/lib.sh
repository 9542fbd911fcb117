# Shell helpers the scripts share (sourced, not run).

# apt_install WHO PACKAGE...: installs Debian packages, through sudo when not root.
apt_install() {
    local who=$1; shift
    (($#)) || return 0
    echo "$who: installing $*" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wait_for FILE PATTERN WHAT: waits up to 30 s for PATTERN in FILE; otherwise says WHAT
# did not come up, shows the file, and exits 1.
wait_for() {
    for _ in $(seq 300); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$3 did not come up; its output:" >&2
    cat "$1" >&2
    exit 1
}

# private_bus DIR: starts a private D-Bus system bus (the demo's configuration), adds its
# pid to the caller's `pids` array, and exports its address as DBUS_SYSTEM_BUS_ADDRESS.
# The bus logs to DIR/bus.log (why it refused or dropped a connection).
private_bus() {
    dbus-daemon --nofork --print-address=1 --config-file=examples/demo/private-bus.conf >"$1/bus.addr" 2>"$1/bus.log" &
    pids+=($!)
    wait_for "$1/bus.addr" "unix:" "the private bus"
    DBUS_SYSTEM_BUS_ADDRESS=$(head -n 1 "$1/bus.addr")
    export DBUS_SYSTEM_BUS_ADDRESS
}
