#!/usr/bin/env python3
"""The push benchmark: APNs deliveries per second and time to
acknowledgement, gmshub against a local APNs stand-in (HTTP/2 over TLS).

    python3 load-tests/push-bench.py [--quick] [--no-build] [--devices N] [--events N]

Starts `push-stand-in` (target/release, from load-tests), gmshub configured
with token authentication against it (a fresh P-256 key made with openssl),
subscribes N devices to one tag over the Notification API, publishes E
events to that tag (each reaching every device) with the publish time in the
message, waits for every delivery, and stops both by process id. Writes
load-tests/results/push-DATE.{md,json}.

Python 3.11 standard library only; shares its process handling with bench.py.
"""
import argparse
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

ROOT = bench.ROOT
STAND_IN = ROOT / "target/release/push-stand-in"
TOPIC = "com.example.bench"


def api(conn, method, path, body):
    conn.request(method, path, json.dumps(body), {"content-type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data)


def main():
    p = argparse.ArgumentParser(description="gmshub APNs push benchmark against a local stand-in.")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--out", default=str(bench.RESULTS))
    args = p.parse_args()
    if args.quick:
        args.devices, args.events = 500, 4
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gmshub", "-p", "load-tests"], cwd=ROOT, check=True)
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    key = logs / "push-bench-key.p8"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
                   check=True, capture_output=True)
    ca = logs / "push-bench-ca.pem"
    stand_log = open(logs / "push-stand-in.log", "w")
    stand = subprocess.Popen([str(STAND_IN), "--ca", str(ca), "--seconds", "600"], stdout=subprocess.PIPE,
                             stderr=stand_log, text=True, start_new_session=True)
    url = None
    try:
        line = stand.stdout.readline()
        found = re.search(r"listening on (https://[0-9.:]+)", line)
        if not found:
            raise RuntimeError(f"stand-in did not start: {line!r}")
        url = found.group(1)
        config = logs / "push-bench.ini"
        config.write_text(
            f"[push]\npushEnabled = comet,ios\napple.authKey = {key}\napple.keyId = BENCH12345\n"
            f"apple.teamId = TEAM123456\napple.topicName = {TOPIC}\napple.url = {url}\napple.caFile = {ca}\n")
        # A store of its own: subscriptions of an earlier run must not count.
        db = logs / f"push-bench-{time.time_ns()}.db"
        bench.SERVERS["gmshub-push"] = dict(bench.SERVERS["gmshub"],
                                            cmd=bench.SERVERS["gmshub"]["cmd"] + ["--config", str(config)],
                                            env=dict(bench.SERVERS["gmshub"]["env"], GMSHUB__SQLITE__PATH=str(db)))
        server = bench.Server("gmshub-push", logs / "push-bench.server.log").start()
        try:
            host = server.url.split("//")[1].split("/")[0]
            conn = http.client.HTTPConnection(host, timeout=30)
            started = time.monotonic()
            for i in range(args.devices):
                api(conn, "POST", "/genesys/1/notification/subscription",
                    {"subscriberId": f"d{i}", "filter": "bench.event", "expire": 3600,
                     "notificationDetails": {"deviceId": f"{i:064x}", "type": "ios"}})
            subscribe_seconds = time.monotonic() - started
            print(f"  {args.devices} subscriptions in {subscribe_seconds:.1f} s", flush=True)
            cpu_before = bench_cpu(server.proc.pid)
            t0 = time.monotonic()
            for _ in range(args.events):
                api(conn, "POST", "/genesys/1/notification/publish",
                    {"tag": "bench.event", "message": str(time.time_ns() // 1000)})
            expected = args.devices * args.events
            deadline = time.monotonic() + 120
            # Let the deliveries finish: the stand-in reports when told to stop.
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if delivered(server) >= expected:
                    break
            wall = time.monotonic() - t0
            cpu = (bench_cpu(server.proc.pid) - cpu_before) / wall * 100
        finally:
            server.stop()
        stand.send_signal(signal.SIGTERM)
        report = json.loads(stand.stdout.readline() or "{}")
    finally:
        if stand.poll() is None:
            stand.kill()
        stand_log.close()
    report.update(devices=args.devices, events=args.events, expected=args.devices * args.events,
                  server_cpu_percent=round(cpu, 1))
    results = {"machine": bench.machine_facts(), "quick": args.quick, "report": report}
    m = results["machine"]
    text = "\n".join([
        f"# gmshub push benchmark (APNs): {m['date'][:10]}", "",
        f"Machine: {bench.machine_line(m)}  ",
        f"Run at {m['date']}, commit {m.get('git_commit')}. {args.devices} iOS subscriptions to one tag, "
        f"{args.events} events published to it: {report['expected']:,} deliveries to a local APNs stand-in "
        "(HTTP/2 over TLS, token authentication), all on the machine's two cores. Acknowledgement: from the "
        "publish call to the stand-in's answer.", "",
        "| deliveries | of | per second | ack p50 / p90 / p99 / max ms | server CPU % |",
        "|---:|---:|---:|---:|---:|",
        f"| {report.get('deliveries', 0):,} | {report['expected']:,} | {report.get('per_sec', 0):,.0f} | "
        f"{report.get('ack_p50_ms', 0):.1f} / {report.get('ack_p90_ms', 0):.1f} / {report.get('ack_p99_ms', 0):.1f} / "
        f"{report.get('ack_max_ms', 0):.1f} | {report['server_cpu_percent']} |", ""])
    base = out / f"push-{m['date'][:10]}{'-quick' if args.quick else ''}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=1) + "\n")
    Path(f"{base}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {bench.shorten(str(base))}.json, .md")
    return 0 if report.get("deliveries") == report["expected"] else 1


def bench_cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def delivered(server):
    """APNs deliveries the server has counted (`/genesys/1/node`)."""
    host = server.url.split("//")[1].split("/")[0]
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request("GET", "/genesys/1/node")
    push = json.loads(conn.getresponse().read()).get("push", {})
    return sum(push.get("ios", {}).get(k, 0) for k in ("delivered", "failed", "gone"))


if __name__ == "__main__":
    sys.exit(main())
