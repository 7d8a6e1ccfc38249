// The callback page: books a callback with the Callback Services API and
// follows it. Events arrive over CometD (on /_genesys, to the session the
// callback was booked with); the callback's id and what was shown live in
// sessionStorage, so a reload, or a server restart (a new CometD session,
// which the booking does not name), picks the callback up again by its id
// and follows it by reading it back until it is over. Times are shown in
// the customer's own time zone.

import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const service = params.get("service") || "default";
const api = `${location.origin}/genesys/1/service/callback/${encodeURIComponent(service)}`;
const KEY = `gmshub-callback|${service}`;
const READ_MS = 3000;
let clientId = null;
let reader = null;
// The callback on screen: its id, the session it was booked with, the last
// event's sequence number, and the steps shown.
let cb = fresh();

function fresh() {
  return { id: null, bookedWith: null, seen: 0, steps: [] };
}

const save = () => sessionStorage.setItem(KEY, JSON.stringify(cb));
const error = (text) => ($("error").textContent = text || "");
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

async function call(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!r.ok) throw new Error(json?.message || `The request failed (HTTP ${r.status}).`);
  return json;
}

// ---- what the customer reads: words, not state names ---------------------
function label(state, reason) {
  if (state === "COMPLETED") {
    if (reason?.startsWith("CANCELLED")) return "Cancelled";
    if (reason?.startsWith("FAIL")) return "Not completed";
    return "Done";
  }
  return { SCHEDULED: "Booked", QUEUED: "Waiting for an agent", ROUTING: "An agent is about to call", PROCESSING: "Connected to an agent", PAUSED: "On hold" }[state] || state;
}

function sentence(step) {
  switch (step.state) {
    case "SCHEDULED": return `We will call you on ${when(step.desired)} (${zone} time).`;
    case "QUEUED": return "You are in the queue: we will call you as soon as an agent is free.";
    case "ROUTING": return "An agent is free and will call you in a moment.";
    case "PROCESSING": return "You are connected to an agent.";
    case "PAUSED": return "Your callback is on hold.";
    case "COMPLETED":
      if (step.reason?.startsWith("CANCELLED")) return "Your callback is cancelled.";
      if (step.reason?.startsWith("FAIL")) return "We could not reach you. You can book another callback.";
      return "Your callback is complete. Thank you!";
    default: return "";
  }
}

// ---- showing the callback ------------------------------------------------
function render() {
  $("status").classList.toggle("hidden", !cb.id);
  $("book").classList.toggle("hidden", Boolean(cb.id));
  $("cb-id").textContent = cb.id || "";
  const last = cb.steps[cb.steps.length - 1];
  $("state").textContent = last ? label(last.state, last.reason) : "-";
  $("state").dataset.state = last?.state || "";
  $("state").dataset.reason = last?.reason || "";
  $("dialog").textContent = last ? sentence(last) : "";
  const over = last?.state === "COMPLETED";
  $("cancel").classList.toggle("hidden", over);
  $("again").classList.toggle("hidden", !over);
  if (over) $("prompt").classList.add("hidden");
  const items = cb.steps.map((s) => {
    const li = document.createElement("li");
    li.dataset.state = s.state;
    const name = document.createElement("span");
    name.className = "state";
    name.textContent = label(s.state, s.reason);
    const time = document.createElement("time");
    time.dateTime = new Date(s.at).toISOString();
    time.textContent = new Date(s.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.append(name, time);
    return li;
  });
  $("timeline").replaceChildren(...items);
}

/** Adds a step when the callback's state (or reason) changed. */
function step(state, reason, desired) {
  const last = cb.steps[cb.steps.length - 1];
  if (last && last.state === state && (last.reason || null) === (reason || null)) return;
  cb.steps.push({ state, reason: reason || null, desired, at: Date.now() });
  save();
  render();
  if (state === "COMPLETED") stopReading();
}

// An event for this callback, in order; one seen before is dropped. The
// first event can arrive before the booking's answer: events of a
// callback not known yet wait (a few) until it is.
const early = [];
function onEvent(message) {
  const e = message?.data?.message;
  if (!e?._id) return;
  if (e._id !== cb.id) {
    early.push(e);
    if (early.length > 20) early.shift();
    return;
  }
  if (e._event_seq <= cb.seen) return;
  cb.seen = e._event_seq;
  step(e._callback_state, e._callback_reason, e._desired_time);
  const asking = e._action === "DisplayMenu";
  $("prompt").classList.toggle("hidden", !asking);
  if (asking) $("prompt-text").textContent = "An agent is free to call you now. Are you ready?";
}

/** Reads the callback back (after a reload or a new CometD session). */
async function readBack() {
  if (!cb.id) return;
  try {
    const r = await call("GET", `${api}/${encodeURIComponent(cb.id)}`);
    step(r._callback_state, r._callback_reason, r._desired_time);
  } catch (e) {
    error(`Your callback could not be read: ${e.message}`);
  }
}

function stopReading() {
  clearInterval(reader);
  reader = null;
}

/** Events reach the session the callback was booked with; any other reads. */
function follow() {
  stopReading();
  const over = cb.steps[cb.steps.length - 1]?.state === "COMPLETED";
  if (!cb.id || over || cb.bookedWith === clientId) return;
  readBack();
  reader = setInterval(readBack, READ_MS);
}

// ---- booking ---------------------------------------------------------------
async function loadSlots() {
  try {
    const slots = await call("GET", `${api}/availability`);
    const select = $("slots");
    select.replaceChildren();
    for (const [time, free] of Object.entries(slots)) {
      if (free <= 0) continue;
      const o = document.createElement("option");
      o.value = time;
      o.textContent = when(time);
      select.append(o);
    }
  } catch (e) {
    error(`The free times could not be loaded: ${e.message}`);
  }
}

$("zone").textContent = `${zone} time`;
for (const radio of document.querySelectorAll("input[name=when]")) {
  radio.addEventListener("change", () => {
    const later = document.querySelector("input[name=when]:checked").value === "later";
    $("slots-box").classList.toggle("hidden", !later);
    if (later) loadSlots();
  });
}

$("book").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error("");
  const body = {
    _customer_number: $("number").value.trim(),
    _device_os: "comet",
    _device_notification_id: clientId,
  };
  if (document.querySelector("input[name=when]:checked").value === "later") {
    if (!$("slots").value) return error("Please pick a time.");
    body._desired_time = $("slots").value;
  }
  try {
    const d = await call("POST", api, body);
    cb = { ...fresh(), id: d._id, bookedWith: clientId };
    save();
    render();
    for (const e of early.splice(0).filter((e) => e._id === cb.id)) onEvent({ data: { message: e } });
    // The booking's answer says where it stands, should no event come.
    if (!cb.steps.length) readBack();
  } catch (e) {
    error(e.message.includes("_customer_number") ? "That is not a valid phone number. Please check it." : e.message);
  }
});

