#!/usr/bin/env python3
"""Side-by-side benchmark of gmshub against Faye, with the same generator.

    python3 load-tests/bench.py [--quick] [--only rooms,fanout] [--servers gmshub,faye]
    python3 load-tests/bench.py --security [--repeat 3]

Builds gmshub and bayeux-load (cargo, release), installs the Faye peer (npm ci)
when missing, then for each server and each scenario starts a fresh server on
a free loopback port, drives it with target/release/bayeux-load, and stops it.
Writes load-tests/results/bench-DATE.{json,md,svg} and latest.{json,md,svg}:
the raw reports, a side-by-side table and a p99-against-throughput plot.

--security measures what gmshub's security layers and its TLS cost: the rooms
and long-polling scenarios on plain gmshub, on gmshub with Basic
authentication, CORS (every request from a listed Origin), trusted proxies,
[port_restrictions] and a header rule configured, and on gmshub over its own
TLS listener; interleaved, repeated, reported as the highest rate at the p99
bound and server CPU per 1000 deliveries (median, min-max), each as a ratio to
plain gmshub. Writes load-tests/results/security-DATE.{json,md}.

Python 3.11 standard library (and the openssl command, for --security).
"""
import argparse
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from xml.sax.saxutils import escape

# --------------------------------------------------------------------------
# Scenarios: edit here. Keys other than "scenario" and "transport" become
# generator flags (rates -> --rates 1000,2000; max_p99_ms -> --max-p99-ms).
# --------------------------------------------------------------------------
SCENARIOS = {
    # Chat-like: each client in 10 of 100 rooms, so each message reaches ~100.
    # Steps go past the 10 ms target (up to p99 50 ms) so the curve shows.
    "rooms": dict(scenario="rooms", transport="websocket", clients=1000, rooms=100,
                  rooms_per_client=10, size=50, publishers=4,
                  rates=[100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1400, 1600, 2000,
                         2500, 3000, 4000],
                  seconds=8, drain=2, max_p99_ms=50),
    # Broadcast: one room that all 10,000 clients are in.
    "fanout": dict(scenario="fanout", transport="websocket", clients=10000, rooms=1,
                   rates=[2, 5, 10, 20, 40, 80], seconds=8, drain=3, processes=2,
                   max_p99_ms=200),
    # The rooms load over long-polling, at long-polling sizes.
    "longpoll": dict(scenario="rooms", transport="long-polling", clients=5000, rooms=500,
                     rooms_per_client=10, rates=[50, 100, 200, 300, 400, 600, 800, 1200, 1600],
                     seconds=8, drain=4, processes=1, max_p99_ms=200),
    # Memory per connected, idle session, and how fast they all connect.
    "idle": dict(scenario="idle", transport="websocket", clients=19000, processes=3),
    # Session setup and teardown: handshake + connect + disconnect cycles.
    "churn": dict(scenario="churn", transport="websocket", seconds=10, concurrency=50),
}

# --quick: a smoke-sized run of each scenario (overrides the keys above).
QUICK = {
    "rooms": dict(clients=200, rooms=20, rooms_per_client=5, rates=[500, 1000, 2000],
                  seconds=2, drain=1),
    "fanout": dict(clients=1000, rates=[5, 20], seconds=2, drain=1, processes=1),
    "longpoll": dict(clients=200, rooms=20, rooms_per_client=5, rates=[50, 100],
                     seconds=2, drain=2),
    "idle": dict(clients=1000, processes=1),
    "churn": dict(seconds=2, concurrency=10),
}

# Targets the summary table reads the step curves against.
ROOMS_P99_TARGET_MS = 10      # rooms: highest rate with p99 <= this, no loss
LONGPOLL_P99_TARGET_MS = 50   # longpoll: highest rate with p99 <= this, no loss

# Every generator run is killed after this bound, and the failure recorded:
# a base, plus each step's publishing and drain time, plus ramp-up time.
TIMEOUT_BASE_SECONDS = 120
TIMEOUT_SECONDS_PER_100_CLIENTS = 1
SERVER_START_SECONDS = 15     # to print its "listening on" line
SERVER_STOP_SECONDS = 10      # after SIGTERM, before SIGKILL
PAUSE_BETWEEN_RUNS_SECONDS = 2

ROOT = Path(__file__).resolve().parent.parent      # the repository
PEERS = ROOT / "load-tests" / "peers"
RESULTS = ROOT / "load-tests" / "results"

SERVERS = {
    "gmshub": dict(
        cmd=[str(ROOT / "target/release/gmshub"), "--listen", "127.0.0.1:0"],
        # The store in the results' log folder, not under the repository's data/.
        # The generator's clients publish on /load/room/N, as a site lists
        # the channels its clients broadcast on. They all come from
        # loopback, which is whitelisted as a site would its own load
        # generator (else the per-address limits would be what is measured).
        env={"GMSHUB__COMETD__MAXSESSIONSPERBROWSER": "-1", "RUST_LOG": "warn,gmshub=info",
             "GMSHUB__COMETD__PUBLISHCHANNELS": "/load/**",
             "GMSHUB__DOS_FILTER__IPWHITELIST": "127.0.0.0/8",
             "GMSHUB__SQLITE__PATH": str(ROOT / "load-tests/results/logs/gmshub-bench.db")},
        path="/genesys/cometd",
    ),
    "faye": dict(
        cmd=["node", str(PEERS / "faye-server.cjs"), "0"],
        env={},
        path="/faye",
    ),
}
LISTENING = re.compile(r"listening on http://(127\.0\.0\.1:\d+)")

