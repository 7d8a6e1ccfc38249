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
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
cluster = __import__("cluster-bench")  # noqa: E402  (its Redis helper)

ROOT = bench.ROOT
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


def run_store(store, params, args, logs):
    print(f"\n== callback with the {store} store", flush=True)
    redis = None
    data = logs / "callback-data"
    data.mkdir(exist_ok=True)
    config = logs / "callback-bench.ini"
    config.write_text(CONFIG)
    env = {"GMSHUB__SQLITE__PATH": str(data / f"callback-{time.time_ns()}.db")}
    if store == "redis":
        redis = cluster.Redis(logs / "callback-redis.log", data)
        env.update(GMSHUB__STORE__TYPE="redis", GMSHUB__REDIS__URL=redis.url)
    name = f"gmshub-callback-{store}"
    spec = dict(bench.SERVERS["gmshub"])
    spec["cmd"] = spec["cmd"] + ["--config", str(config)]
    spec["env"] = dict(spec["env"], **env)
    bench.SERVERS[name] = spec
    server = bench.Server(name, logs / f"callback-{store}.server.log")
    try:
        server.start()
        pids = str(server.proc.pid) + (f",{redis.proc.pid}" if redis else "")
        group = SimpleNamespace(name=name, url=server.url, proc=SimpleNamespace(pid=pids))
        report, error, cmd = bench.run_generator(args.generator, group, "callback", params,
                                                 logs / f"callback-{store}.report.json",
                                                 logs / f"callback-{store}.generator.log")
        return {"store": store, "report": report, "error": error, "command": [bench.shorten(c) for c in cmd]}
    finally:
        server.stop()
        if redis:
            redis.stop()


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


def main():
    p = argparse.ArgumentParser(description="The gmshub callback benchmark.")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--stores", default="sqlite,redis")
    p.add_argument("--generator", default=str(ROOT / "target/release/bayeux-load"))
    p.add_argument("--out", default=str(bench.RESULTS))
    args = p.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "redis" in stores and shutil.which("redis-server") is None:
        sys.exit("the redis run needs redis-server on PATH (Debian package redis-server)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gmshub", "-p", "load-tests"], cwd=ROOT, check=True)
    params = dict(PARAMS, **(QUICK if args.quick else {}))
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {"machine": bench.machine_facts(), "quick": args.quick, "params": params, "runs": []}
    for store in stores:
        results["runs"].append(run_store(store, params, args, logs))
        time.sleep(bench.PAUSE_BETWEEN_RUNS_SECONDS)
    base = out / f"callback-{results['machine']['date'][:10]}{'-quick' if args.quick else ''}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    Path(f"{base}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {bench.shorten(str(base))}.json, .md")
    return 1 if any(r.get("error") for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
