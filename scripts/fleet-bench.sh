#!/usr/bin/env bash
# The fleet benchmark of docs/performance.md: omadm-fleetsim's devices (10,000 by default)
# against omadm-testserver on loopback, in four runs and two small ones:
#
#   outage-jitter     the server is down (503, Retry-After) for a while; devices as shipped
#   outage-nojitter   the same outage without Retry-After, devices with sessions.jitter off
#   campaign-spread   every device notified at once, START-WITHIN spreading the sessions
#   campaign-at-once  the same campaign without it
#   cost-poll         what a bootstrap session and an empty poll cost the server
#   cost-inventory    what a session that reads DevInfo and DevDetail costs it
#   cost-basic        what an empty poll costs with HTTP Basic authentication
#
# Times are divided by SCALE (10): a 10-minute poll is 60 s here, a 15-minute outage 90 s,
# and the report and plots say so. Each run writes NAME.txt (the summary), NAME.json,
# NAME.svg and NAME.figures.txt (scripts/fleet-figures.py) into OUT.
#
#   scripts/fleet-bench.sh [OUT]        DEVICES=10000 SHARDS=4 SCALE=10 ONLY="outage-jitter ..."
#
# One process cannot hold 10,000 devices open where the hard limit of file descriptors is
# 20,000 (each device keeps six): the fleet runs as SHARDS processes (--shard K/N), and
# their counts are merged (--merge). Trees go to /dev/shm when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/fleet-bench}
devices=${DEVICES:-10000}
shards=${SHARDS:-4}
scale=${SCALE:-10}
only=${ONLY:-outage-jitter outage-nojitter campaign-spread campaign-at-once cost-poll cost-inventory cost-basic}
# Every interval is whole seconds after the division: omadmd's 30 s retry base is the
# smallest, so 30 is the largest scale.
if ! [[ $scale =~ ^[0-9]+$ ]] || ((scale < 1 || scale > 30)); then
    echo "SCALE must be a whole number from 1 to 30" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
scratch=/dev/shm
[ -d "$scratch" ] && [ -w "$scratch" ] || scratch=${TMPDIR:-/tmp}

cargo build --release -q -p omadm-fleetsim -p omadm-testserver
sim=$PWD/target/release/omadm-fleetsim
server=$PWD/target/release/omadm-testserver

# Seconds of the modelled fleet, as seconds of the run.
s() { echo $(($1 / scale)); }
poll=$(s 600)          # polls every 10 minutes
retry_base=$(s 30)     # omadmd's default first retry, 30 s
retry_max=$(s 3600)    # and longest wait, an hour
outage_at=$(s 1500)    # the server goes down 25 minutes in
outage_for=$(s 900)    # for 15 minutes
retry_after=$(s 300)   # asking devices to come back in 5 minutes
duration=$((outage_at + outage_for + 3 * poll))
alerts_at=$((outage_at + outage_for / 4))
campaign_at=$(s 900)   # the campaign 15 minutes in
within=$(s 600)        # spread over 10 minutes

# What runs now (the server and the parts of the current run), stopped on any exit.
pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; true; }
trap cleanup EXIT

# run NAME SERVER_SCRIPT SCENARIO [DEVICES SHARDS]: one run, its shards side by side.
run() {
    local name=$1 script=$2 scenario=$3 n=${4:-$devices} k=${5:-$shards}
    echo "$name: $n devices in $k part(s)" >&2
    echo "$script" >"$out/$name.server.json"
    echo "$scenario" >"$out/$name.scenario.json"
    rm -f "$out/$name.record.jsonl" "$out/$name".part*.json
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$server" --listen "127.0.0.1:$port" --script "$out/$name.server.json" \
        --record "$out/$name.record.jsonl" >"$out/$name.server.log" 2>&1 &
    local srv=$!
    pids=("$srv")
    for _ in $(seq 100); do
        grep -q listening "$out/$name.server.log" && break
        sleep 0.1
    done
    grep -q listening "$out/$name.server.log" || {
        echo "$name: the test server did not start:" >&2
        cat "$out/$name.server.log" >&2
        exit 1
    }
    local parts=() part_pids=()
    for i in $(seq "$k"); do
        "$sim" --scenario "$out/$name.scenario.json" --server "http://127.0.0.1:$port" \
            --scratch "$scratch" --shard "$i/$k" --counted "$out/$name.part$i.json" \
            >"$out/$name.part$i.txt" 2>&1 &
        part_pids+=($!)
        pids+=($!)
        parts+=("$out/$name.part$i.json")
    done
    for p in "${part_pids[@]}"; do
        wait "$p" || { echo "$name: a part failed:" >&2; cat "$out/$name".part*.txt >&2; exit 1; }
    done
    kill "$srv"
    wait "$srv" 2>/dev/null || true
    pids=()
    "$sim" --scenario "$out/$name.scenario.json" --merge "${parts[@]}" \
        --server-record "$out/$name.record.jsonl" --json "$out/$name.json" \
        --plot "$out/$name.svg" | tee "$out/$name.txt"
    # The figures docs/performance.md quotes; the fleet's own start-up is not steady.
    python3 scripts/fleet-figures.py "$out/$name.json" $((poll + 10)) >"$out/$name.figures.txt"
    # The record of 10,000 devices' sessions is large, and its job is done.
    gzip -f "$out/$name.record.jsonl"
}