# --security: gmshub with its security layers on, and over TLS; their
# configuration files are written by prepare_security().
SECURE_ORIGIN = "http://widget.example"
SECURITY_DIR = RESULTS / "logs" / "security"
SECURE_INI = f"""[server]
username = ors
password = ors-secret
trusted-proxies = 10.0.0.0/8
[cors]
allowedOriginPatterns = {SECURE_ORIGIN}
allowCredentials = true
[port_restrictions]
/genesys/1/admin/* = 1
[header.1-frame]
pattern = /genesys/*
name = X-Frame-Options
value = SAMEORIGIN
"""
SERVERS["gmshub-secure"] = dict(SERVERS["gmshub"], env=dict(
    SERVERS["gmshub"]["env"], GMSHUB_CONFIG=str(SECURITY_DIR / "secure.ini")),
    flags=["--origin", SECURE_ORIGIN])
SERVERS["gmshub-tls"] = dict(SERVERS["gmshub"], env=dict(
    SERVERS["gmshub"]["env"], GMSHUB__TLS__LISTEN="127.0.0.1:0",
    GMSHUB__TLS__CERTIFICATE=str(SECURITY_DIR / "cert.pem"),
    GMSHUB__TLS__PRIVATE_KEY=str(SECURITY_DIR / "key.pem")),
    listening=re.compile(r"listening on https://(127\.0\.0\.1:\d+)"), scheme="https",
    flags=["--ca", str(SECURITY_DIR / "ca.pem")])
SECURITY_SERVERS = ["gmshub", "gmshub-secure", "gmshub-tls"]
COMPARED = ["gmshub", "faye"]   # the servers of the side-by-side run
# Shorter steps than the comparison with Faye: every run is repeated.
# Finer steps around gmshub's knees, so a few per cent show.
SECURITY_SCENARIOS = {
    "rooms": dict(SCENARIOS["rooms"], seconds=4, drain=1,
                  rates=[400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 2200, 2500, 2800, 3200]),
    "longpoll": dict(SCENARIOS["longpoll"], seconds=4, drain=2,
                     rates=[100, 150, 200, 250, 300, 350, 400, 500, 600]),
}
SECURITY_TARGET_COST = 0.05   # the layers may cost at most 5 % of the rate


class Interrupted(Exception):
    """SIGTERM to bench.py: unwinds like Ctrl-C so every finally runs."""


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------
class Server:
    """One server process, started fresh for one scenario; its output goes to a log."""

    def __init__(self, name, log_path):
        self.name, self.log_path, self.spec = name, log_path, SERVERS[name]
        self.proc, self.url = None, None

    def start(self):
        env = dict(os.environ, **self.spec["env"])
        with open(self.log_path, "wb") as log:
            # Own session: a Ctrl-C at the terminal reaches bench.py only,
            # which then stops the generator and the server in order.
            self.proc = subprocess.Popen(self.spec["cmd"], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            found = self.spec.get("listening", LISTENING).search(
                self.log_path.read_text(errors="replace"))
            if found:
                self.url = f"{self.spec.get('scheme', 'http')}://{found.group(1)}{self.spec['path']}"
                return self
            if self.proc.poll() is not None:
                why = f"exited with code {self.proc.returncode}"
                break
            time.sleep(0.1)
        else:
            why = f"printed no 'listening on' line in {SERVER_START_SECONDS} s"
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {why}\n"
                           f"last lines of {shorten(str(self.log_path))}:\n{indent(tail(self.log_path))}")

    def stop(self):
        """SIGTERM, then SIGKILL after a bound; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        return terminate(self.proc.pid, self.proc, SERVER_STOP_SECONDS, group=False)


def terminate(pid, proc, bound, group):
    """Stop one process (or the process group it leads) by its id."""
    kill = os.killpg if group else os.kill
    for sig, wait in ((signal.SIGTERM, bound), (signal.SIGKILL, 5)):
        try:
            kill(pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def generator_flags(params):
    flags = []
    for key, value in params.items():
        if key in ("scenario", "transport", "bound"):
            continue
        if isinstance(value, bool):
            flags += ["--" + key.replace("_", "-")] if value else []
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        flags += ["--" + key.replace("_", "-"), str(value)]
    return flags


def run_timeout(params):
    if "bound" in params:
        return params["bound"]
    steps = len(params.get("rates", [])) or 1
    per_step = params.get("seconds", 10) + params.get("drain", 0)
    ramp = params.get("clients", 0) / 100 * TIMEOUT_SECONDS_PER_100_CLIENTS
    return TIMEOUT_BASE_SECONDS + steps * per_step + ramp


def run_generator(generator, server, name, params, report_path, log_path):
    """Runs the generator once; returns (report or None, error or None, command)."""
    cmd = [generator] if not generator.endswith(".py") else [sys.executable, generator]
    cmd += ["--url", server.url, "--transport", params["transport"],
            "--scenario", params["scenario"], *generator_flags(params), *server.spec.get("flags", []),
            "--server-pid", str(server.proc.pid), "--label", server.name,
            "--json", str(report_path)]
    bound = run_timeout(params)
    print(f"  $ {' '.join(shorten(c) for c in cmd)}   (bound {bound:.0f} s)", flush=True)
    report_path.unlink(missing_ok=True)
    error = None
    with open(log_path, "w") as log:
        # Own process group, so a timeout can stop the generator's worker
        # processes (--processes N) along with it.
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True)
        echo = threading.Thread(target=copy_lines, args=(proc.stdout, log), daemon=True)
        echo.start()
        try:
            rc = proc.wait(bound)
            if rc != 0:
                error = f"generator exited with code {rc}"
        except subprocess.TimeoutExpired:
            error = f"generator killed after {bound:.0f} s"
        finally:
            if proc.poll() is None:
                terminate(proc.pid, proc, 5, group=True)
            else:
                # A worker that outlived its parent would hold thousands of
                # sockets into the next run: end whatever is left of the group.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            echo.join(5)
    report = None
    if report_path.exists():
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError) as e:
            error = error or f"unreadable report: {e}"
    elif error is None:
        error = "generator wrote no report"
    if error:
        print(f"  !! {name} on {server.name}: {error}; last lines:\n{indent(tail(log_path))}", flush=True)
    return report, error, cmd


def copy_lines(stream, log):
    """Shows the generator's own progress live, and keeps it in its log."""
    for line in stream:
        log.write(line)
        log.flush()
        print("    | " + line.rstrip(), flush=True)


