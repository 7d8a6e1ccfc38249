// The CometD playground: the official CometD client, driven by hand. The
// status shown is the client's own (connected, reconnecting, disconnected),
// and a channel name is checked before it is sent, with the reason shown.

import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
$("url").value = `${location.origin}/genesys/cometd`;
let cometd = null;

function log(text, cls) {
  const li = document.createElement("li");
  li.className = cls || "";
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(li);
}

function setStatus(status) {
  $("status").textContent = status;
  $("status").className = status;
  const on = status === "connected";
  $("connect").disabled = status !== "disconnected";
  $("disconnect").disabled = status === "disconnected";
  for (const id of ["subscribe", "publish"]) $(id).disabled = !on;
  if (status === "disconnected") $("transport-used").textContent = "";
}

/** Why `name` is not a Bayeux channel one may use (null when it is). */
function channelProblem(name, { wildcards }) {
  if (!name.startsWith("/")) return "A channel name starts with /, for example /demo/room.";
  const segments = name.slice(1).split("/");
  if (segments.some((s) => s === "")) return "A channel name has no empty segment (no // and no / at the end).";
  const last = segments[segments.length - 1];
  const wild = segments.findIndex((s) => s.includes("*"));
  if (wild >= 0) {
    if (!wildcards) return "Messages are published to one channel: no * or ** here.";
    if (wild !== segments.length - 1 || (last !== "*" && last !== "**")) return "A wildcard is a whole last segment: /demo/* or /demo/**.";
  }
  if (/^meta$/.test(segments[0])) return "/meta/ channels belong to the protocol.";
  if (/[^\w\-*!~().'$@=,+;:]/.test(name.replace(/\//g, ""))) return "A channel name has letters, digits and - _ . ! ~ ( ) only.";
  return null;
}

$("connection").addEventListener("submit", (e) => {
  e.preventDefault();
  cometd = new CometD();
  const choice = $("transport").value;
  if (choice !== "websocket") {
    for (const name of cometd.getTransportTypes()) {
      if (name !== choice) cometd.unregisterTransport(name);
    }
  }
  cometd.configure({ url: $("url").value, logLevel: "warn" });
  const client = cometd;
  client.addListener("/meta/connect", (m) => {
    if (client.isDisconnected()) return setStatus("disconnected");
    setStatus(m.successful === true ? "connected" : "reconnecting");
    $("transport-used").textContent = client.getTransport() ? `(${client.getTransport().type})` : "";
  });
  setStatus("connecting");
  client.handshake((reply) => {
    if (reply.successful) log(`handshake ok, clientId ${reply.clientId}`, "meta");
    else log(`handshake failed: ${reply.error || "no answer"}`, "meta");
  });
});

$("disconnect").addEventListener("click", () => {
  const client = cometd;
  client.disconnect(() => log("disconnected", "meta"));
  setStatus("disconnected");
});

/** The channel typed in `field`, or null with the reason shown beside it. */
function channelIn(field, wildcards) {
  const channel = $(field).value.trim();
  const problem = channelProblem(channel, { wildcards });
  $(`${field}-error`).textContent = problem || "";
  return problem ? null : channel;
}

/** Shows the server's refusal of `reply` beside `field`. */
const refusal = (field, reply) => ($(`${field}-error`).textContent = `The server refused: ${reply.error || "no answer"}`);

$("subscription").addEventListener("submit", (e) => {
  e.preventDefault();
  const channel = channelIn("channel", true);
  if (!channel) return;
  cometd.subscribe(channel, (m) => {
    const text = typeof m.data === "object" && m.data && "text" in m.data ? m.data.text : JSON.stringify(m.data);
    const li = document.createElement("li");
    const part = (cls, value) => {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      return span;
    };
    li.append(part("time", new Date().toLocaleTimeString()), "  ", part("channel", m.channel), " ", part("text", text));
    li.dataset.received = "1";
    $("log").prepend(li);
  }, (reply) => {
    if (reply.successful) log(`subscribed to ${channel}`, "meta");
    else refusal("channel", reply);
  });
});

$("publication").addEventListener("submit", (e) => {
  e.preventDefault();
  const channel = channelIn("target", false);
  if (!channel) return;
  cometd.publish(channel, { text: $("text").value }, (reply) => {
    if (!reply.successful) refusal("target", reply);
  });
});
