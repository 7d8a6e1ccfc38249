import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
const service = new URLSearchParams(location.search).get("service") || "default";
const api = `${location.origin}/genesys/1/service/callback/${encodeURIComponent(service)}`;
const cb = { id: null, seen: 0 };
let clientId = null;

function error(text) { $("error").textContent = text || ""; }

async function call(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(json?.message || `HTTP ${r.status}`);
  return json;
}

// The events of this callback, in order; an event seen before is not shown
// again. The first event can arrive before the booking's answer: events of
// a callback not known yet wait (a few) until it is.
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
  show(e);
}

function show(e) {
  $("state").textContent = e._callback_state + (e._callback_reason ? ` (${e._callback_reason})` : "");
  const li = document.createElement("li");
  li.dataset.state = e._callback_state;
  const state = document.createElement("span");
  state.className = "state";
  state.textContent = e._callback_state;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  li.append(state, document.createTextNode(e._text || ""), time);
  $("timeline").append(li);
  const asking = e._action === "DisplayMenu";
  $("prompt").classList.toggle("hidden", !asking);
  if (asking) $("prompt-text").textContent = e._text;
  if (e._callback_state === "COMPLETED") $("cancel").disabled = true;
}

function showDialog(d) {
  const p = $("dialog");
  p.replaceChildren();
  if (d._action === "DialNumber") {
    const a = document.createElement("a");
    a.href = d._tel_url;
    a.textContent = d._label;
    p.append(a);
  } else if (d._action === "StartChat") {
    p.textContent = `A chat is open for you (chat ${d._chat_id}).`;
  } else {
    p.textContent = d._text || "";
  }
}

async function loadSlots() {
  try {
    const slots = await call("GET", `${api}/availability`);
    const select = $("slots");
    select.replaceChildren();
    for (const [time, free] of Object.entries(slots)) {
      if (free <= 0) continue;
      const o = document.createElement("option");
      o.value = time;
      o.textContent = `${new Date(time).toLocaleString()} (${free} free)`;
      select.append(o);
    }
  } catch (e) {
    error(`Free times: ${e.message}`);
  }
}

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
    if (!$("slots").value) return error("Pick a time.");
    body._desired_time = $("slots").value;
  }
  try {
    const d = await call("POST", api, body);
    cb.id = d._id;
    cb.seen = 0;
    $("cb-id").textContent = d._id;
    $("timeline").replaceChildren();
    $("cancel").disabled = false;
    $("status").classList.remove("hidden");
    showDialog(d);
    for (const e of early.splice(0).filter((e) => e._id === cb.id)) onEvent({ data: { message: e } });
  } catch (e) {
    error(e.message);
  }
});

async function act(action) {
  try {
    showDialog(await call("POST", `${location.origin}/genesys/1/service/${encodeURIComponent(cb.id)}/${action}`));
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
  } catch (e) {
    error(e.message);
  }
});

// The router's side, so the page can be tried without an ORS.
async function route(path, body) {
  try {
    await call("POST", `${location.origin}/gmshub/callback/${path}`, body);
  } catch (e) {
    error(`Router: ${e.message}`);
  }
}
$("take").addEventListener("click", () => route(`${encodeURIComponent(service)}/next`, { router: "demo-page" }));
$("processing").addEventListener("click", () =>
  route(`${encodeURIComponent(cb.id)}/state`, { state: "PROCESSING", router: "demo-page" }));
$("complete").addEventListener("click", () =>
  route(`${encodeURIComponent(cb.id)}/state`, { state: "COMPLETED", reason: "AGENT_CONNECTED", router: "demo-page" }));

const cometd = new CometD();
cometd.configure({ url: `${location.origin}/genesys/cometd`, logLevel: "warn" });
cometd.addListener("/meta/handshake", (m) => {
  if (!m.successful) return;
  // Subscribed on every handshake (a re-handshake after a server restart
  // starts a session with no subscriptions). Events go to the clientId the
  // callback was booked with.
  clientId = m.clientId;
  cometd.subscribe("/_genesys", onEvent);
  $("link").textContent = "live";
  $("book-button").disabled = false;
});
cometd.addListener("/meta/connect", (m) => {
  if (!m.successful && !cometd.isDisconnected()) $("link").textContent = "reconnecting";
  else if (m.successful) $("link").textContent = "live";
});
cometd.handshake((reply) => {
  if (!reply.successful) $("link").textContent = "cannot connect";
});
