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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import store_bench  # noqa: E402

PARAMS = dict(scenario="chat", transport="websocket", chats=3000, concurrency=200, messages=5, bots=10,
              bot_password="bench-bot")
QUICK = dict(chats=200, concurrency=50, messages=3, bots=4)


def config(params):
    """The bot accounts the scenario logs in as."""
    return "\n".join(f"[agent.bot{i}]\npassword = {params['bot_password']}\ntype = bot\n" for i in range(params["bots"]))


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


if __name__ == "__main__":
    sys.exit(store_bench.main("chat", "The gmshub chat benchmark.", PARAMS, QUICK, config, markdown))
