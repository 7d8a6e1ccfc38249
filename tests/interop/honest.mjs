// A well-behaved widget for the attack suite (tests/attacks.rs): the
// official CometD JavaScript client, over WebSocket as an application gets
// it, from its own client address (every socket it opens is bound to
// LOCAL_ADDRESS, 127.0.0.2 by default, while the attacker uses 127.0.0.1).
// It subscribes to its channel and publishes a numbered message there every
// PERIOD_MS, timing each from publish to delivery.
//
//   node honest.mjs http://127.0.0.1:PORT/genesys/cometd /honest/1
//
// It prints `ready` once subscribed. Each `report` line on stdin gets one
// JSON line back about the time since the last report: publishes sent,
// refused and delivered, the latency's p50, p99 and maximum in ms, and the
// handshakes since start (1 unless the client had to start over). On `stop`
// (or the end of stdin) it stops publishing, waits for what is in flight,
// and prints the final report, which also counts the messages never
// delivered or delivered twice over the whole run; then it exits.

import net from "node:net";
import { createInterface } from "node:readline";
import { CometD } from "cometd";
import { adapt } from "cometd-nodejs-client";

const [url, channel] = process.argv.slice(2);
const LOCAL_ADDRESS = process.env.LOCAL_ADDRESS ?? "127.0.0.2";
const PERIOD_MS = Number(process.env.PERIOD_MS ?? 50);
const DRAIN_MS = 5_000;

// Both the XMLHttpRequest adapter's agents and the `ws` WebSocket end in
// net.Socket#connect, with the options first or as the first of an array.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const list = Array.isArray(args[0]) ? args[0] : args;
  if (list[0] && typeof list[0] === "object" && list[0].port !== undefined) {
    list[0] = { ...list[0], localAddress: LOCAL_ADDRESS };
  }
  return connect.apply(this, args);
};

adapt();
const cometd = new CometD();
cometd.configure({ url, logLevel: "error" });

let handshakes = 0;
cometd.addListener("/meta/handshake", (m) => m.successful && handshakes++);

const sentAt = new Map(); // seq -> time published
const delivered = new Map(); // seq -> times delivered
let window = { sent: 0, refused: 0, latencies: [] };

function report(final) {
  const sorted = window.latencies.slice().sort((a, b) => a - b);
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);
  const line = {
    sent: window.sent,
    refused: window.refused,
    delivered: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted.length ? sorted[sorted.length - 1] : 0,
    handshakes,
  };
  if (final) {
    line.missing = [...sentAt.keys()].filter((seq) => !delivered.has(seq)).length;
    line.repeated = [...delivered.values()].filter((n) => n > 1).length;
  }
  window = { sent: 0, refused: 0, latencies: [] };
  process.stdout.write(JSON.stringify(line) + "\n");
}

await new Promise((ok, fail) =>
  cometd.handshake((reply) => (reply.successful ? ok() : fail(new Error(JSON.stringify(reply))))),
);
await new Promise((ok, fail) =>
  cometd.subscribe(
    channel,
    (message) => {
      const seq = message.data?.seq;
      const count = delivered.get(seq) ?? 0;
      delivered.set(seq, count + 1);
      if (count === 0 && sentAt.has(seq)) window.latencies.push(Date.now() - sentAt.get(seq));
    },
    (reply) => (reply.successful ? ok() : fail(new Error(JSON.stringify(reply)))),
  ),
);

let seq = 0;
const publishing = setInterval(() => {
  const n = seq++;
  sentAt.set(n, Date.now());
  window.sent++;
  cometd.publish(channel, { seq: n }, (reply) => {
    if (!reply.successful) {
      window.refused++;
      sentAt.delete(n);
    }
  });
}, PERIOD_MS);
process.stdout.write("ready\n");

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(publishing);
  const deadline = Date.now() + DRAIN_MS;
  while (Date.now() < deadline && [...sentAt.keys()].some((s) => !delivered.has(s))) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  report(true);
  await new Promise((ok) => {
    cometd.disconnect(ok);
    setTimeout(ok, 2_000);
  });
  process.exit(0);
}

const input = createInterface({ input: process.stdin });
input.on("line", (line) => (line.trim() === "report" ? report(false) : stop()));
input.on("close", stop);
