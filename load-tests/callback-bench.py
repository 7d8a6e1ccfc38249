#!/usr/bin/env python3
"""The callback benchmark: callbacks booked per second over the Callback
Services API, and how late the QUEUED event reaches the customer's CometD
session when thousands of callbacks fall due at the same instant; with the
embedded SQLite store and with Redis.

    python3 load-tests/callback-bench.py [--quick] [--no-build] [--stores sqlite,redis]

Starts gmshub (and, for the redis run, a redis-server of its own on a free
port) with a callback service that admits the load, runs
`bayeux-load --scenario callback`, stops everything by process id, and
writes load-tests/results/callback-DATE.{md,json}. gmshub only: Faye has no
callbacks.

Python 3.11 standard library only; shares its process handling with bench.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import store_bench  # noqa: E402

PARAMS = dict(scenario="callback", transport="websocket", service="bench", bookings=5000, due=5000,
              concurrency=50)
QUICK = dict(bookings=500, due=500)
CONFIG = """\
[cometd]
# One session takes every event of the due phase.
maxQueue = 67108864
[callback]
scheduler-interval = 200
[service.bench]
_service = callback
_type = ors
_enable_in_queue_checking = false
_max_queued_callbacks_per_service = 1000000
_max_request_by_time_bucket = 1000000
"""


def markdown(results):
    m = results["machine"]
    p = results["params"]
    lines = [f"# gmshub callback benchmark: {m['date'][:10]}", "",
             f"Machine: {bench.machine_line(m)}  ",
             f"Run at {m['date']}, commit {m.get('git_commit')}. Phase 1: {p['bookings']} immediate callbacks booked "
             f"over the Callback Services API, {p['concurrency']} requests at a time. Phase 2 (after phase 1's are "
             f"cancelled in bulk): {p['due']} callbacks booked for one instant, each naming the generator's CometD "
             "session as its device; lateness is the time from that instant to the callback's QUEUED event arriving "
             "on `/_genesys` (scheduler interval 200 ms). Server CPU includes redis-server where used; everything "
             "shares the machine's two cores.", "",
             "| store | bookings/s | booking p50 / p99 ms | due at once | QUEUED lateness p50 / p99 / max ms | missed | duplicates | server CPU % (phase 1) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in results["runs"]:
        c = ((run.get("report") or {}).get("callback")) or {}
        if run.get("error") or not c:
            lines.append(f"| {run['store']} | error: {run.get('error')} ||||||| |")
            continue
        f = bench.fmt_ms
        due = f"{c['due_booked']:,}" + (" (booking overran)" if c.get("booking_overran") else "")
        lines.append(f"| {run['store']} | {c['bookings_per_sec']:.0f} | {f(c['book_p50_ms'])} / {f(c['book_p99_ms'])} | "
                     f"{due} | {f(c['queued_p50_ms'])} / {f(c['queued_p99_ms'])} / {f(c['queued_max_ms'])} | "
                     f"{c['missed']} | {c['duplicates']} | {bench.fmt_num(c.get('server_cpu_percent'))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(store_bench.main("callback", "The gmshub callback benchmark.", PARAMS, QUICK,
                              lambda params: CONFIG, markdown))
