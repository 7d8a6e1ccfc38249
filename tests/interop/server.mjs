// Runs the gmshub binary for a test: on a free loopback port, ready when it
// says it listens, always stopped at the end (SIGTERM, then SIGKILL after a
// bound). Every child is also tracked process-wide so that a test runner
// exiting early cannot leave one behind.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const GMSHUB_BIN = process.env.GMSHUB_BIN
  ? resolve(process.env.GMSHUB_BIN)
  : resolve(here, "../../target/debug/gmshub");

const READY_TIMEOUT_MS = 15_000;
// gmshub's graceful stop takes at most its suspending wait (5 s here), so a
// SIGTERM gets a little longer than that before SIGKILL.
const TERM_TIMEOUT_MS = 7_000;
const OUTPUT_KEEP = 64 * 1024;

const running = new Set();
const dataDirs = [];
process.on("exit", () => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});
const killAll = () => {
  for (const child of running) child.kill("SIGKILL");
};
process.on("exit", killAll);
// 'exit' does not run when a signal ends the process: kill the children,
// then let the signal do what it would have done.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort() {
  return new Promise((ok, fail) => {
    const probe = net.createServer();
    probe.unref();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/**
 * Starts gmshub on `port` (a free one by default). `env` adds variables,
 * e.g. { GMSHUB__COMETD__TIMEOUT: "5000" }. Resolves once the server logged
 * that it listens and a TCP connection to it succeeds. Its clients may
 * publish on every channel (the suites use channels of their own) unless
 * `env` sets GMSHUB__COMETD__PUBLISHCHANNELS, and loopback is on the DoS
 * filter's whitelist (the suites make many sessions and requests from it)
 * unless `env` sets GMSHUB__DOS_FILTER__IPWHITELIST. Its graceful stop takes
 * the shortest wait GMS allows (5 s: OFFLINE for 2.5 s, then the clients
 * are moved), so that stopping every suite's servers stays quick.
 */
export async function startServer({ port, env = {} } = {}) {
  env = {
    GMSHUB__COMETD__PUBLISHCHANNELS: "/**",
    GMSHUB__DOS_FILTER__IPWHITELIST: "127.0.0.0/8",
    GMSHUB__SML__SUSPENDING_WAIT_TIMEOUT: "5",
    ...env,
  };
  if (!existsSync(GMSHUB_BIN)) {
    throw new Error(`gmshub binary not found at ${GMSHUB_BIN}: build it first or set GMSHUB_BIN`);
  }
  port ??= await freePort();
  // Its SQLite store in a folder of its own (kept across restartServer,
  // which passes the same env), never in the working tree.
  if (!env.GMSHUB__SQLITE__PATH) {
    const dir = mkdtempSync(join(tmpdir(), "gmshub-interop-"));
    dataDirs.push(dir);
    env = { ...env, GMSHUB__SQLITE__PATH: join(dir, "gmshub.db") };
  }
  const child = spawn(GMSHUB_BIN, ["--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let output = "";
  const exited = new Promise((ok) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      ok({ code, signal });
    });
  });
  const ready = new Promise((ok) => {
    const collect = (chunk) => {
      output = (output + chunk).slice(-OUTPUT_KEEP);
      if (output.includes("gmshub listening on")) ok();
    };
    child.stdout.setEncoding("utf8").on("data", collect);
    child.stderr.setEncoding("utf8").on("data", collect);
  });
  const server = {
    port,
    origin: `http://127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}/genesys/cometd`,
    env,
    child,
    /** Date.now() once it accepts connections. */
    readyAt: null,
    exited,
    output: () => output,
    /** Set by stop(): { code, signal, forced, at } (`at`: Date.now() at exit). */
    stopped: null,
    async stop(how) {
      server.stopped = { ...(await stopChild(child, exited, how)), at: Date.now() };
      return server.stopped;
    },
  };
  let timer;
  let outcome = await Promise.race([
    ready.then(() => "ready"),
    exited.then(({ code, signal }) => `exited (code ${code}, signal ${signal})`),
    new Promise((ok) => (timer = setTimeout(ok, READY_TIMEOUT_MS, `not ready in ${READY_TIMEOUT_MS} ms`))),
  ]);
  clearTimeout(timer);
  if (outcome === "ready") {
    await waitForPort(port, 5_000).catch((e) => (outcome = e.message));
  }
  if (outcome !== "ready") {
    await server.stop("SIGKILL");
    throw new Error(`gmshub ${outcome}; its output:\n${output}`);
  }
  server.readyAt = Date.now();
  return server;
}

/**
 * Stops `server` and starts a new one on the same port with the same
 * environment. `how` is "SIGKILL" (a crash: the new process knows nothing of
 * the old sessions and no client was told anything) or "SIGTERM" (graceful).
 */
export async function restartServer(server, how = "SIGKILL") {
  await server.stop(how);
  return startServer({ port: server.port, env: server.env });
}

/**
 * Sends `how` (SIGTERM by default) and waits for the exit; after
 * TERM_TIMEOUT_MS sends SIGKILL. Resolves to { code, signal, forced }.
 */
async function stopChild(child, exited, how = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { ...(await exited), forced: false };
  }
  child.kill(how);
  let timer;
  const inTime = await Promise.race([
    exited.then(() => true),
    new Promise((ok) => (timer = setTimeout(ok, TERM_TIMEOUT_MS, false))),
  ]);
  clearTimeout(timer);
  if (!inTime) child.kill("SIGKILL");
  return { ...(await exited), forced: !inTime };
}

/** Resolves once a TCP connection to 127.0.0.1:port succeeds. */
function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((ok, fail) => {
    const attempt = () => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        ok();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline) fail(new Error(`port ${port} not accepting connections`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}