def shorten(arg):
    return os.path.relpath(arg, ROOT) if arg.startswith(str(ROOT) + "/") else arg


def indent(text, prefix="     "):
    return "\n".join(prefix + line for line in text.splitlines())


# --------------------------------------------------------------------------
# Facts about the machine and versions
# --------------------------------------------------------------------------
def command_output(cmd):
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_facts():
    cpu = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    faye = None
    try:
        lock = json.loads((PEERS / "package-lock.json").read_text())
        faye = lock["packages"]["node_modules/faye"]["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
        crate_version = cargo["workspace"]["package"]["version"]
    except (OSError, ValueError, KeyError):
        crate_version = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_kb": mem_kb,
        "kernel": f"{os.uname().sysname} {os.uname().release}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": command_output(["git", "rev-parse", "HEAD"]),
        "gmshub_version": {"crate": crate_version,
                           "git": command_output(["git", "describe", "--always", "--dirty"])},
        "faye_version": faye,
        "node_version": command_output(["node", "--version"]),
    }


# --------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------
def clean(step):
    """No loss and no errors. (missed < 0 means duplicates, not loss.)"""
    return (step.get("missed") or 0) <= 0 and (step.get("errors") or 0) == 0


def steps_of(results, server, name):
    run = results["runs"].get(server, {}).get(name)
    return ((run or {}).get("report") or {}).get("steps") or []


def best_within(steps, target_ms):
    """The highest-rate step with p99 within target and nothing lost."""
    good = [s for s in steps if clean(s) and s.get("p99_ms") is not None and s["p99_ms"] <= target_ms]
    return max(good, key=lambda s: s["rate"]) if good else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r >= 0.01 else f"{r:.2g}×"


def fmt_num(x, digits=0):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "—"
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def summary_rows(results):
    """Rows of (scenario, measure, gmshub cell, faye cell, ratio) for the table."""
    servers = results["servers"]
    g, f = servers[0], (servers[1] if len(servers) > 1 else None)
    rows = []

    def run_error(server, name):
        run = results["runs"].get(server, {}).get(name)
        if run is None:
            return "not run"
        return None if run.get("report") else f"failed: {run.get('error')}"

    def cell(server, name, text):
        return run_error(server, name) or text

    for name in results["scenarios"]:
        if name in ("rooms", "longpoll"):
            target = ROOMS_P99_TARGET_MS if name == "rooms" else LONGPOLL_P99_TARGET_MS
            best = {s: best_within(steps_of(results, s, name), target) for s in servers}

            def none_cell(s):
                # Nothing met the target: say how far off the lowest step was.
                first = (steps_of(results, s, name) or [None])[0]
                if not first:
                    return "no steps"
                lost = "" if clean(first) else f", missed {fmt_num(first.get('missed'))}"
                return f"none (at {fmt_num(first['rate'])}/s: p99 {fmt_ms(first.get('p99_ms'))} ms{lost})"

            def rate_cell(s):
                b = best[s]
                if not b:
                    return cell(s, name, none_cell(s))
                # Met the target at the top step: the real limit is higher.
                top = b["rate"] >= max(results["scenarios"][name].get("rates") or [0])
                return cell(s, name, f"≥ {fmt_num(b['rate'])}/s (top step)" if top else f"{fmt_num(b['rate'])}/s")

            def deliv_cell(s):
                b = best[s]
                return cell(s, name, f"{fmt_num(b['delivered_per_sec'])}/s (p99 {fmt_ms(b['p99_ms'])} ms)"
                            if b else "—")
            val = lambda s, k: best[s][k] if s and best.get(s) else None
            rows.append((name, f"highest publish rate, p99 ≤ {target} ms, no loss",
                         rate_cell(g), rate_cell(f) if f else "", ratio(val(g, "rate"), val(f, "rate"))))
            rows.append((name, "delivered at that rate",
                         deliv_cell(g), deliv_cell(f) if f else "",
                         ratio(val(g, "delivered_per_sec"), val(f, "delivered_per_sec"))))
        elif name == "fanout":
            by_rate = {s: {st["rate"]: st for st in steps_of(results, s, name)} for s in servers}
            # Rates every server with steps reached (a failed run is left out, not an empty set).
            reached = [set(v) for v in by_rate.values() if v]
            common = set.intersection(*reached) if reached else set()
            top = max(common) if common else None
            at = {s: by_rate[s].get(top) for s in servers}

            def fan_cell(s, key, unit):
                st = at.get(s)
                if not st:
                    return cell(s, name, "no common rate")
                text = f"{fmt_num(st[key]) if key != 'p99_ms' else fmt_ms(st[key])}{unit}"
                return text + ("" if clean(st) else f" (missed {fmt_num(st['missed'])})")
            val = lambda s, k: at[s][k] if s and at.get(s) else None
            label = f"at {fmt_num(top)} msg/s (highest common rate)" if top else "at the highest common rate"
            rows.append((name, f"delivered/s {label}", fan_cell(g, "delivered_per_sec", "/s"),
                         fan_cell(f, "delivered_per_sec", "/s") if f else "",
                         ratio(val(g, "delivered_per_sec"), val(f, "delivered_per_sec"))))
            rows.append((name, f"p99 {label} (lower is better)", fan_cell(g, "p99_ms", " ms"),
                         fan_cell(f, "p99_ms", " ms") if f else "", ratio(val(g, "p99_ms"), val(f, "p99_ms"))))
        elif name == "idle":
            rep = {s: (results["runs"].get(s, {}).get(name) or {}).get("report") for s in servers}
            val = lambda s, k: rep[s].get(k) if s and rep.get(s) else None
            for key, label, show in (
                ("connected", "sessions connected", lambda r: f"{fmt_num(r['connected'])} of {fmt_num(r['clients'])}"
                 + (f" ({fmt_num(r['failed'])} failed)" if r.get("failed") else "")),
                ("rss_kb_per_session", "server KB per session (lower is better)",
                 lambda r: fmt_num(r.get("rss_kb_per_session"), 1)),
                ("ramp_up_seconds", "seconds to connect all (lower is better)",
                 lambda r: fmt_num(r.get("ramp_up_seconds"), 1)),
            ):
                rows.append((name, label, cell(g, name, show(rep[g]) if rep.get(g) else ""),
                             cell(f, name, show(rep[f]) if rep.get(f) else "") if f else "",
                             ratio(val(g, key), val(f, key))))
        elif name == "churn":
            ch = {s: ((results["runs"].get(s, {}).get(name) or {}).get("report") or {}).get("churn")
                  for s in servers}
            val = lambda s, k: ch[s].get(k) if s and ch.get(s) else None

            def churn_cell(s):
                c = ch.get(s)
                if not c:
                    return cell(s, name, "no churn figures")
                return f"{fmt_num(c['cycles_per_sec'])}/s (p99 {fmt_ms(c.get('p99_ms'))} ms" + (
                    f", {fmt_num(c['errors'])} errors)" if c.get("errors") else ")")
            rows.append((name, "handshake+connect+disconnect cycles/s", churn_cell(g),
                         churn_cell(f) if f else "", ratio(val(g, "cycles_per_sec"), val(f, "cycles_per_sec"))))
    return rows


