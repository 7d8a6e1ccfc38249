#!/usr/bin/env python3
"""The chat benchmark: thousands of chats over CometD (Chat API v2), every
customer message answered by a bot through the agent API; round-trip
latency percentiles and chats started per second, with the embedded SQLite
store and with Redis.

    python3 load-tests/chat-bench.py [--quick] [--no-build] [--stores sqlite,redis]

Starts gmshub (and, for the redis run, a redis-server of its own on a free
port) with a configuration that declares the bot accounts, runs
`bayeux-load --scenario chat`, stops everything by process id, and writes
load-tests/results/chat-DATE.{md,json}. gmshub only: Faye has no chat.

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
PARAMS = dict(scenario="chat", transport="websocket", chats=3000, concurrency=200, messages=5, bots=10)
QUICK = dict(chats=200, concurrency=50, messages=3, bots=4)
BOT_PASSWORD = "bench-bot"


def config_file(logs, bots):
    path = logs / "chat-bench.ini"
    sections = [f"[agent.bot{i}]\npassword = {BOT_PASSWORD}\ntype = bot\n" for i in range(bots)]
    path.write_text("\n".join(sections))
    return path


def run_store(store, params, args, logs):
    print(f"\n== chat with the {store} store", flush=True)
    redis = None
    data = logs / "chat-data"
    data.mkdir(exist_ok=True)
    env = {"GMSHUB__SQLITE__PATH": str(data / f"chat-{time.time_ns()}.db")}
    if store == "redis":
        redis = cluster.Redis(logs / "chat-redis.log", data)
        env.update(GMSHUB__STORE__TYPE="redis", GMSHUB__REDIS__URL=redis.url)
    name = f"gmshub-chat-{store}"
    spec = dict(bench.SERVERS["gmshub"])
    spec["cmd"] = spec["cmd"] + ["--config", str(config_file(logs, params["bots"]))]
    spec["env"] = dict(spec["env"], **env)
    bench.SERVERS[name] = spec
    server = bench.Server(name, logs / f"chat-{store}.server.log")
    try:
        server.start()
        pids = str(server.proc.pid) + (f",{redis.proc.pid}" if redis else "")
        group = SimpleNamespace(name=name, url=server.url, proc=SimpleNamespace(pid=pids))
        flags = dict(params, bot_password=BOT_PASSWORD)
        report, error, cmd = bench.run_generator(args.generator, group, "chat", flags,
                                                 logs / f"chat-{store}.report.json", logs / f"chat-{store}.generator.log")
        return {"store": store, "report": report, "error": error, "command": [bench.shorten(c) for c in cmd]}
    finally:
        server.stop()
        if redis:
            redis.stop()


def markdown(results):
    m = results["machine"]
    p = results["params"]
    lines = [f"# gmshub chat benchmark: {m['date'][:10]}", "",
             f"Machine: {bench.machine_line(m)}  ",
             f"Run at {m['date']}, commit {m.get('git_commit')}. {p['chats']} chats, {p['concurrency']} at a time, "
             f"each customer (Chat API v2 over CometD, WebSocket) sending {p['messages']} messages that one of "
             f"{p['bots']} bots (the agent API: pings over CometD, actions over REST) answers. Round trip: a customer's "
             "send to the bot's answer arriving back at the customer. Server CPU includes redis-server where used; "
             "everything shares the machine's two cores.", "",
             "| store | chats/s | chat start p50 / p99 ms | round trip p50 / p90 / p99 / max ms | replies | missed | failed | server CPU % | generator CPU % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in results["runs"]:
        c = ((run.get("report") or {}).get("chat")) or {}
        if run.get("error") or not c:
            lines.append(f"| {run['store']} | error: {run.get('error')} |||||||| |")
            continue
        f = bench.fmt_ms
        lines.append(f"| {run['store']} | {c['chats_per_sec']:.0f} | {f(c['start_p50_ms'])} / {f(c['start_p99_ms'])} | "
                     f"{f(c['rtt_p50_ms'])} / {f(c['rtt_p90_ms'])} / {f(c['rtt_p99_ms'])} / {f(c['rtt_max_ms'])} | "
                     f"{c['replies']:,} | {c['missed']} | {c['failed']} | {bench.fmt_num(c.get('server_cpu_percent'))} | "
                     f"{bench.fmt_num(c.get('generator_cpu_percent'))} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description="The gmshub chat benchmark.")
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
    base = out / f"chat-{results['machine']['date'][:10]}{'-quick' if args.quick else ''}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    Path(f"{base}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {bench.shorten(str(base))}.json, .md")
    return 1 if any(r.get("error") for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