end='{"packages": [{"CMD": [["END"]]}]}'
inventory='{"packages": [{"CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//"], ["GET", "urn:oma:mo:oma-dm-devdetail:1.0//"]]}, {"CMD": [["END"]]}]}'
account='"account": {"srv_uri": "{server}/dm"}'
sessions="\"sessions\": {\"poll_interval_secs\": $poll, \"retry_base_secs\": $retry_base, \"retry_max_secs\": $retry_max}"

outage() { # NAME RETRY_AFTER_JSON CONFIG TITLE
    run "$1" \
        "{\"fleet\": true, \"sessions\": [$end], \"outages\": [{\"after_secs\": $outage_at, \"for_secs\": $outage_for, \"retry_after\": $2}]}" \
        "{\"devices\": $devices, \"duration_secs\": $duration, \"start_spread_secs\": $poll, $account, $sessions,
          \"alerts\": [{\"at_secs\": $alerts_at, \"share\": 0.2, \"over_secs\": $((outage_for / 2))}],
          \"config\": \"$3\", \"time_scale\": $scale, \"title\": \"$4\"}"
}

campaign() { # NAME START_WITHIN_JSON TITLE
    run "$1" "{\"fleet\": true, \"sessions\": [$end]}" \
        "{\"devices\": $devices, \"duration_secs\": $((campaign_at + within + poll / 2)), \"start_spread_secs\": $poll, $account,
          \"notifications\": [{\"at_secs\": $campaign_at, \"share\": 1.0, \"start_within_secs\": $2}],
          \"time_scale\": $scale, \"title\": \"$3\"}"
}

for what in $only; do
    case $what in
    outage-jitter) outage "$what" "\"$retry_after\"" "" \
        "$devices devices, 10 min polls, a 15 min outage: jitter and Retry-After on" ;;
    outage-nojitter) outage "$what" null '[sessions]\njitter = false\n' \
        "$devices devices, 10 min polls, a 15 min outage: no jitter, no Retry-After" ;;
    campaign-spread) campaign "$what" "$within" \
        "$devices devices notified at once, START-WITHIN 10 min" ;;
    campaign-at-once) campaign "$what" null \
        "$devices devices notified at once, no spreading" ;;
    cost-poll) run "$what" "{\"fleet\": true, \"sessions\": [$end]}" \
        "{\"devices\": 200, \"duration_secs\": 30, \"start_spread_secs\": 5, $account,
          \"sessions\": {\"poll_interval_secs\": 5}}" 200 1 ;;
    cost-inventory) run "$what" "{\"fleet\": true, \"sessions\": [$end$(for _ in $(seq 10); do printf ', %s' "$inventory"; done)]}" \
        "{\"devices\": 200, \"duration_secs\": 30, \"start_spread_secs\": 5, $account,
          \"sessions\": {\"poll_interval_secs\": 5}}" 200 1 ;;
    cost-basic) run "$what" "{\"fleet\": true, \"sessions\": [$end], \"auth\": {\"scheme\": \"basic\", \"user\": \"fleet\", \"password\": \"fleet-pw\"}}" \
        "{\"devices\": 200, \"duration_secs\": 30, \"start_spread_secs\": 5,
          \"account\": {\"srv_uri\": \"{server}/dm\", \"http_user\": \"fleet\", \"http_password\": \"fleet-pw\"},
          \"sessions\": {\"poll_interval_secs\": 5}, \"config\": \"[http]\\nallow-insecure-auth = true\\n\"}" 200 1 ;;
    *) echo "unknown run $what" >&2; exit 2 ;;
    esac
done
echo "results in $out" >&2
