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
