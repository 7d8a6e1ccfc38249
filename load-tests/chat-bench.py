#!/usr/bin/env python3
"""The chat benchmark: chats over CometD (Chat API v2, WebSocket), every
customer message answered by a bot through the agent API, with the embedded
SQLite store and with Redis, in three parts:

- throughput: 3000 chats, 200 at a time, 5 messages each, as fast as the bots
  answer (the saturated case: chats/s, messages/s, round trips);
- latency: 10 000 chats open at once (started at 100 a second), then each
  customer sending a message every 10 to 20 s that one of 500 bots answers
  (round-trip percentiles under a contact centre's load);
- cost: the server's CPU time per chat event over the messages alone, with 10
  and with 1000 events per chat, and beside 10 and 10 000 chats waiting in a
  queue (flat means the same figure).

    python3 load-tests/chat-bench.py [--quick] [--no-build] [--stores sqlite,redis]
        [--parts throughput,latency,cost] [--baseline PATH-TO-AN-OLDER-gmshub]

With --baseline, the throughput part runs that binary too, side by side (same
run, same machine), and reports the ratio. Starts gmshub (and, for redis, a
redis-server of its own on a free port) per run with a configuration that
declares the bot accounts, runs `bayeux-load --scenario chat`, stops
everything by process id, and writes load-tests/results/chat-DATE.{md,json}.
gmshub only: Faye has no chat.

Python 3.11 standard library only; shares its process handling with bench.py.
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import store_bench  # noqa: E402

BASE = dict(scenario="chat", transport="websocket", bot_password="bench-bot")
THROUGHPUT = dict(BASE, chats=3000, concurrency=200, messages=5, bots=10)
# The chats start at 100 a second; the messages once every chat has its bot.
# 50 queues of 10 bots each, as a site groups its agents: one queue of 500
# would offer every chat to 500 bots at once, and each would try to take it.
LATENCY = dict(BASE, chats=10000, concurrency=10000, messages=4, bots=500, services=50, think_ms="10000-20000",
               together=True, start_rate=100, bound=900)
# Each message is two events (the customer's and the bot's reply).
COST = {
    "10 events per chat": dict(BASE, chats=100, concurrency=100, messages=5, bots=10, together=True),
    "1000 events per chat": dict(BASE, chats=100, concurrency=100, messages=500, bots=10, together=True,
                                 bound=900),
    "10 chats waiting": dict(BASE, chats=100, concurrency=100, messages=20, bots=10, together=True, waiting=10),
    "10 000 chats waiting": dict(BASE, chats=100, concurrency=100, messages=20, bots=10, together=True,
                                 waiting=10000, bound=900),
}
QUICK = dict(throughput=dict(chats=200, concurrency=50, messages=3, bots=4),
             latency=dict(chats=500, concurrency=500, messages=2, bots=25, services=5, think_ms="1000-2000",
                          start_rate=250),
             cost=dict(chats=20, concurrency=20))
QUICK_COST = {"10 events per chat": {}, "1000 events per chat": dict(messages=50),
              "10 chats waiting": {}, "10 000 chats waiting": dict(waiting=300)}


def config(params):
    """The services and their queues, the bot accounts (spread over the queues), the waiting
    queue's service and the desk that watches it."""
    services = params.get("services", 1)
    queues = ["Environment:default"] if services <= 1 else [f"bench-q{q}" for q in range(services)]
    names = ["customer-support"] if services <= 1 else [f"customer-support-{q}" for q in range(services)]
    lines = ["[chat.waiting]", "_chat_endpoint = bench-waiting", "",
             "[agent.watcher]", f"password = {params['bot_password']}", "queues = bench-waiting", ""]
    for name, queue in zip(names, queues):
        lines += [f"[chat.{name}]", f"_chat_endpoint = {queue}", ""]
    for i in range(params["bots"]):
        lines += [f"[agent.bot{i}]", f"password = {params['bot_password']}", "type = bot",
                  f"queues = {queues[i % len(queues)]}", ""]
    return "\n".join(lines)


def chat(run):
    return ((run.get("report") or {}).get("chat")) or {}


