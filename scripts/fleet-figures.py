#!/usr/bin/env python3
"""The figures docs/performance.md quotes, from an omadm-fleetsim JSON report.

    scripts/fleet-figures.py REPORT.json [WARM_UP_SECS]

Rates are counted per modelled minute: bins of 60 / time_scale seconds of the run (6 s at
time scale 10). Steady: the bins from when every device was ready plus one poll interval
(the fleet's start-up burst is over; WARM_UP_SECS, when given, may start it later) to the
first busy answer. After: the bins from the last busy answer to the end of the run. A
report whose steady window is empty, or whose devices never all got ready, is refused
(exit status 2): a ratio to a start-up burst would mean nothing.
"""

import json
import math
import sys


def refuse(why: str) -> None:
    print(f"fleet-figures: {why}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    report = json.load(open(sys.argv[1]))
    warm = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    scale = report["time_scale"]
    width = max(1, round(60 / scale))
    seconds = report["seconds"]
    requests = [s["requests"] for s in seconds]
    ready = report["all_ready_secs"]
    poll = report.get("poll_interval_secs", 0)

    def bins(start: int, end: int) -> list:
        return [sum(requests[i:i + width]) for i in range(start, end - width + 1, width)]

    print(f"{report['devices']} devices, {len(seconds)} s at time scale {scale}; "
          f"rates per {width} s of the run (one modelled minute)")
    pace = report.get("pace", {})
    if pace.get("cpu_bound"):
        print(f"WARNING: the fleet was short of CPU ({pace['late_starts']} devices started late, "
              f"up to {pace['start_late_max_secs']:.1f} s; {pace['late_answers']} answers waited "
              f"for their device, up to {pace['answer_wait_max_secs']:.1f} s): the counts are the "
              "server's, but the devices ran slower than the fleet they stand for")
    busy = [i for i, s in enumerate(seconds) if s["busy"] > 0]
    if busy:
        first, last = busy[0], busy[-1]
        if ready is None:
            refuse("not every device got ready: there is no steady state to compare with")
        start = max(warm, math.ceil(ready + poll))
        steady = bins(start, first)
        if not steady:
            refuse(f"the steady window is empty: every device was ready at {ready:.1f} s, and "
                   f"one poll interval ({poll} s) later is {ready + poll:.1f} s, but the server "
                   f"was busy from {first} s; a bin is {width} s. Start the fleet faster "
                   "(all_ready_secs; docs/fleetsim.md) or the outage later")
        after = bins(last + 1, len(seconds))
        mean = sum(steady) / len(steady)
        print(f"server busy from {first} s to {last} s of the run")
        print(f"steady, from {start} s (all ready at {ready:.1f} s, then one poll interval): "
              f"{mean:.0f} requests per modelled minute "
              f"({sum(requests[start:first]) / (first - start):.1f} per second)")
        print(f"after: peak {max(after)} per modelled minute ({max(after) / mean:.2f}x steady); "
              f"the first ten: {after[:10]}")
        print(f"after: peak {max(requests[last + 1:])} in one second")
    t = report["totals"]
    print(f"sessions in flight at most: {t['in_flight']}; peak {max(requests)} requests in one second")
    a = report["alerts"]
    lat = a["latency_secs"]
    print(f"alerts: {a['queued']} queued, {a['acknowledged']} acknowledged, {a['waiting']} waiting, "
          f"{a['lost']} lost, {a['duplicated']} duplicated; latency min {lat['min']:.1f} s, "
          f"p50 {lat['p50']:.1f} s, "
          f"p99 {lat['p99']:.1f} s, max {lat['max']:.1f} s of the run")
    r = report.get("recovery")
    if r:
        b = r["back_secs"]
        print(f"back in contact after the last busy answer: p50 {b['p50']:.1f} s, "
              f"p99 {b['p99']:.1f} s, max {b['max']:.1f} s of the run; {r['not_back']} not back")
    n = report["notifications"]["answered_secs"]
    if n["count"]:
        campaign = [s["sessions_started"] for s in seconds]
        print(f"notifications answered: {n['count']}, within p50 {n['p50']:.1f} s, "
              f"p99 {n['p99']:.1f} s, max {n['max']:.1f} s; most sessions started in one second "
              f"{max(campaign)}")
    for kind, c in report["per_session"].items():
        print(f"{kind} session: {c['requests']:.2f} requests, {c['bytes_sent']:.0f} bytes sent, "
              f"{c['bytes_received']:.0f} bytes received ({c['sessions']} sessions)")
    c = report.get("against_server")
    if c:
        print(f"against the server's record: its busiest second {c['server_peak'][0]} "
              f"(counted here {c['server_peak'][1]}); {c['seconds_compared']} seconds compared, "
              f"worst difference {c['worst_difference'] * 100:.1f}%")
    m = report["memory"]
    ready = report["all_ready_secs"]
    ready = "not every device got ready" if ready is None else f"all ready after {ready:.1f} s"
    print(f"memory: {m['per_device_kib']:.0f} KiB per device; {ready}")


if __name__ == "__main__":
    main()
