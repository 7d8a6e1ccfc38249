import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
const api = `${location.origin}/gmshub/agent`;
let token = null;
const chats = new Map(); // chatId -> { el, next, state }

async function call(method, path, body) {
  const r = await fetch(`${api}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json().catch(() => null) };
}

// ---- rendering: every text through textContent ---------------------------
function line(event) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = (event.from && event.from.nickname) || "";
  const text = document.createElement("span");
  text.className = "text";
  switch (event.type) {
    case "Message": case "PushUrl": text.textContent = event.text || ""; break;
    case "ParticipantJoined": li.className = "notice"; text.textContent = "joined"; break;
    case "ParticipantLeft": li.className = "notice"; text.textContent = "left"; break;
    case "FileUploaded": li.className = "notice"; text.textContent = `sent a file: ${(event.userData || {})["file-name"] || ""}`; break;
    default: li.className = "notice"; text.textContent = event.text || event.type;
  }
  li.dataset.type = event.type;
  li.append(who, text);
  return li;
}

function chatBox(id, view) {
  const el = document.createElement("div");
  el.className = "chat";
  el.dataset.chatId = id;
  const title = document.createElement("h3");
  title.textContent = `${(view.participants[0] || {}).nickname || "customer"}${view.subject ? ` — ${view.subject}` : ""}`;
  const list = document.createElement("ul");
  const typing = document.createElement("div");
  typing.className = "typing";
  const input = document.createElement("textarea");
  input.rows = 2;
  input.placeholder = "Reply";
  const send = document.createElement("button");
  send.textContent = "Send";
  const end = document.createElement("button");
  end.textContent = "End chat";
  let isTyping = false;
  input.addEventListener("input", () => {
    const now = input.value.length > 0;
    if (now !== isTyping) {
      isTyping = now;
      call("POST", `/chats/${id}/${now ? "start-typing" : "stop-typing"}`, {});
    }
  });
  send.addEventListener("click", async () => {
    if (!input.value.trim()) return;
    const message = input.value;
    input.value = "";
    isTyping = false;
    await call("POST", `/chats/${id}/send`, { message });
    refresh(id);
  });
  end.addEventListener("click", async () => { await call("POST", `/chats/${id}/end`, {}); refresh(id); });
  el.append(title, list, typing, input, send, end);
  $("chats").prepend(el);
  const entry = { el, list, typing, input, send, end, next: 1, state: view.state };
  chats.set(id, entry);
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
  entry.state = r.body.state;
  if (entry.state === "ended") {
    entry.el.classList.add("ended");
    entry.el.dataset.state = "ended";
    entry.typing.textContent = "chat ended";
    for (const c of [entry.input, entry.send, entry.end]) c.disabled = true;
  }
}

async function loadOffers() {
  const r = await call("GET", "/offers");
  if (r.status !== 200) return;
  const list = $("offers");
  list.replaceChildren();
  for (const offer of r.body.offers) {
    const li = document.createElement("li");
    li.dataset.chatId = offer.chatId;
    const label = document.createElement("span");
    label.textContent = `${offer.nickname}${offer.subject ? ` — ${offer.subject}` : ""} (${offer.queue}) `;
    const accept = document.createElement("button");
    accept.textContent = "Accept";
    accept.addEventListener("click", async () => {
      const taken = await call("POST", `/chats/${offer.chatId}/accept`);
      if (taken.status === 200 && !chats.has(offer.chatId)) {
        chatBox(offer.chatId, taken.body);
        refresh(offer.chatId);
      }
      loadOffers();
    });
    const reject = document.createElement("button");
    reject.textContent = "Decline";
    reject.addEventListener("click", async () => { await call("POST", `/chats/${offer.chatId}/reject`); loadOffers(); });
    li.append(label, accept, reject);
    list.append(li);
  }
}

// ---- events over CometD: pings, then the agent API says what changed ----
function listen() {
  const cometd = new CometD();
  cometd.configure({ url: `${location.origin}/genesys/cometd`, logLevel: "warn" });
  cometd.addListener("/meta/handshake", (m) => {
    if (!m.successful) return;
    // (Again after a re-handshake: the new session must be attached too.)
    cometd.publish("/service/agent", { operation: "attach", token });
  });
  cometd.handshake(() => {
    cometd.subscribe("/service/agent", (m) => {
      const d = m.data || {};
      if (d.operation === "attach") $("events").textContent = d.successful ? "live" : "refused";
      if (d.event === "offers") loadOffers();
      if (d.event === "chat") {
        if (chats.has(d.chatId)) refresh(d.chatId);
        else loadChats();
      }
    });
  });
}

async function loadChats() {
  const r = await call("GET", "/chats");
  if (r.status !== 200) return;
  for (const view of r.body.chats) {
    if (!chats.has(view.chatId)) chatBox(view.chatId, view);
    refresh(view.chatId);
  }
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await call("POST", "/login", { agent: $("agent").value, password: $("password").value });
  if (r.status !== 200) { $("login-error").textContent = (r.body && r.body.error) || "login failed"; return; }
  token = r.body.token;
  $("me").textContent = r.body.nickname;
  $("login").classList.add("hidden");
  $("desk").classList.remove("hidden");
  listen();
  loadChats();
  loadOffers();
  // A safety net for a lost ping; pings make it immediate.
  setInterval(loadOffers, 5000);
});

$("ready").addEventListener("click", async () => {
  const r = await call("POST", "/ready", { capacity: Number($("capacity").value) || 1 });
  if (r.status === 200) {
    $("presence").textContent = `ready for ${r.body.capacity}`;
    $("ready").disabled = true;
    $("not-ready").disabled = false;
    loadOffers();
  }
});
$("not-ready").addEventListener("click", async () => {
  await call("POST", "/not-ready", {});
  $("presence").textContent = "not ready";
  $("ready").disabled = false;
  $("not-ready").disabled = true;
  loadOffers();
});
