#!/usr/bin/env python3
"""A stand-in for target/release/bayeux-load, to test bench.py's plumbing.

It takes the real generator's options, makes one real /meta/handshake over
HTTP to --url (so a wrong URL or a dead server fails as it would for real),
reads the server's RSS from /proc, then sleeps a small fraction of the
scenario's real time and writes a report in the generator's JSON format with
made-up but plausible figures (Faye made slower than gmshub).

    python3 load-tests/bench.py --generator load-tests/peers/fake-bayeux-load.py --no-build --quick

Environment:
  FAKE_SPEED=0.02      fraction of the real run time to sleep
  FAKE_FAIL=MODE[:SCENARIO]
                       MODE is hang (never ends: tests bench.py's timeout),
                       exit (exit 3, no report) or garbage (invalid JSON);
                       with :SCENARIO (rooms, fanout, idle, churn, or
                       long-polling) only that run fails.
"""
import argparse
import json
import math
import os
import random
import ssl
import sys
import time
import urllib.request


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--transport", choices=["websocket", "long-polling"], required=True)
    p.add_argument("--scenario", choices=["rooms", "fanout", "idle", "churn"], required=True)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--rooms-per-client", type=int, default=10)
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--size", type=int, default=50)
    p.add_argument("--rates", default="1000")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--drain", type=float, default=2)
    p.add_argument("--max-p99-ms", type=float)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--server-pid", type=int)
    p.add_argument("--label", default="server")
    p.add_argument("--json", required=True)
    # bench.py --security's: the CA an https:// server is trusted by, and
    # the Origin the handshake carries (as bayeux-load's).
    p.add_argument("--ca")
    p.add_argument("--origin")
    return p.parse_args()


def handshake(url, ca=None, origin=None):
    body = json.dumps([{"channel": "/meta/handshake", "version": "1.0",
                        "supportedConnectionTypes": ["long-polling", "websocket"]}]).encode()
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
    req = urllib.request.Request(url, data=body, headers=headers)
    context = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        reply = json.loads(resp.read())
    if not reply or not reply[0].get("successful"):
        raise SystemExit(f"fake-bayeux-load: handshake refused: {reply}")
    return reply[0]["clientId"]


def rss_kb(pid):
    if not pid:
        return 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    a = parse_args()
    speed = float(os.environ.get("FAKE_SPEED", "0.02"))
    fail = os.environ.get("FAKE_FAIL", "")
    mode, _, only = fail.partition(":")
    if mode and (not only or only in (a.scenario, a.transport)):
        if mode == "hang":
            print("fake-bayeux-load: hanging on purpose", flush=True)
            time.sleep(1e6)
        if mode == "exit":
            print("fake-bayeux-load: failing on purpose", file=sys.stderr)
            sys.exit(3)
        if mode == "garbage":
            with open(a.json, "w") as f:
                f.write("{not json")
            return

    client_id = handshake(a.url, a.ca, a.origin)
    print(f"fake-bayeux-load: {a.label} {a.scenario}/{a.transport} handshake ok ({client_id[:8]}...)", flush=True)
    slow = 8.0 if a.label == "faye" else 1.0          # Faye made ~8x slower
    lp = 20.0 if a.transport == "long-polling" else 1.0
    rss0 = rss_kb(a.server_pid)
    ramp = a.clients / (20000 / slow)
    time.sleep(ramp * speed)
    rss1 = rss0 + int(a.clients * (6 if a.label != "faye" else 25))
    report = {
        "label": a.label, "scenario": a.scenario, "transport": a.transport,
        "clients": a.clients, "rooms": a.rooms, "rooms_per_client": a.rooms_per_client,
        "size": a.size, "connected": a.clients, "failed": 0,
        "ramp_up_seconds": round(ramp, 3),
        "server_rss_kb_after_ramp": rss1, "server_peak_rss_kb": int(rss1 * 1.3),
        "rss_kb_per_session": round((rss1 - rss0) / max(a.clients, 1), 2),
        "steps": [], "churn": None,
    }

    if a.scenario in ("rooms", "fanout"):
        # Deliveries per published message: every member of the room.
        fan = a.clients if a.scenario == "fanout" else a.clients * a.rooms_per_client / a.rooms
        capacity = 2.5e6 / slow / lp                  # deliveries/s at saturation
        for rate in [int(r) for r in a.rates.split(",")]:
            time.sleep((a.seconds + a.drain) * speed)
            expected = int(rate * a.seconds * fan)
            load = rate * fan / capacity
            missed = 0 if load < 1 else int(expected * min(0.5, load - 1))
            base = 0.4 * slow * (lp ** 0.5)
            p99 = base * 3 / max(1e-3, 1 - min(load, 0.999)) * random.uniform(0.9, 1.1)
            step = {
                "rate": rate, "seconds": a.seconds, "published": int(rate * a.seconds),
                "expected": expected, "received": expected - missed, "missed": missed, "errors": 0,
                "delivered_per_sec": round((expected - missed) / a.seconds, 1),
                "p50_ms": round(p99 / 4, 3), "p90_ms": round(p99 / 2, 3), "p99_ms": round(p99, 3),
                "p999_ms": round(p99 * 1.6, 3), "max_ms": round(p99 * 2.5, 3),
                "server_cpu_percent": round(min(100.0, 100 * load), 1),
                "generator_cpu_percent": round(min(200.0, 60 * load + 5), 1),
            }
            report["steps"].append(step)
            print(f"fake-bayeux-load: rate {rate}/s p99 {step['p99_ms']} ms missed {missed}", flush=True)
            if a.max_p99_ms is not None and (step["p99_ms"] > a.max_p99_ms or missed):
                break
    elif a.scenario == "churn":
        time.sleep(a.seconds * speed)
        per_sec = 3000 / slow * min(1.0, a.concurrency / 50)
        report["churn"] = {
            "seconds": a.seconds, "cycles": int(per_sec * a.seconds),
            "cycles_per_sec": round(per_sec, 1), "errors": 0,
            "p50_ms": round(a.concurrency / per_sec * 1000 * 0.8, 2),
            "p99_ms": round(a.concurrency / per_sec * 1000 * 3, 2),
        }

    with open(a.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
