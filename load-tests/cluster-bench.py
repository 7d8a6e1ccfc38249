#!/usr/bin/env python3
"""What the cluster bus costs: the `rooms` load on one gmshub node, then on
two nodes sharing one Redis (clients and publishers alternate between them,
so about half of all deliveries cross the bus), with the same generator.

    python3 load-tests/cluster-bench.py [--quick] [--no-build]

Starts a redis-server of its own on a free loopback port (Debian package
redis-server), the gmshub nodes (store in that Redis; clustered for the
two-node run), and stops all of them by their process ids. Writes
load-tests/results/cluster-DATE.{md,json}. Server CPU and memory are those of
the gmshub processes and redis-server together.

Python 3.11 standard library only; shares its process handling with bench.py.
"""
import argparse
import datetime
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the sibling script: Server, run_generator, formatting)

ROOT = bench.ROOT
ROOMS = dict(bench.SCENARIOS["rooms"], max_p99_ms=50)
QUICK = dict(clients=200, rooms=20, rooms_per_client=5, rates=[500, 1000], seconds=2, drain=1)
TARGET_MS = bench.ROOMS_P99_TARGET_MS


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, log_path, data_dir):
        self.port = free_port()
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(data_dir)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/"

    def stop(self):
        if self.proc.poll() is None:
            bench.terminate(self.proc.pid, self.proc, 5, group=False)
        self.log.close()


def node_spec(redis, clustered, data_dir):
    env = {"GMSHUB__COMETD__MAXSESSIONSPERBROWSER": "-1", "RUST_LOG": "warn,gmshub=info",
           "GMSHUB__COMETD__PUBLISHCHANNELS": "/load/**",
           "GMSHUB__STORE__TYPE": "redis", "GMSHUB__REDIS__URL": redis.url,
           "GMSHUB__SQLITE__PATH": str(data_dir / "unused.db")}
    if clustered:
        env["GMSHUB__CLUSTER__ENABLED"] = "true"
    return dict(bench.SERVERS["gmshub"], env=dict(bench.SERVERS["gmshub"]["env"], **env))


def run_config(label, nodes, params, args, logs, data_dir):
    """Starts Redis and `nodes` gmshub nodes, runs the generator across them."""
    print(f"\n== {label}", flush=True)
    redis = Redis(logs / f"cluster-{label}.redis.log", data_dir)
    servers = []
    try:
        for i in range(nodes):
            name = f"gmshub-{label}-{i}"
            bench.SERVERS[name] = node_spec(redis, nodes > 1, data_dir)
            servers.append(bench.Server(name, logs / f"cluster-{label}-{i}.server.log").start())
            print(f"  node {i}: pid {servers[-1].proc.pid} at {servers[-1].url}", flush=True)
        # The generator takes comma-separated URLs and pids: one "server"
        # standing for the whole group.
        pids = ",".join(str(p) for p in [s.proc.pid for s in servers] + [redis.proc.pid])
        group = SimpleNamespace(name=label, url=",".join(s.url for s in servers), proc=SimpleNamespace(pid=pids))
        report, error, cmd = bench.run_generator(args.generator, group, "rooms", params,
                                                 logs / f"cluster-{label}.report.json",
                                                 logs / f"cluster-{label}.generator.log")
        if report:
            bench.print_steps(report)
        return {"nodes": nodes, "report": report, "error": error,
                "command": [bench.shorten(c) for c in cmd]}
    finally:
        for s in servers:
            s.stop()
        redis.stop()


def cpu_per_1000(step):
    """Server CPU (percent of a core) per 1000 deliveries a second."""
    d, c = step.get("delivered_per_sec"), step.get("server_cpu_percent")
    return None if not d or c is None else c / d * 1000