def machine_line(m):
    mem = f"{m['memory_kb'] / 1048576:.0f} GiB" if m.get("memory_kb") else "? GiB"
    return (f"{m.get('nproc')} × {m.get('cpu')}, {mem}, {m.get('kernel')}; "
            f"gmshub {m['gmshub_version'].get('crate')} ({m['gmshub_version'].get('git')}), "
            f"Faye {m.get('faye_version')} on Node {m.get('node_version')}")


def markdown(results):
    m = results["machine"]
    servers = results["servers"]
    out = [f"# gmshub vs Faye: {m['date'][:10]}{' (quick)' if results['quick'] else ''}", "",
           f"Machine: {machine_line(m)}.  ",
           f"Run at {m['date']}, commit {m.get('git_commit')}; both servers driven by the same "
           f"generator (`{shorten(results['generator'])}`), one after the other, each restarted "
           f"for every scenario. Generator and server share the machine's cores.", ""]
    if Path(results["generator"]).name != "bayeux-load":
        out += [f"**Generator `{Path(results['generator']).name}`, not bayeux-load: "
                "these figures only test bench.py's plumbing.**", ""]
    if results.get("interrupted"):
        out += ["**Interrupted: the figures below are partial.**", ""]
    pair = len(servers) == 2        # the ratio column needs both servers
    out += ["## Summary", "",
            f"| scenario | measure | {' | '.join(servers)} |" + (f" {' ÷ '.join(servers)} |" if pair else ""),
            "|---|---|" + "---|" * (len(servers) + pair)]
    for name, measure, gcell, fcell, r in summary_rows(results):
        cells = [gcell, fcell][:len(servers)] + ([r] if pair else [])
        out.append(f"| {name} | {measure} | {' | '.join(cells)} |")
    if pair:
        out += ["", "Ratios are gmshub ÷ Faye: above 1 is better for rates, below 1 for latency, "
                "memory and connect time."]
    out += ["", "## Runs", ""]
    for name, params in results["scenarios"].items():
        desc = ", ".join(f"{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in params.items() if k not in ("scenario", "transport"))
        out += [f"### {name}: `{params['scenario']}` over {params['transport']}", "", desc, ""]
        for server in servers:
            run = results["runs"].get(server, {}).get(name)
            if run is None:
                continue
            rep = run.get("report") or {}
            facts = []
            if rep:
                facts.append(f"connected {fmt_num(rep.get('connected'))} of {fmt_num(rep.get('clients'))}"
                             + (f", {fmt_num(rep.get('failed'))} failed" if rep.get("failed") else ""))
                facts.append(f"ramp-up {fmt_num(rep.get('ramp_up_seconds'), 1)} s")
                if rep.get("server_peak_rss_kb"):
                    facts.append(f"server peak RSS {rep['server_peak_rss_kb'] / 1024:,.0f} MiB")
            if run.get("error"):
                facts.append(f"**{run['error']}**")
            out += [f"**{server}**: " + "; ".join(facts), ""]
            if rep.get("steps"):
                out += ["| rate/s | delivered/s | p50 ms | p99 ms | max ms | missed | server CPU % | generator CPU % |",
                        "|---:|---:|---:|---:|---:|---:|---:|---:|"]
                for s in rep["steps"]:
                    out.append(f"| {fmt_num(s['rate'])} | {fmt_num(s.get('delivered_per_sec'))} | "
                               f"{fmt_ms(s.get('p50_ms'))} | {fmt_ms(s.get('p99_ms'))} | {fmt_ms(s.get('max_ms'))} | "
                               f"{fmt_num(s.get('missed'))} | {fmt_num(s.get('server_cpu_percent'))} | "
                               f"{fmt_num(s.get('generator_cpu_percent'))} |")
                out.append("")
            if rep.get("churn"):
                c = rep["churn"]
                out += [f"{fmt_num(c.get('cycles'))} cycles in {fmt_num(c.get('seconds'), 1)} s: "
                        f"{fmt_num(c.get('cycles_per_sec'))}/s, p50 {fmt_ms(c.get('p50_ms'))} ms, "
                        f"p99 {fmt_ms(c.get('p99_ms'))} ms, {fmt_num(c.get('errors'))} errors", ""]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# The plot: p99 (log) against delivered/s, one panel per stepped scenario
# --------------------------------------------------------------------------
COLORS = {"gmshub": "#1f77b4", "faye": "#d62728"}
PANEL_W, PANEL_H = 420, 330
MARGIN = dict(left=62, right=18, top=40, bottom=52)


def nice_step(span, ticks=5):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def si(x):
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


def ms_tick(ms):
    """Tick labels in ms, but whole seconds past 1,000 ms, to stay narrow."""
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g}"