async function act(action) {
  try {
    await call("POST", `${location.origin}/genesys/1/service/${encodeURIComponent(cb.id)}/${action}`);
    $("prompt").classList.add("hidden");
  } catch (e) {
    error(e.message);
  }
}
$("ready").addEventListener("click", () => act("ready"));
$("decline").addEventListener("click", () => act("cancel"));
$("cancel").addEventListener("click", async () => {
  try {
    await call("DELETE", `${api}/${encodeURIComponent(cb.id)}`);
    if (reader) readBack();
  } catch (e) {
    error(e.message);
  }
});
$("again").addEventListener("click", () => {
  stopReading();
  cb = fresh();
  sessionStorage.removeItem(KEY);
  render();
  $("number").focus();
});

// The router's side, so the page can be tried without an ORS: each button
// acts on the callback on screen.
async function route(body) {
  if (!cb.id) return error("Book a callback first.");
  try {
    await call("POST", `${location.origin}/gmshub/callback/${encodeURIComponent(cb.id)}/state`, { router: "demo-page", ...body });
    if (reader) readBack();
  } catch (e) {
    error(`Router: ${e.message}`);
  }
}
$("take").addEventListener("click", () => route({ state: "ROUTING" }));
$("processing").addEventListener("click", () => route({ state: "PROCESSING" }));
$("complete").addEventListener("click", () => route({ state: "COMPLETED", reason: "AGENT_CONNECTED" }));

// ---- CometD ----------------------------------------------------------------
try {
  const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  if (saved?.id) cb = { ...fresh(), ...saved };
} catch {
  cb = fresh();
}
render();

const cometd = new CometD();
cometd.configure({ url: `${location.origin}/genesys/cometd`, logLevel: "warn", maxBackoff: 4000 });
cometd.addListener("/meta/handshake", (m) => {
  if (!m.successful) return ($("link").textContent = "reconnecting");
  // Subscribed on every handshake (a re-handshake after a server restart
  // starts a session with no subscriptions).
  clientId = m.clientId;
  cometd.subscribe("/_genesys", onEvent);
  $("link").textContent = "live";
  $("book-button").disabled = false;
  follow();
});
cometd.addListener("/meta/connect", (m) => {
  if (!m.successful && !cometd.isDisconnected()) $("link").textContent = "reconnecting";
  else if (m.successful) $("link").textContent = "live";
});
cometd.handshake();