def markdown(results):
    m = results["machine"]
    one, two = (results["runs"][k].get("report") or {} for k in ("one-node", "two-nodes"))
    lines = [f"# gmshub: one node against two nodes with the Redis bus: {m['date'][:10]}", "",
             f"Machine: {bench.machine_line(m)}  ",
             f"Run at {m['date']}, commit {m.get('git_commit')}; the `rooms` load ({results['params']['clients']} clients, "
             f"{results['params']['rooms']} rooms, {results['params']['rooms_per_client']} rooms per client) "
             "over WebSocket. With two nodes, clients and publishers alternate between the nodes, so "
             "about half of the deliveries cross the bus. Server CPU is gmshub and redis-server together; "
             "generator, servers and Redis share the machine's two cores.", "",
             "## Summary", "", "| measure | one node | two nodes + Redis bus |", "|---|---|---|"]

    def best(rep):
        s = bench.best_within(rep.get("steps") or [], TARGET_MS)
        return f"{s['rate']:,}/s (p99 {bench.fmt_ms(s['p99_ms'])} ms)" if s else "none"
    lines.append(f"| highest publish rate, p99 ≤ {TARGET_MS} ms, no loss | {best(one)} | {best(two)} |")
    common = sorted({s["rate"] for s in one.get("steps") or []} & {s["rate"] for s in two.get("steps") or []})
    for rate in common[:1] + common[-1:] if len(common) > 1 else common:
        a = next(s for s in one["steps"] if s["rate"] == rate)
        b = next(s for s in two["steps"] if s["rate"] == rate)
        lines.append(f"| server CPU per 1000 deliveries/s at {rate:,} msg/s | "
                     f"{bench.fmt_num(cpu_per_1000(a), 2)} % | {bench.fmt_num(cpu_per_1000(b), 2)} % |")
        lines.append(f"| p99 at {rate:,} msg/s | {bench.fmt_ms(a['p99_ms'])} ms | {bench.fmt_ms(b['p99_ms'])} ms |")
    lines += ["", "## Steps", ""]
    for key in ("one-node", "two-nodes"):
        run = results["runs"][key]
        lines.append(f"### {key}")
        lines.append("")
        if run.get("error"):
            lines.append(f"error: {run['error']}")
            lines.append("")
        lines += ["| rate/s | delivered/s | p50 ms | p99 ms | max ms | missed | server CPU % | generator CPU % |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in (run.get("report") or {}).get("steps") or []:
            lines.append(f"| {s['rate']:,} | {bench.fmt_num(s.get('delivered_per_sec'))} | {bench.fmt_ms(s.get('p50_ms'))} | "
                         f"{bench.fmt_ms(s.get('p99_ms'))} | {bench.fmt_ms(s.get('max_ms'))} | {bench.fmt_num(s.get('missed'))} | "
                         f"{bench.fmt_num(s.get('server_cpu_percent'))} | {bench.fmt_num(s.get('generator_cpu_percent'))} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description="gmshub on one node against two nodes with the Redis bus.")
    p.add_argument("--quick", action="store_true", help="a short smoke-sized run")
    p.add_argument("--no-build", action="store_true", help="skip cargo build")
    p.add_argument("--generator", default=str(ROOT / "target/release/bayeux-load"))
    p.add_argument("--out", default=str(bench.RESULTS))
    args = p.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("needs redis-server on PATH (Debian package redis-server)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gmshub", "-p", "load-tests"], cwd=ROOT, check=True)
    params = dict(ROOMS, **(QUICK if args.quick else {}))
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data_dir = logs / "cluster-data"
    data_dir.mkdir(exist_ok=True)
    results = {"machine": bench.machine_facts(), "quick": args.quick, "params": params, "runs": {}}
    results["runs"]["one-node"] = run_config("one-node", 1, params, args, logs, data_dir)
    time.sleep(bench.PAUSE_BETWEEN_RUNS_SECONDS)
    results["runs"]["two-nodes"] = run_config("two-nodes", 2, params, args, logs, data_dir)
    day = results["machine"]["date"][:10]
    base = out / f"cluster-{day}{'-quick' if args.quick else ''}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    Path(f"{base}.md").write_text(text)
    print("\n" + text.split("## Steps")[0])
    print(f"wrote {bench.shorten(str(base))}.json, .md")
    return 1 if any(r.get("error") for r in results["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