def svg_plot(results):
    panels = [n for n in results["scenarios"] if n in ("rooms", "fanout", "longpoll")]
    servers = results["servers"]
    width = max(len(panels) * PANEL_W, 720)     # room for the legend
    height = PANEL_H + 40
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
          f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
          f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, name in enumerate(panels):
        el += panel(results, name, servers, i * PANEL_W, 0)
    # One legend for all panels, at the bottom.
    x, y = 20, PANEL_H + 22
    for server in servers:
        el += [f'<line x1="{x}" y1="{y}" x2="{x + 26}" y2="{y}" stroke="{COLORS.get(server, "#555")}" stroke-width="2"/>',
               marker(server, x + 13, y, True),
               f'<text x="{x + 32}" y="{y + 4}">{escape(server)}</text>']
        x += 110
    el += [marker(servers[0] if servers else "gmshub", x + 13, y, False, color="#555"),
           f'<text x="{x + 24}" y="{y + 4}">hollow: step lost messages</text>',
           f'<line x1="{x + 210}" y1="{y}" x2="{x + 236}" y2="{y}" stroke="#888" stroke-dasharray="5,4"/>',
           f'<text x="{x + 242}" y="{y + 4}">{ROOMS_P99_TARGET_MS} ms target</text>',
           "</svg>"]
    return "\n".join(el) + "\n"


