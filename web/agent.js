// The agent desk: gmshub's agent API (docs/agent-api.md) for a person at a
// desk. The token lives in sessionStorage, so a reload keeps the login,
// and what the desk shows (presence, chats) is read back from the server,
// never assumed. Pings arrive over CometD (/service/agent); each says what
// changed, and the desk reads that through the API.

import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
const api = `${location.origin}/gmshub/agent`;
const TOKEN = "gmshub-agent-token";
const BASE_TITLE = document.title;
let token = sessionStorage.getItem(TOKEN);
let me = null;
let cometd = null;
let offerTimer = null;
const chats = new Map(); // chatId -> the box's parts and transcript position
const alerted = new Set(); // offers already announced

async function call(method, path, body) {
  let r;
  try {
    r = await fetch(`${api}${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, body: { error: "The server cannot be reached. Check the connection and try again." } };
  }
  const answer = { status: r.status, body: r.status === 204 ? null : await r.json().catch(() => null) };
  if (r.status === 401 && path !== "/login" && token) signedOut("Your session has ended. Please log in again.");
  return answer;
}

const reason = (r) => (r.body && r.body.error) || `The request failed (HTTP ${r.status}).`;
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children);
  return node;
};
const clock = (ms) =>
  el("time", { datetime: new Date(ms).toISOString(), text: new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) });

// ---- logging in and out --------------------------------------------------
function showLogin(message) {
  $("desk").classList.add("hidden");
  $("login").classList.remove("hidden");
  $("login-error").textContent = message || "";
  $("password").focus();
}

function signedOut(message) {
  token = null;
  me = null;
  sessionStorage.removeItem(TOKEN);
  clearInterval(offerTimer);
  if (cometd) cometd.disconnect();
  cometd = null;
  chats.clear();
  alerted.clear();
  $("chats").replaceChildren();
  $("offers").replaceChildren();
  document.title = BASE_TITLE;
  showLogin(message);
}

async function enter() {
  const r = await call("GET", "/me");
  if (r.status !== 200) return signedOut(r.status === 401 ? "" : reason(r));
  me = r.body;
  $("me").textContent = me.nickname;
  showPresence(me.ready, me.capacity);
  $("login").classList.add("hidden");
  $("desk").classList.remove("hidden");
  listen();
  loadChats();
  loadOffers();
  // A safety net for a lost ping; pings make it immediate.
  offerTimer = setInterval(loadOffers, 5000);
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await call("POST", "/login", { agent: $("agent").value, password: $("password").value });
  if (r.status !== 200) return showLogin(r.status === 401 ? "Wrong login or password." : reason(r));
  token = r.body.token;
  sessionStorage.setItem(TOKEN, token);
  $("password").value = "";
  unlockSound();
  enter();
});

$("logout").addEventListener("click", async () => {
  await call("POST", "/logout");
  signedOut("You are logged out.");
});

// ---- presence ------------------------------------------------------------
function showPresence(ready, capacity) {
  $("presence").textContent = ready ? `Ready for ${capacity} chat${capacity === 1 ? "" : "s"}` : "Not ready";
  $("presence").dataset.ready = String(ready);
  if (ready) $("capacity").value = capacity;
  $("ready").disabled = ready;
  $("not-ready").disabled = !ready;
}

$("ready").addEventListener("click", async () => {
  unlockSound();
  const r = await call("POST", "/ready", { capacity: Number($("capacity").value) || 1 });
  if (r.status !== 200) return ($("desk-error").textContent = reason(r));
  showPresence(true, r.body.capacity);
  loadOffers();
});
$("not-ready").addEventListener("click", async () => {
  const r = await call("POST", "/not-ready", {});
  if (r.status !== 200) return ($("desk-error").textContent = reason(r));
  showPresence(false, 0);
  loadOffers();
});

// ---- a new offer: a sound and the page's title ---------------------------
let audio = null;
// Browsers let a page play sound once the person did something on it.
function unlockSound() {
  try {
    audio ??= new AudioContext();
    audio.resume();
  } catch {
    audio = null;
  }
}

function chime() {
  document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  if (!audio) return;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.5);
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 0.5);
}

function announce(offers) {
  const fresh = offers.filter((o) => !alerted.has(o.chatId));
  for (const o of fresh) alerted.add(o.chatId);
  document.title = offers.length ? `(${offers.length}) New chat — ${BASE_TITLE}` : BASE_TITLE;
  if (fresh.length) {
    $("alert").hidden = false;
    $("alert").textContent = `New chat waiting: ${fresh.map((o) => o.nickname).join(", ")}`;
    chime();
  } else if (!offers.length) {
    $("alert").hidden = true;
  }
}

async function loadOffers() {
  if (!token) return;
  const r = await call("GET", "/offers");
  if (r.status !== 200) return;
  const list = $("offers");
  list.replaceChildren();
  for (const offer of r.body.offers) {
    const label = el("span", { text: `${offer.nickname}${offer.subject ? ` — ${offer.subject}` : ""}` });
    const since = el("span", { class: "muted", text: `waiting since ${new Date(offer.waitingSince).toLocaleTimeString()}` });
    const accept = el("button", { type: "button", class: "primary", text: "Accept" });
    accept.addEventListener("click", async () => {
      const taken = await call("POST", `/chats/${offer.chatId}/accept`);
      if (taken.status !== 200) $("desk-error").textContent = reason(taken);
      else if (!chats.has(offer.chatId)) {
        chatBox(offer.chatId, taken.body);
        refresh(offer.chatId);
      }
      loadOffers();
    });
    const decline = el("button", { type: "button", text: "Decline" });
    decline.addEventListener("click", async () => {
      await call("POST", `/chats/${offer.chatId}/reject`);
      loadOffers();
    });
    list.append(el("li", { "data-chat-id": offer.chatId }, label, since, accept, decline));
  }
  $("no-offers").hidden = r.body.offers.length > 0;
  announce(r.body.offers);
}

// ---- a chat --------------------------------------------------------------
function line(event) {
  const li = el("li", { "data-type": event.type, "data-index": event.index });
  const who = el("span", { class: "who", text: (event.from && event.from.nickname) || "" });
  const text = el("span", { class: "text" });
  switch (event.type) {
    case "Message": case "PushUrl": text.textContent = event.text || ""; break;
    case "ParticipantJoined": li.className = "notice"; text.textContent = "joined"; break;
    case "ParticipantLeft": li.className = "notice"; text.textContent = "left"; break;
    case "FileUploaded": li.className = "notice"; text.textContent = `sent a file: ${(event.userData || {})["file-name"] || ""}`; break;
    default: li.className = "notice"; text.textContent = event.text || event.type;
  }
  if (event.utcTime) li.append(clock(event.utcTime));
  li.append(who, text);
  return li;
}

function chatBox(id, view) {
  const customer = view.participants.find((p) => p.kind === "Client") || view.participants[0] || {};
  const name = customer.nickname || "Customer";
  const box = el("article", { class: "chat", "data-chat-id": id, "aria-label": `Chat with ${name}` });
  const title = el("h3", { text: `${name}${view.subject ? ` — ${view.subject}` : ""}` });
  const data = el("dl", { class: "user-data" });
  for (const [k, v] of Object.entries(view.userData || {})) data.append(el("dt", { text: k }), el("dd", { text: String(v) }));
  const list = el("ul", { "aria-live": "polite" });
  const typing = el("p", { class: "typing" });
  const inputId = `reply-${id}`;
  const input = el("textarea", { id: inputId, rows: "2", maxlength: "10000" });
  const error = el("p", { class: "error", role: "alert" });
  const send = el("button", { type: "submit", class: "primary", text: "Send" });
  const end = el("button", { type: "button", text: "End chat" });
  const form = el("form", {}, el("label", { for: inputId, text: `Reply to ${name}` }), input,
    el("p", { class: "hint", text: "Enter sends, Shift+Enter starts a new line." }), error, send, end);
  const queue = el("select", { id: `queue-${id}` });
  for (const q of me.transferQueues) queue.append(el("option", { value: q, text: q }));
  const transfer = el("button", { type: "button", text: "Transfer" });
  const colleague = el("select", { id: `colleague-${id}` });
  for (const c of me.colleagues) colleague.append(el("option", { value: c.agent, text: c.nickname }));
  const invite = el("button", { type: "button", text: "Invite", disabled: me.colleagues.length === 0 });
  const tools = el("div", { class: "tools" },
    el("label", { for: `queue-${id}`, text: "Transfer to" }), queue, transfer,
    el("label", { for: `colleague-${id}`, text: "Invite" }), colleague, invite);
  const close = el("button", { type: "button", class: "close", text: "Close", hidden: true });
  box.append(title, data, list, typing, form, tools, close);
  $("chats").prepend(box);
  const entry = { box, list, typing, input, error, send, end, form, tools, close, next: 1 };
  chats.set(id, entry);

  let isTyping = false;
  input.addEventListener("input", () => {
    const now = input.value.length > 0;
    if (now !== isTyping) {
      isTyping = now;
      call("POST", `/chats/${id}/${now ? "start-typing" : "stop-typing"}`, {});
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const message = input.value;
    if (!message.trim()) return;
    error.textContent = "";
    send.disabled = true;
    const r = await call("POST", `/chats/${id}/send`, { message });
    send.disabled = false;
    // A refused message stays where it was typed, with the reason.
    if (r.status !== 200) error.textContent = reason(r);
    else if (input.value === message) {
      input.value = "";
      isTyping = false;
    }
    input.focus();
    refresh(id);
  });
  const act = async (path, body) => {
    error.textContent = "";
    const r = await call("POST", `/chats/${id}/${path}`, body);
    if (r.status !== 200) error.textContent = reason(r);
    refresh(id);
  };
  end.addEventListener("click", () => act("end", {}));
  transfer.addEventListener("click", () => act("transfer", { queue: queue.value }));
  invite.addEventListener("click", () => act("invite", { agent: colleague.value }));
  close.addEventListener("click", () => {
    box.remove();
    chats.delete(id);
  });
  return entry;
}

async function refresh(id) {
  const entry = chats.get(id);
  if (!entry) return;
  const r = await call("GET", `/chats/${id}?from=${entry.next}`);
  if (r.status !== 200) return;
  for (const event of r.body.messages) {
    if (event.index < entry.next) continue;
    entry.next = event.index + 1;
    if (event.type === "TypingStarted" || event.type === "TypingStopped") {
      if (event.from.type === "Client") entry.typing.textContent = event.type === "TypingStarted" ? `${event.from.nickname} is typing…` : "";
      continue;
    }
    if (event.type === "Message" && event.from.type === "Client") entry.typing.textContent = "";
    entry.list.append(line(event));
  }
  entry.list.scrollTop = entry.list.scrollHeight;
  // Over for this desk: the chat ended, or this agent left it (a transfer).
  const mine = r.body.participants.find((p) => p.agent === me.agent && p.present);
  const over = r.body.state === "ended" || !mine;
  entry.box.dataset.state = over ? "ended" : r.body.state;
  if (over) {
    entry.box.classList.add("ended");
    entry.typing.textContent = r.body.state === "ended" ? "The chat has ended." : "You left this chat.";
    entry.form.hidden = true;
    entry.tools.hidden = true;
    entry.close.hidden = false;
  }
}

async function loadChats() {
  const r = await call("GET", "/chats");
  if (r.status !== 200) return;
  for (const view of r.body.chats) {
    if (!chats.has(view.chatId)) chatBox(view.chatId, view);
    refresh(view.chatId);
  }
}

// ---- pings over CometD ---------------------------------------------------
function listen() {
  cometd = new CometD();
  cometd.configure({ url: `${location.origin}/genesys/cometd`, logLevel: "warn", maxBackoff: 4000 });
  const status = (text) => ($("events").textContent = text);
  cometd.addListener("/meta/handshake", (m) => {
    if (!m.successful) return status("reconnecting");
    // Every handshake (a re-handshake starts with no subscriptions).
    cometd.batch(() => {
      cometd.subscribe("/service/agent", (ping) => {
        const d = ping.data || {};
        if (d.operation === "attach") status(d.successful ? "live" : "refused");
        if (d.event === "offers") loadOffers();
        if (d.event === "chat") {
          if (chats.has(d.chatId)) refresh(d.chatId);
          else loadChats();
        }
      });
      cometd.publish("/service/agent", { operation: "attach", token });
    });
    // What changed while the pings were not arriving.
    loadChats();
    loadOffers();
  });
  cometd.addListener("/meta/connect", (m) => {
    if (!m.successful && !cometd.isDisconnected()) status("reconnecting");
  });
  cometd.handshake();
}

if (token) enter();
else showLogin();