def markdown(results):
    m = results["machine"]
    f, n = bench.fmt_ms, bench.fmt_num
    lines = [f"# gmshub chat benchmark: {m['date'][:10]}", "",
             f"Machine: {bench.machine_line(m)}  ",
             f"Run at {m['date']}, commit {m.get('git_commit')}"
             + (f"; baseline {results['baseline']}" if results.get("baseline") else "") + ". "
             "Customers: Chat API v2 over CometD (WebSocket); bots: the agent API (pings over CometD, actions "
             "over REST). Round trip: a customer's send to the bot's answer arriving back at the customer. Server "
             "CPU includes redis-server where used; everything, generator included, shares the machine's two cores.",
             ""]
    runs = results["runs"]
    through = [r for r in runs if r["part"] == "throughput"]
    if through:
        p = results["params"]["throughput"]
        lines += ["## Throughput (saturated)", "",
                  f"{p['chats']} chats, {p['concurrency']} at a time, {p['messages']} messages each, {p['bots']} bots.",
                  "", "| store | binary | chats/s | messages/s | chat start p50 / p99 ms | round trip p50 / p90 / p99 / "
                  "max ms | replies | missed | failed | server CPU % |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in through:
            c = chat(r)
            if r.get("error") or not c:
                lines.append(f"| {r['store']} | {r['binary']} | error: {r.get('error')} ||||||||")
                continue
            lines.append(f"| {r['store']} | {r['binary']} | {c['chats_per_sec']:.0f} | {c['messages_per_sec']:.0f} | "
                         f"{f(c['start_p50_ms'])} / {f(c['start_p99_ms'])} | {f(c['rtt_p50_ms'])} / "
                         f"{f(c['rtt_p90_ms'])} / {f(c['rtt_p99_ms'])} / {f(c['rtt_max_ms'])} | {c['replies']:,} | "
                         f"{c['missed']} | {c['failed']} | {n(c.get('server_cpu_percent'))} |")
        for store in dict.fromkeys(r["store"] for r in through):
            now = [chat(r) for r in through if r["store"] == store and r["binary"] == "this commit"]
            old = [chat(r) for r in through if r["store"] == store and r["binary"] == "baseline"]
            if now and old and now[0] and old[0] and old[0].get("chats_per_sec"):
                lines.append(f"\n{store}: {now[0]['chats_per_sec'] / old[0]['chats_per_sec']:.1f}× the baseline's chats/s.")
        lines.append("")
    latency = [r for r in runs if r["part"] == "latency"]
    if latency:
        p = results["params"]["latency"]
        lines += ["## Latency under a contact centre's load", "",
                  f"{p['chats']} chats open at once (started at {p['start_rate']} a second), then each customer sending "
                  f"{p['messages']} messages, one every {p['think_ms'].replace('-', ' to ')} ms, answered by one of "
                  f"{p['bots']} bots ({p['bots'] // p.get('services', 1)} on each of {p.get('services', 1)} queues). "
                  "Percentiles of the message phase (every chat open).", "",
                  "| store | events/s in the message phase (messages and replies) | chat start p50 / p99 ms | round trip p50 / p90 / p99 / p99.9 / max ms "
                  "| replies | missed | failed | server CPU % |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in latency:
            c = chat(r)
            if r.get("error") or not c:
                lines.append(f"| {r['store']} | error: {r.get('error')} |||||||")
                continue
            rate = c["message_events"] / c["message_seconds"] if c.get("message_seconds") else c["messages_per_sec"]
            lines.append(f"| {r['store']} | {rate:.0f} | {f(c['start_p50_ms'])} / {f(c['start_p99_ms'])} | "
                         f"{f(c['rtt_p50_ms'])} / {f(c['rtt_p90_ms'])} / {f(c['rtt_p99_ms'])} / {f(c['rtt_p999_ms'])} / "
                         f"{f(c['rtt_max_ms'])} | {c['replies']:,} | {c['missed']} | {c['failed']} | "
                         f"{n(c.get('server_cpu_percent'))} |")
        lines.append("")
    cost = [r for r in runs if r["part"].startswith("cost:")]
    if cost:
        lines += ["## Flat cost", "",
                  "The server's CPU time per chat event over the message phase alone (every chat had its bot before "
                  "the first message), 100 chats at a time; the ratio is to the first row of its pair.", "",
                  "| store | case | events | server µs per event | ratio | missed | failed |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        first = {}
        for r in cost:
            c, case = chat(r), r["part"][5:]
            us = c.get("server_cpu_us_per_event")
            pair = (r["store"], "waiting" in case)
            first.setdefault(pair, us)
            ratio = f"{us / first[pair]:.2f}" if us and first[pair] else "—"
            lines.append(f"| {r['store']} | {case} | {c.get('message_events', 0):,} | {n(us)} | {ratio} | "
                         f"{c.get('missed', '—')} | {c.get('failed', '—')} |" if c else
                         f"| {r['store']} | {case} | error: {r.get('error')} |||||")
        lines.append("")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description="The gmshub chat benchmark.")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--stores", default="sqlite,redis")
    p.add_argument("--parts", default="throughput,latency,cost")
    p.add_argument("--baseline", help="an older gmshub binary, run side by side in the throughput part")
    p.add_argument("--generator", default=str(bench.ROOT / "target/release/bayeux-load"))
    p.add_argument("--out", default=str(bench.RESULTS))
    args = p.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    if "redis" in stores and shutil.which("redis-server") is None:
        sys.exit("the redis run needs redis-server on PATH (Debian package redis-server)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gmshub", "-p", "load-tests"], cwd=bench.ROOT, check=True)
    quick = QUICK if args.quick else {}
    plan = []
    if "throughput" in parts:
        plan.append(("throughput", dict(THROUGHPUT, **quick.get("throughput", {}))))
    if "latency" in parts:
        plan.append(("latency", dict(LATENCY, **quick.get("latency", {}))))
    if "cost" in parts:
        for case, params in COST.items():
            extra = dict(quick.get("cost", {}), **QUICK_COST[case]) if args.quick else {}
            plan.append((f"cost:{case}", dict(params, **extra)))
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {"machine": bench.machine_facts(), "quick": args.quick, "baseline": args.baseline,
               "params": {part: params for part, params in plan}, "runs": []}
    for part, params in plan:
        binaries = [(None, "this commit")]
        if part == "throughput" and args.baseline:
            binaries.append((args.baseline, "baseline"))
        for store in stores:
            for binary, name in binaries:
                label = "-" + part.replace(":", "-").replace(" ", "-") + ("-baseline" if binary else "")
                run = store_bench.run_store("chat", store, params, config(params), args, logs, binary, label)
                results["runs"].append(dict(run, part=part, binary=name))
                time.sleep(bench.PAUSE_BETWEEN_RUNS_SECONDS)
    return store_bench.write_results("chat", results, markdown, out, args.quick)


if __name__ == "__main__":
    sys.exit(main())
