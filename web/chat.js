import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const service = params.get("service") || "customer-support";
const channel = `/service/chatV2/${service}`;
const rest = `${location.origin}/genesys/2/chat/${encodeURIComponent(service)}`;

// The chat: its identity once known, the next transcript position, and
// which transport carries it.
const chat = { id: null, userId: null, secureKey: null, alias: null, next: 1, ended: false, mode: null };
const shown = new Set();

function setState(text) { $("state").textContent = text; }

// Every text goes in through textContent: whatever a participant types is
// shown as text, never interpreted as HTML.
function show(event) {
  if (shown.has(event.index)) return;
  shown.add(event.index);
  chat.next = Math.max(chat.next, event.index + 1);
  const who = event.from || {};
  if (event.type === "TypingStarted" || event.type === "TypingStopped") {
    if (who.type !== "Client") $("typing").textContent = event.type === "TypingStarted" ? `${who.nickname} is typing…` : "";
    return;
  }
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "who";
  name.textContent = who.nickname || "";
  const text = document.createElement("span");
  text.className = "text";
  switch (event.type) {
    case "Message": text.textContent = event.text || ""; break;
    case "ParticipantJoined": li.className = "notice"; text.textContent = "joined the chat"; break;
    case "ParticipantLeft": li.className = "notice"; text.textContent = "left the chat"; break;
    case "PushUrl": text.textContent = event.text || ""; break;
    default: li.className = "notice"; text.textContent = event.text || event.type;
  }
  if (who.type === "Client" && event.type === "Message") li.classList.add("client");
  if (who.type !== "Client" && event.type === "Message") $("typing").textContent = "";
  li.dataset.type = event.type;
  li.append(name, text);
  $("transcript").append(li);
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function receive(payload) {
  if (!payload) return;
  if (payload.statusCode !== 0) {
    setState(`error: ${(payload.errors && payload.errors[0] && payload.errors[0].advice) || "request failed"}`);
    if (payload.chatEnded) end();
    return;
  }
  if (payload.chatId) chat.id = payload.chatId;
  if (payload.userId) chat.userId = payload.userId;
  if (payload.secureKey) chat.secureKey = payload.secureKey;
  if (payload.alias) chat.alias = payload.alias;
  for (const event of payload.messages || []) show(event);
  if (payload.chatEnded) end();
  else setState("connected");
}

function end() {
  if (chat.ended) return;
  chat.ended = true;
  setState("chat ended");
  $("typing").textContent = "";
  for (const id of ["message", "send", "end"]) $(id).disabled = true;
  if (chat.mode === "cometd" && cometd) cometd.disconnect();
  clearInterval(poller);
}

// ---- CometD -------------------------------------------------------------
let cometd = null;

function viaCometD(request) {
  cometd.publish(channel, { ...request, secureKey: chat.secureKey || undefined });
}

function startCometD(first) {
  return new Promise((resolve) => {
    cometd = new CometD();
    cometd.configure({ url: `${location.origin}/genesys/cometd`, logLevel: "warn" });
    const timer = setTimeout(() => resolve(false), 5000);
    cometd.handshake((reply) => {
      if (!reply.successful) { clearTimeout(timer); cometd.disconnect(); resolve(false); return; }
      cometd.subscribe(channel, (m) => receive(m.data), (sub) => {
        clearTimeout(timer);
        if (!sub.successful) { resolve(false); return; }
        chat.mode = "cometd";
        cometd.publish(channel, first);
        resolve(true);
      });
    });
  });
}

// ---- REST polling (when CometD is not there) ----------------------------
let poller = null;

async function post(path, fields) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    if (k === "userData") for (const [dk, dv] of Object.entries(v)) body.append(`userData[${dk}]`, dv);
    else body.append(k, v);
  }
  const r = await fetch(`${rest}${path}`, { method: "POST", body });
  return r.json();
}

function identity() {
  return { userId: chat.userId, secureKey: chat.secureKey, alias: chat.alias, transcriptPosition: chat.next };
}

async function viaRest(request) {
  const ops = {
    sendMessage: ["send", { message: request.message }],
    startTyping: ["startTyping", {}],
    stopTyping: ["stopTyping", {}],
    disconnect: ["disconnect", {}],
  };
  const [op, fields] = ops[request.operation];
  receive(await post(`/${chat.id}/${op}`, { ...identity(), ...fields }));
}

async function startRest(first) {
  chat.mode = "rest";
  receive(await post("", first));
  if (!chat.id) return;
  poller = setInterval(async () => {
    if (!chat.ended) receive(await post(`/${chat.id}/refresh`, identity()));
  }, 1500);
}

// ---- the page -----------------------------------------------------------
const send = (request) => (chat.mode === "cometd" ? viaCometD(request) : viaRest(request));

$("start").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("start").classList.add("hidden");
  $("chat").classList.remove("hidden");
  const first = { operation: "requestChat", nickname: $("nickname").value, subject: $("subject").value || undefined };
  const forced = params.get("transport");
  const connected = forced !== "rest" && (await startCometD(first));
  if (!connected) await startRest({ nickname: first.nickname, subject: first.subject });
  $("mode").textContent = chat.mode === "cometd" ? "(CometD)" : "(REST polling)";
  $("message").focus();
});

let typing = false;
$("message").addEventListener("input", () => {
  const now = $("message").value.length > 0;
  if (now !== typing && chat.id && !chat.ended) {
    typing = now;
    send({ operation: now ? "startTyping" : "stopTyping" });
  }
});

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("message").value;
  if (!text.trim() || !chat.id || chat.ended) return;
  send({ operation: "sendMessage", message: text });
  $("message").value = "";
  if (typing) { typing = false; send({ operation: "stopTyping" }); }
});

$("end").addEventListener("click", () => { if (chat.id && !chat.ended) send({ operation: "disconnect" }); });
