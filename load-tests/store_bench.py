"""What the benchmarks of gmshub alone with each store share (chat-bench.py,
callback-bench.py): for each store, start gmshub (and, for redis, a
redis-server of its own) with a configuration, run one `bayeux-load`
scenario against it, stop everything by process id; then write
results/KIND-DATE.{md,json}.

Python 3.11 standard library only; process handling from bench.py.
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


def run_store(kind, store, params, config, args, logs, binary=None, label=""):
    """One run of scenario `kind` against gmshub (`binary`, default the one built here) on
    `store`, with the INI text `config`."""
    print(f"\n== {kind}{label} with the {store} store", flush=True)
    redis = None
    data = logs / f"{kind}-data"
    data.mkdir(exist_ok=True)
    config_path = logs / f"{kind}-bench.ini"
    config_path.write_text(config)
    env = {"GMSHUB__SQLITE__PATH": str(data / f"{kind}-{time.time_ns()}.db")}
    if store == "redis":
        redis = cluster.Redis(logs / f"{kind}-redis.log", data)
        env.update(GMSHUB__STORE__TYPE="redis", GMSHUB__REDIS__URL=redis.url)
    name = f"gmshub-{kind}{label}-{store}"
    spec = dict(bench.SERVERS["gmshub"])
    spec["cmd"] = [binary or spec["cmd"][0]] + spec["cmd"][1:] + ["--config", str(config_path)]
    spec["env"] = dict(spec["env"], **env)
    bench.SERVERS[name] = spec
    server = bench.Server(name, logs / f"{kind}{label}-{store}.server.log")
    try:
        server.start()
        pids = str(server.proc.pid) + (f",{redis.proc.pid}" if redis else "")
        group = SimpleNamespace(name=name, url=server.url, proc=SimpleNamespace(pid=pids), spec=spec)
        report, error, cmd = bench.run_generator(args.generator, group, kind, params,
                                                 logs / f"{kind}{label}-{store}.report.json",
                                                 logs / f"{kind}{label}-{store}.generator.log")
        return {"store": store, "report": report, "error": error, "command": [bench.shorten(c) for c in cmd]}
    finally:
        server.stop()
        if redis:
            redis.stop()


def main(kind, description, params, quick, config, markdown):
    """`config(params)` gives the server's INI text; `markdown(results)` the table."""
    p = argparse.ArgumentParser(description=description)
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
    params = dict(params, **(quick if args.quick else {}))
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {"machine": bench.machine_facts(), "quick": args.quick, "params": params, "runs": []}
    for store in stores:
        results["runs"].append(run_store(kind, store, params, config(params), args, logs))
        time.sleep(bench.PAUSE_BETWEEN_RUNS_SECONDS)
    return write_results(kind, results, markdown, out, args.quick)


def write_results(kind, results, markdown, out, quick):
    """Writes results/KIND-DATE.{json,md}; the exit code (1 if a run failed)."""
    base = out / f"{kind}-{results['machine']['date'][:10]}{'-quick' if quick else ''}"
    Path(f"{base}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    Path(f"{base}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {bench.shorten(str(base))}.json, .md")
    return 1 if any(r.get("error") for r in results["runs"]) else 0