def marker(server, x, y, filled, color=None):
    color = color or COLORS.get(server, "#555")
    fill = color if filled else "white"
    if server == "faye":   # squares for Faye, circles for gmshub: readable in grey too
        return (f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{fill}" '
                f'stroke="{color}" stroke-width="1.5"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.2" fill="{fill}" stroke="{color}" stroke-width="1.5"/>'


def panel(results, name, servers, ox, oy):
    params = results["scenarios"][name]
    series = {s: [st for st in steps_of(results, s, name)
                  if st.get("p99_ms") is not None and st.get("delivered_per_sec") is not None]
              for s in servers}
    x0, x1 = ox + MARGIN["left"], ox + PANEL_W - MARGIN["right"]
    y0, y1 = oy + PANEL_H - MARGIN["bottom"], oy + MARGIN["top"]    # y0 is the bottom
    title = (f"{name}: {params['scenario']} over {params['transport']}, "
             f"{fmt_num(params.get('clients'))} clients")
    el = [f'<text x="{ox + PANEL_W / 2}" y="{oy + 20}" text-anchor="middle" font-size="13" '
          f'font-weight="bold">{escape(title)}</text>']
    points = [st for pts in series.values() for st in pts]
    if not points:
        el += [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#333"/>',
               f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" fill="#777">no data</text>']
        return el

    # x: linear from 0; y: log10 over whole decades that include the 10 ms line.
    xmax = max(st["delivered_per_sec"] for st in points) or 1
    xstep = nice_step(xmax)
    xmax = math.ceil(xmax * 1.04 / xstep) * xstep
    p99s = [max(st["p99_ms"], 0.01) for st in points] + [ROOMS_P99_TARGET_MS]
    lo, hi = math.floor(math.log10(min(p99s))), math.ceil(math.log10(max(p99s)))
    if hi == lo:
        hi += 1
    sx = lambda v: x0 + (x1 - x0) * v / xmax
    sy = lambda ms: y0 - (y0 - y1) * (math.log10(max(ms, 0.01)) - lo) / (hi - lo)

    # Grid and ticks.
    for d in range(lo, hi + 1):
        y = sy(10 ** d)
        el.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        el.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{ms_tick(10 ** d)}</text>')
        if d < hi:
            for m in (2, 5):
                ym = sy(m * 10 ** d)
                el.append(f'<line x1="{x0}" y1="{ym:.1f}" x2="{x1}" y2="{ym:.1f}" stroke="#f0f0f0"/>')
    v = 0.0
    while v <= xmax + 1e-9:
        x = sx(v)
        el.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#eee"/>')
        el.append(f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{si(v)}</text>')
        v += xstep
    el.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#333"/>')
    el.append(f'<text x="{(x0 + x1) / 2}" y="{y0 + 38}" text-anchor="middle">delivered messages per second</text>')
    el.append(f'<text transform="translate({ox + 16},{(y0 + y1) / 2}) rotate(-90)" '
              f'text-anchor="middle">p99 latency (ms, log)</text>')
    y10 = sy(ROOMS_P99_TARGET_MS)
    el.append(f'<line x1="{x0}" y1="{y10:.1f}" x2="{x1}" y2="{y10:.1f}" stroke="#888" '
              f'stroke-width="1.2" stroke-dasharray="5,4"/>')

    for server, pts in series.items():
        if not pts:
            continue
        color = COLORS.get(server, "#555")
        path = " ".join(f"{sx(st['delivered_per_sec']):.1f},{sy(st['p99_ms']):.1f}" for st in pts)
        el.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for st in pts:
            el.append(marker(server, sx(st["delivered_per_sec"]), sy(st["p99_ms"]), clean(st)))
        # The last step's published rate, to tell where each curve stopped.
        # Kept inside the frame: right of the point in the left half, below it near the top.
        last = pts[-1]
        lx, ly = sx(last["delivered_per_sec"]), sy(last["p99_ms"])
        anchor, lx = ("start", lx + 8) if lx < (x0 + x1) / 2 else ("end", lx - 8)
        ly = ly + 16 if ly - 8 < y1 + 12 else ly - 8
        el.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="10" '
                  f'fill="{color}">{fmt_num(last["rate"])} msg/s</text>')
    return el


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def parse_args():
    p = argparse.ArgumentParser(description="Benchmark gmshub against Faye with bayeux-load.")
    p.add_argument("--quick", action="store_true", help="a short smoke-sized run of each scenario")
    p.add_argument("--only", help=f"scenarios to run, comma-separated (of {','.join(SCENARIOS)})")
    p.add_argument("--servers", help=f"servers to run, comma-separated (of {','.join(COMPARED)})")
    p.add_argument("--security", action="store_true",
                   help="the cost of the security layers and of TLS (rooms and longpoll, repeated)")
    p.add_argument("--repeat", type=int, default=3, help="--security: runs of each server (3)")
    p.add_argument("--no-build", action="store_true", help="skip cargo build")
    p.add_argument("--generator", default=str(ROOT / "target/release/bayeux-load"),
                   help="the load generator (a .py path runs with this Python)")
    p.add_argument("--out", default=str(RESULTS), help="results folder")
    a = p.parse_args()
    a.only = pick(a.only, SCENARIOS, "--only")
    a.servers = pick(a.servers, COMPARED, "--servers")
    if a.security:
        a.servers = SECURITY_SERVERS
    return a


def pick(arg, known, flag):
    if not arg:
        return list(known)
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return [n for n in known if n in names]     # keep the canonical order


def prepare(args):
    if not args.no_build:
        print("== cargo build --release -p gmshub -p load-tests", flush=True)
        subprocess.run(["cargo", "build", "--release", "-p", "gmshub", "-p", "load-tests"], cwd=ROOT, check=True)
    if "faye" in args.servers:
        if shutil.which("node") is None:
            sys.exit("faye needs node on PATH")
        if not (PEERS / "node_modules").is_dir():
            print("== npm ci --prefix load-tests/peers", flush=True)
            subprocess.run(["npm", "ci", "--prefix", str(PEERS), "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    needed = [args.generator] + ([SERVERS["gmshub"]["cmd"][0]] if "gmshub" in args.servers else [])
    for path in needed:
        if not Path(path).is_file():
            sys.exit(f"missing {path}: build it (cargo build --release -p gmshub -p load-tests)")
    # Thousands of sockets per process: lift the soft open-files limit to the
    # hard one; the servers and the generator inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def print_steps(report):
    for s in report.get("steps") or []:
        print(f"  rate {s['rate']:>7,}/s  delivered {fmt_num(s.get('delivered_per_sec')):>11}/s  "
              f"p50 {fmt_ms(s.get('p50_ms')):>6}  p99 {fmt_ms(s.get('p99_ms')):>6}  max {fmt_ms(s.get('max_ms')):>6} ms  "
              f"missed {fmt_num(s.get('missed'))}  cpu server {fmt_num(s.get('server_cpu_percent'))}% "
              f"generator {fmt_num(s.get('generator_cpu_percent'))}%", flush=True)
    if report.get("steps") == [] and report.get("scenario") in ("rooms", "fanout"):
        print("  no steps", flush=True)
    if report.get("scenario") == "idle":
        print(f"  connected {fmt_num(report.get('connected'))} of {fmt_num(report.get('clients'))} in "
              f"{fmt_num(report.get('ramp_up_seconds'), 1)} s, {fmt_num(report.get('rss_kb_per_session'), 1)} KB "
              f"per session", flush=True)
    if report.get("churn"):
        c = report["churn"]
        print(f"  churn {fmt_num(c.get('cycles_per_sec'))} cycles/s, p99 {fmt_ms(c.get('p99_ms'))} ms, "
              f"{fmt_num(c.get('errors'))} errors", flush=True)


def run_one(args, server_name, name, params, logs, prefix=""):
    """One server, fresh, driven through one scenario; returns the run's record."""
    run = {"error": None, "report": None}
    base = logs / f"{prefix}{server_name}-{name}"
    server = Server(server_name, Path(f"{base}.server.log"))
    started = time.monotonic()
    try:
        server.start()
        print(f"  {server_name} pid {server.proc.pid} at {server.url}", flush=True)
        report, error, cmd = run_generator(args.generator, server, name, params,
                                           Path(f"{base}.report.json"), Path(f"{base}.generator.log"))
        run.update(report=report, error=error, command=[shorten(c) for c in cmd])
        if report:
            print_steps(report)
    except RuntimeError as e:
        run["error"] = str(e).splitlines()[0]
        print(f"  !! {e}", flush=True)
    except (KeyboardInterrupt, Interrupted):
        run["error"] = run["error"] or "interrupted"
        raise
    finally:
        run["server_exit_code"] = server.stop()
        run["wall_seconds"] = round(time.monotonic() - started, 1)
        run["server_log"] = shorten(str(server.log_path))
    time.sleep(PAUSE_BETWEEN_RUNS_SECONDS)
    return run


def run_all(args, results, logs):
    scenarios = results["scenarios"]
    for server_name in args.servers:
        results["runs"][server_name] = {}
        for name, params in scenarios.items():
            print(f"\n== {server_name}: {name} ({params['scenario']} over {params['transport']})", flush=True)
            results["runs"][server_name][name] = run_one(args, server_name, name, params, logs)


def logs_folder(out):
    """Where server and generator logs go (git ignores them)."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / ".gitignore").write_text("*\n")
    return logs


# --------------------------------------------------------------------------
# --security: the layers' and TLS's cost
# --------------------------------------------------------------------------
def prepare_security():
    """The secure server's configuration and the TLS server's certificate."""
    SECURITY_DIR.mkdir(parents=True, exist_ok=True)
    (SECURITY_DIR / "secure.ini").write_text(SECURE_INI)
    d = SECURITY_DIR
    # A CA and a server certificate it signs (rustls refuses a CA as the server's).
    for cmd in (
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "ca-key.pem", "-out", d / "ca.pem", "-days", "2", "-subj", "/CN=gmshub bench CA"],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "key.pem", "-out", d / "cert.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", d / "cert.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca-key.pem",
         "-CAcreateserial", "-out", d / "cert.pem", "-days", "2", "-extfile", d / "ext.cnf"],
    ):
        (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)


def run_security(args):
    prepare_security()
    out = Path(args.out)
    logs = logs_folder(out)
    scenarios = {n: p for n, p in SECURITY_SCENARIOS.items() if n in args.only} or SECURITY_SCENARIOS
    results = {"machine": machine_facts(), "servers": SECURITY_SERVERS, "repeat": args.repeat,
               "generator": args.generator, "scenarios": scenarios,
               "runs": {n: {s: [] for s in SECURITY_SERVERS} for n in scenarios}, "interrupted": False}
    print(f"bench --security: {machine_line(results['machine'])}; {args.repeat} repeats", flush=True)
    try:
        # Interleaved (each repeat runs every server once), so the machine's
        # drift spreads over all of them alike.
        for repeat in range(args.repeat):
            for name, params in scenarios.items():
                for server_name in SECURITY_SERVERS:
                    print(f"\n== repeat {repeat + 1}: {server_name}: {name}", flush=True)
                    results["runs"][name][server_name].append(
                        run_one(args, server_name, name, params, logs, prefix="security-"))
    except (KeyboardInterrupt, Interrupted):
        results["interrupted"] = True
    day = results["machine"]["date"][:10]
    suffix = "-interrupted" if results["interrupted"] else ""
    text = security_markdown(results)
    (out / f"security-{day}{suffix}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / f"security-{day}{suffix}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {shorten(str(out / f'security-{day}{suffix}.md'))} and .json")
    return 130 if results["interrupted"] else 0


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def spread(xs, show):
    """median (min-max) of xs, each shown by `show`."""
    if not xs:
        return "—"
    return f"{show(median(xs))} ({show(min(xs))}-{show(max(xs))})" if len(xs) > 1 else show(xs[0])


def cpu_per_1000(steps):
    """Server CPU milliseconds per 1000 deliveries over `steps` (of equal length)."""
    cpu = sum(st.get("server_cpu_percent") or 0 for st in steps)
    delivered = sum(st.get("delivered_per_sec") or 0 for st in steps)
    return cpu * 10_000 / delivered if steps and delivered else None


def security_rows(results, name):
    """Per server: the rates at the p99 bound, and CPU per 1000 deliveries
    over the steps every run passed (equal loads), each with its ratio to
    plain gmshub."""
    target = ROOMS_P99_TARGET_MS if name == "rooms" else LONGPOLL_P99_TARGET_MS
    runs = results["runs"][name]
    reports = {s: [r["report"] for r in runs[s] if r.get("report")] for s in results["servers"]}
    best = {s: [(best_within(rep.get("steps") or [], target) or {}).get("rate", 0) for rep in reports[s]]
            for s in reports}
    passed = [{st["rate"] for st in rep.get("steps") or []
               if clean(st) and st.get("p99_ms") is not None and st["p99_ms"] <= target}
              for reps in reports.values() for rep in reps]
    common = set.intersection(*passed) if passed else set()
    cpu = {s: [c for rep in reports[s]
               if (c := cpu_per_1000([st for st in rep.get("steps") or [] if st["rate"] in common]))]
           for s in reports}
    base_rate, base_cpu = median(best.get("gmshub") or []), median(cpu.get("gmshub") or [])
    rows = []
    for s in results["servers"]:
        rate_ratio = median(best[s]) / base_rate if base_rate and best[s] else None
        cpu_ratio = median(cpu[s]) / base_cpu if base_cpu and cpu[s] else None
        rows.append(dict(server=s, rate=spread(best[s], lambda v: f"{v:,.0f}/s"),
                         rate_ratio=rate_ratio, cpu=spread(cpu[s], lambda v: f"{v:.2f} ms"),
                         cpu_ratio=cpu_ratio, runs=len(reports[s])))
    steps = f"{fmt_num(min(common))}-{fmt_num(max(common))}/s" if common else "no common steps"
    return target, steps, rows


def security_markdown(results):
    m = results["machine"]
    out = [f"# gmshub: the cost of the security layers and of TLS, {m['date'][:10]}", "",
           f"Machine: {machine_line(m)}.  ",
           f"Commit {m.get('git_commit')}; {results['repeat']} runs of each server, interleaved; "
           f"every run on a fresh server, driven by `{shorten(results['generator'])}`.", "",
           "- `gmshub`: the defaults.",
           "- `gmshub-secure`: Basic authentication for every group, CORS with the generator's "
           f"`Origin: {SECURE_ORIGIN}` listed (every request checked and answered with CORS "
           "headers), trusted proxies, a `[port_restrictions]` rule and a `[header.<name>]` rule.",
           "- `gmshub-tls`: the defaults, over gmshub's TLS listener (TLS 1.3, a P-256 certificate).", ""]
    if results.get("interrupted"):
        out += ["**Interrupted: the figures below are partial.**", ""]
    for name, params in results["scenarios"].items():
        target, steps, rows = security_rows(results, name)
        out += [f"## {name}: {params['clients']:,} {params['transport']} clients", "",
                f"| server | highest rate, p99 ≤ {target} ms, no loss: median (min-max) | ÷ gmshub "
                f"| server CPU per 1000 deliveries, steps {steps} | ÷ gmshub | runs |",
                "|---|---|---|---|---|---|"]
        times = lambda r: f"{r:.2f}×" if r else "—"
        for r in rows:
            out.append(f"| {r['server']} | {r['rate']} | {times(r['rate_ratio'])} | {r['cpu']} "
                       f"| {times(r['cpu_ratio'])} | {r['runs']} |")
        secure = next((r for r in rows if r["server"] == "gmshub-secure"), None)
        if secure and secure["rate_ratio"] is not None:
            cost = 1 - secure["rate_ratio"]
            verdict = "within" if cost <= SECURITY_TARGET_COST else "over"
            out += ["", f"Security layers cost {cost * 100:.1f} % of the rate ({verdict} the "
                    f"{SECURITY_TARGET_COST * 100:.0f} % target); CPU per delivery "
                    f"{((secure['cpu_ratio'] or 1) - 1) * 100:+.1f} %."]
        out.append("")
    return "\n".join(out) + "\n"


def write_outputs(results, out, suffix, latest):
    day = results["machine"]["date"][:10]
    names = [f"bench-{day}{suffix}"] + ([f"latest{suffix}"] if latest else [])
    texts = {"json": json.dumps(results, indent=1) + "\n", "md": markdown(results), "svg": svg_plot(results)}
    for base in names:
        for ext, text in texts.items():
            (out / f"{base}.{ext}").write_text(text)
    return [out / f"{names[0]}.{ext}" for ext in texts]


def main():
    args = parse_args()

    def on_sigterm(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGTERM, on_sigterm)

    prepare(args)
    if args.security:
        return run_security(args)
    scenarios = {}
    for name in args.only:
        params = dict(SCENARIOS[name])
        if args.quick:
            params.update(QUICK.get(name, {}))
        scenarios[name] = params

    out = Path(args.out)
    logs = logs_folder(out)

    results = {"machine": machine_facts(), "quick": args.quick, "servers": args.servers,
               "generator": args.generator, "scenarios": scenarios, "runs": {}, "interrupted": False}
    # A quick or filtered run gets its own file names, so it never replaces
    # the figures of a full run.
    full = set(args.only) == set(SCENARIOS) and set(args.servers) == set(COMPARED)
    suffix = ("-quick" if args.quick else "") + ("" if full else "-partial")

    print(f"bench: {machine_line(results['machine'])}", flush=True)
    print(f"bench: servers {', '.join(args.servers)}; scenarios {', '.join(scenarios)}"
          f"{' (quick)' if args.quick else ''}; logs in {shorten(str(logs))}", flush=True)
    try:
        run_all(args, results, logs)
    except (KeyboardInterrupt, Interrupted):
        results["interrupted"] = True
        print("\nbench: interrupted; writing what was measured", flush=True)
    # An interrupted run is written under its own names and leaves latest.* alone.
    if results["interrupted"]:
        suffix += "-interrupted"
    files = write_outputs(results, out, suffix, latest=not results["interrupted"])

    print("\n" + "\n".join(line for line in markdown(results).split("\n## Runs")[0].splitlines()))
    print("wrote " + ", ".join(shorten(str(f)) for f in files))
    failed = [f"{s}/{n}" for s, runs in results["runs"].items() for n, r in runs.items() if r.get("error")]
    if failed:
        print(f"bench: {len(failed)} run(s) had errors: {', '.join(failed)}")
    return 130 if results["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
