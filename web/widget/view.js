// The widget's face: a launcher button and a chat panel, in a shadow root
// of their own (the site's styles do not reach in, ours do not leak out).
// Every text a participant wrote goes in through textContent, never as
// HTML. The chat itself is a ChatSession; this file only shows it.

import { ChatSession } from "./session.js";
import { fill } from "./texts.js";

/** The start form's fields a site may ask for (`data-fields`). */
const FIELDS = {
  nickname: { type: "text", autocomplete: "name", max: 100, param: "nickname" },
  firstName: { type: "text", autocomplete: "given-name", max: 100, param: "firstName" },
  lastName: { type: "text", autocomplete: "family-name", max: 100, param: "lastName" },
  email: { type: "email", autocomplete: "email", max: 200, param: "emailAddress" },
  subject: { type: "text", autocomplete: "off", max: 200, param: "subject" },
};

/** `tag` with `props` (attributes, or `on*` listeners) and `children`. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children);
  return node;
}

/**
 * Shows the widget on the page. `options`: { hub, service, transport,
 * fields, userData, title, accent, accentText, open, lang, texts,
 * stylesheet }.
 * Returns { open(), close() }.
 */
export function mount(options) {
  const t = options.texts;
  const host = el("div", { id: "gmshub-chat", "data-gmshub-widget": "v1", lang: options.lang });
  // Colours through the CSSOM: allowed by a site's CSP, unlike style attributes.
  if (options.accent) host.style.setProperty("--gmshub-accent", options.accent);
  if (options.accentText) host.style.setProperty("--gmshub-accent-text", options.accentText);
  const shadow = host.attachShadow({ mode: "open" });
  const root = el("div", { class: "root", hidden: true });
  const sheet = el("link", { rel: "stylesheet", href: options.stylesheet });
  const reveal = () => (root.hidden = false);
  sheet.addEventListener("load", reveal);
  sheet.addEventListener("error", reveal);

  // ---- the parts ----------------------------------------------------------
  const launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "panel", text: t.launcher });
  const title = el("h2", { id: "title", text: options.title || t.title });
  const close = el("button", { type: "button", class: "close", "aria-label": t.close, text: "×" });
  const state = el("p", { class: "state", id: "state", role: "status" });

  const inputs = {};
  const startError = el("p", { class: "error", role: "alert" });
  const start = el("form", { class: "start", id: "start", novalidate: true }, el("p", { class: "intro", text: t.intro }));
  for (const name of options.fields) {
    const f = FIELDS[name];
    const required = name === "nickname" || name === "firstName";
    inputs[name] = el("input", { id: `field-${name}`, name, type: f.type, autocomplete: f.autocomplete, maxlength: f.max, required });
    start.append(el("label", { for: `field-${name}`, text: t[name] }), inputs[name]);
  }
  const startButton = el("button", { type: "submit", class: "primary", id: "start-button", text: t.start });
  start.append(startError, startButton);

  const transcript = el("ol", { class: "transcript", id: "transcript", "aria-live": "polite", "aria-label": options.title || t.title });
  const typing = el("p", { class: "typing", id: "typing", "aria-live": "polite" });
  const message = el("textarea", { id: "message", rows: "2", maxlength: "10000", "aria-describedby": "hint" });
  const sendError = el("p", { class: "error", id: "send-error", role: "alert" });
  const send = el("button", { type: "submit", class: "primary", id: "send", text: t.send });
  const end = el("button", { type: "button", id: "end", text: t.end });
  const composer = el(
    "form",
    { class: "composer", id: "composer" },
    el("label", { for: "message", text: t.message }),
    message,
    el("p", { class: "hint", id: "hint", text: t.hint }),
    sendError,
    el("div", { class: "actions" }, send, end),
  );
  const again = el("button", { type: "button", class: "again", id: "again", text: t.again });
  const panel = el(
    "section",
    { class: "panel", id: "panel", role: "dialog", "aria-labelledby": "title", hidden: true },
    el("header", {}, title, close),
    state,
    start,
    transcript,
    typing,
    composer,
    again,
  );
  root.append(launcher, panel);
  shadow.append(sheet, root);
  document.body.append(host);

  // ---- the transcript -------------------------------------------------------
  const time = (ms) =>
    el("time", {
      datetime: new Date(ms).toISOString(),
      text: new Date(ms).toLocaleTimeString(options.lang, { hour: "2-digit", minute: "2-digit" }),
    });

  function line(e) {
    const from = e.from || {};
    const name = from.type === "Client" ? t.you : from.nickname || t.agent;
    const li = el("li", { "data-type": e.type, "data-index": e.index, "data-from": (from.type || "").toLowerCase() });
    const text = el("span", { class: "text" });
    switch (e.type) {
      case "Message":
        li.classList.add(from.type === "Client" ? "mine" : "theirs");
        li.append(el("span", { class: "who", text: name }));
        text.textContent = e.text || "";
        break;
      case "ParticipantJoined":
        li.classList.add("notice");
        text.textContent = from.type === "Client" ? "" : fill(t.joined, { name });
        break;
      case "ParticipantLeft":
        li.classList.add("notice");
        text.textContent = from.type === "Client" ? "" : fill(t.left, { name });
        break;
      case "PushUrl": {
        li.classList.add("notice");
        text.textContent = `${fill(t.link, { name })} `;
        const url = String(e.text || "");
        if (/^https?:\/\//i.test(url)) text.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url }));
        else text.append(url);
        break;
      }
      case "FileUploaded":
        li.classList.add("notice");
        text.textContent = fill(t.file, { name, file: (e.userData || {})["file-name"] || "" });
        break;
      default:
        li.classList.add("notice");
        text.textContent = e.text || "";
    }
    if (!text.textContent && !text.childElementCount) return null;
    li.append(text);
    if (e.utcTime) li.append(time(e.utcTime));
    return li;
  }

  function showEvent(e, live) {
    const from = e.from || {};
    const them = from.type !== "Client";
    if (e.type === "TypingStarted" || e.type === "TypingStopped") {
      if (them && live) typing.textContent = e.type === "TypingStarted" ? fill(t.typing, { name: from.nickname || t.agent }) : "";
      return;
    }
    if (them && (e.type === "Message" || e.type === "ParticipantLeft")) typing.textContent = "";
    const li = line(e);
    if (!li) return;
    // In index order, whatever order the events arrived in.
    const after = [...transcript.children].find((n) => Number(n.dataset.index) > e.index);
    transcript.insertBefore(li, after || null);
    transcript.scrollTop = transcript.scrollHeight;
  }

  // ---- the state ----------------------------------------------------------
  function render() {
    const s = session.state();
    state.dataset.state = s.key;
    const text = fill(t.state[s.key] || "", { name: s.name || "" });
    state.textContent = text;
    state.hidden = !text;
    const phase = session.phase;
    start.hidden = !(phase === "idle" || phase === "unavailable");
    const inChat = phase === "starting" || phase === "active" || phase === "ended";
    transcript.hidden = !inChat;
    typing.hidden = phase !== "active";
    composer.hidden = !(phase === "starting" || phase === "active");
    for (const c of [message, send, end]) c.disabled = phase !== "active";
    again.hidden = phase !== "ended";
    if (phase === "ended") typing.textContent = "";
  }

  const session = new ChatSession({
    hub: options.hub,
    service: options.service,
    transport: options.transport,
    onChange: render,
    onEvent: showEvent,
  });

  // ---- what the customer does -------------------------------------------------
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.hidden = true;
    const first = !start.hidden ? start.querySelector("input") : message;
    first?.focus();
  }
  function hide() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.hidden = false;
    launcher.focus();
  }
  launcher.addEventListener("click", open);
  close.addEventListener("click", hide);
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") hide();
  });

  start.addEventListener("submit", (e) => {
    e.preventDefault();
    startError.textContent = "";
    const value = (name) => inputs[name]?.value.trim() || undefined;
    const fields = {};
    for (const name of options.fields) fields[FIELDS[name].param] = value(name);
    if (options.userData) fields.userData = options.userData;
    if (!fields.nickname && !fields.firstName) {
      startError.textContent = t.error.name;
      (inputs.nickname || inputs.firstName)?.focus();
      return;
    }
    transcript.replaceChildren();
    typing.textContent = "";
    session.start(fields);
    message.focus();
  });

  let typingNow = false;
  message.addEventListener("input", () => {
    const now = message.value.length > 0;
    if (now !== typingNow) {
      typingNow = now;
      session.typing(now);
    }
  });
  // Enter sends; Shift+Enter (or Enter while composing with an IME) is a new line.
  message.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });

  composer.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = message.value;
    if (!text.trim() || send.getAttribute("aria-busy") === "true") return;
    sendError.textContent = "";
    send.setAttribute("aria-busy", "true");
    send.textContent = t.sending;
    const outcome = await session.send(text);
    send.removeAttribute("aria-busy");
    send.textContent = t.send;
    if (outcome.ok) {
      // What was typed meanwhile stays.
      if (message.value === text) message.value = "";
      typingNow = message.value.length > 0;
    } else if (session.phase === "active") {
      // The text stays in the box, with the reason.
      sendError.textContent = t.error[outcome.error] || t.error.notSent;
    }
    message.focus();
  });

  end.addEventListener("click", async () => {
    sendError.textContent = "";
    end.disabled = true;
    if (!(await session.end())) {
      sendError.textContent = t.error.notEnded;
      end.disabled = session.phase !== "active";
    }
  });

  again.addEventListener("click", () => {
    transcript.replaceChildren();
    session.forget();
    start.querySelector("input")?.focus();
  });

  render();
  // A chat this tab had before a reload goes on, with the panel open.
  if (session.restore() || options.open) open();
  return { open, close: hide };
}
