// The customer's side of one chat, without any DOM: Chat API v2 over the
// official CometD client, with REST polling whenever CometD is not there.
//
// What it guarantees, and how:
// - One chat, never two: `requestChat` is sent once, by whichever transport
//   gets there first; every later (re)connection, re-handshake or page
//   reload resumes the chat with `requestNotifications` (CometD) or
//   `refresh` (REST) from the first transcript position not yet seen.
// - Nothing lost or shown twice: events are kept by index; the position
//   resumed from is the first gap, so an event delivered out of order or
//   missed while the link was down is asked for again, and one seen before
//   is dropped.
// - A reload changes nothing: the chat's credentials, position, transcript
//   and agents live in sessionStorage (per tab, per hub, per service).
// - The state shown is the link's real state: "reconnecting" from the first
//   failed exchange until an answer arrives again over either transport.

import { CometD } from "cometd";

/** Chat API v2's error codes this side acts on. */
const CODE = { NOT_FOUND: 102, ENDED: 104, TOO_LARGE: 105 };
/** How long CometD may take to come up before a new chat starts over REST. */
const COMETD_WAIT_MS = 5_000;
/** How long an answer may take (a sent message, requestChat, disconnect). */
const ANSWER_WAIT_MS = 10_000;
/** The REST refresh period while CometD is down. */
const POLL_MS = 2_000;
/** At most this many characters of transcript are kept for a reload. */
const KEPT_CHARS = 256 * 1024;
/** Events that are shown as lines of the transcript (typing is not). */
const SHOWN = new Set(["Message", "ParticipantJoined", "ParticipantLeft", "PushUrl", "FileUploaded", "CustomNotice", "Notice"]);

const fresh = () => ({ v: 1, chatId: null, userId: null, secureKey: null, alias: null, next: 1, events: [], agents: {}, ended: false });

/** sessionStorage when the page may use it, else memory (same interface). */
function storage() {
  try {
    const s = window.sessionStorage;
    s.setItem("gmshub-chat-probe", "1");
    s.removeItem("gmshub-chat-probe");
    return s;
  } catch {
    const m = new Map();
    return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
  }
}

/** Which of the texts' error messages a refused answer calls for. */
export function errorKind(payload) {
  const code = payload?.errors?.[0]?.code;
  if (code === CODE.TOO_LARGE) return "tooLong";
  return "notSent";
}

export class ChatSession {
  /**
   * `hub`: gmshub's origin; `service`: the Chat API v2 service; `transport`:
   * "auto" (CometD, REST when CometD is down) or "rest"; `onChange()` runs
   * after every change of state, `onEvent(event, live)` for each new event
   * (`live` false while a stored transcript is replayed).
   */
  constructor({ hub, service, transport = "auto", onChange = () => {}, onEvent = () => {} }) {
    this.hub = hub;
    this.service = service;
    this.transport = transport;
    this.channel = `/service/chatV2/${service}`;
    this.restBase = `${hub}/genesys/2/chat/${encodeURIComponent(service)}`;
    this.onChange = onChange;
    this.onEvent = onEvent;
    this.store = storage();
    this.key = `gmshub-chat|${hub}|${service}`;
    this.record = fresh();
    this.keptChars = 0;
    this.seen = new Set(); // indexes past `record.next` that arrived early
    this.phase = "idle"; // idle | starting | active | ended | unavailable
    this.cometd = null;
    this.subscribed = false;
    this.cometdUp = false;
    this.restUp = false;
    this.polling = false;
    this.linkedOnce = false;
    this.startFields = null;
    this.startClaimed = false;
    this.pendingSend = null;
    this.sendQueue = Promise.resolve();
    this.endWaiter = null;
    this.poller = null;
    this.since = Date.now();
  }

  // ---- what the view reads ------------------------------------------------

  /** { key, name }: what to tell the customer (`key` names a state text). */
  state() {
    switch (this.phase) {
      case "starting":
        return { key: "connecting" };
      case "active": {
        if (!this.cometdUp && !this.restUp) return { key: this.linkedOnce ? "reconnecting" : "connecting" };
        const agents = Object.values(this.record.agents);
        return agents.length ? { key: "connected", name: agents[agents.length - 1] } : { key: "waiting" };
      }
      default:
        return { key: this.phase };
    }
  }

  /** The stored transcript's events, oldest first. */
  events() {
    return this.record.events;
  }

  // ---- life cycle ---------------------------------------------------------

  /** Picks up the chat this tab had (after a reload); true when there is one. */
  restore() {
    let saved = null;
    try {
      saved = JSON.parse(this.store.getItem(this.key) || "null");
    } catch {
      saved = null;
    }
    if (!saved || saved.v !== 1 || !saved.chatId) return false;
    this.record = { ...fresh(), ...saved };
    this.keptChars = this.record.events.reduce((n, e) => n + JSON.stringify(e).length, 0);
    for (const e of this.record.events) this.onEvent(e, false);
    if (this.record.ended) {
      this.phase = "ended";
    } else {
      this.phase = "active";
      this.#connect();
    }
    this.onChange();
    return true;
  }

  /** Requests a new chat with `fields` (nickname, firstName, lastName, emailAddress, subject, userData). */
  start(fields) {
    if (this.phase !== "idle" && this.phase !== "unavailable") return;
    this.record = fresh();
    this.keptChars = 0;
    this.seen.clear();
    this.phase = "starting";
    this.startFields = fields;
    this.startClaimed = false;
    this.since = Date.now();
    this.onChange();
    if (this.transport === "rest") {
      this.#startOverRest();
    } else {
      this.#connect();
      // CometD not up in time: the chat starts over REST (CometD may still
      // come up later, and then carries it).
      setTimeout(() => {
        if (this.phase === "starting" && !this.startClaimed) this.#startOverRest();
      }, COMETD_WAIT_MS);
    }
  }

  /** Forgets an ended (or never started) chat, for a new one. */
  forget() {
    if (this.phase === "active" || this.phase === "starting") return;
    this.#stopLinks();
    this.store.removeItem(this.key);
    this.record = fresh();
    this.keptChars = 0;
    this.seen.clear();
    this.phase = "idle";
    this.onChange();
  }

  /**
   * Sends `text`; resolves to { ok: true } once the message is in the
   * transcript, or { ok: false, error } (a key of the texts' errors) when
   * the server refused it or nothing answered. One message at a time.
   */
  send(text) {
    const attempt = this.sendQueue.then(() => this.#sendNow(text));
    this.sendQueue = attempt.catch(() => {});
    return attempt;
  }

  /** Tells the agent the customer started or stopped typing (best effort). */
  typing(on) {
    if (this.phase !== "active" || this.pendingSend) return;
    const operation = on ? "startTyping" : "stopTyping";
    if (this.cometdUp) this.#publish({ operation, ...this.#identity() });
    else this.#rest(`/${this.record.chatId}/${operation}`, this.#identity()).then((p) => this.#answered(p), () => {});
  }

  /** Ends the chat; resolves to true once the server says it ended. */
  async end() {
    if (this.phase === "ended") return true;
    if (this.phase !== "active") return false;
    const ended = new Promise((ok) => (this.endWaiter = ok));
    if (this.cometdUp) {
      this.#publish({ operation: "disconnect", ...this.#identity() });
    } else {
      this.#rest(`/${this.record.chatId}/disconnect`, this.#identity()).then((p) => this.#answered(p), () => {});
    }
    let timer;
    const late = new Promise((ok) => (timer = setTimeout(ok, ANSWER_WAIT_MS, false)));
    const done = await Promise.race([ended.then(() => true), late]);
    clearTimeout(timer);
    return done;
  }

  // ---- CometD ---------------------------------------------------------------

  #connect() {
    if (this.transport !== "rest" && !this.cometd) {
      const cometd = new CometD();
      // A short backoff: after a server restart the chat resumes within a
      // few seconds of the server being back.
      cometd.configure({ url: `${this.hub}/genesys/cometd`, logLevel: "warn", maxBackoff: 4_000, maxNetworkDelay: ANSWER_WAIT_MS });
      // A client this session stopped may still answer: it is not heard.
      const current = () => this.cometd === cometd;
      cometd.addListener("/meta/handshake", (m) => {
        if (current()) m.successful ? this.#subscribe() : this.#down();
      });
      cometd.addListener("/meta/connect", (m) => {
        if (!current() || cometd.isDisconnected()) return;
        if (!m.successful) this.#down();
        // The same session back after a failure: what was pushed meanwhile
        // may be gone, so resume from the first gap.
        else if (!this.cometdUp && this.record.chatId && this.subscribed) this.#resume();
      });
      cometd.handshake();
      this.cometd = cometd;
    }
    if (!this.poller) this.poller = setInterval(() => this.#poll(), POLL_MS);
  }

  #subscribe() {
    this.subscribed = false;
    // A handshake (the first, or one after the server lost the session)
    // starts with no subscriptions: subscribe again, then resume.
    this.cometd.subscribe(this.channel, (m) => this.#received(m.data, "cometd"), (reply) => {
      if (!reply.successful) return this.#down();
      this.subscribed = true;
      if (this.record.chatId) {
        this.#resume();
      } else if (this.phase === "starting" && !this.startClaimed) {
        this.startClaimed = true;
        this.#publish({ operation: "requestChat", ...this.startFields });
        setTimeout(() => {
          if (this.phase === "starting") this.#unavailable();
        }, ANSWER_WAIT_MS);
      }
    });
  }

  #resume() {
    this.#publish({ operation: "requestNotifications", ...this.#identity() });
  }

  #publish(request) {
    this.cometd.publish(this.channel, request, (ack) => {
      if (ack.successful) return;
      // Refused by the Bayeux server itself (e.g. a message over its size).
      if (request.operation === "sendMessage") this.#settleSend({ ok: false, error: /413|too large/i.test(ack.error || "") ? "tooLong" : "notSent" });
      else this.#down();
    });
  }

  #down() {
    if (!this.cometdUp) return;
    this.cometdUp = false;
    this.onChange();
  }

  // ---- REST -----------------------------------------------------------------

  async #rest(path, fields) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined || v === null || v === "") continue;
      // Chat API v2's form shape for a map: userData[key]=value.
      if (k === "userData") for (const [dk, dv] of Object.entries(v)) body.append(`userData[${dk}]`, dv);
      else body.append(k, v);
    }
    const r = await fetch(`${this.restBase}${path}`, { method: "POST", body, credentials: "omit" });
    return r.json();
  }

  async #startOverRest() {
    this.startClaimed = true;
    try {
      const p = await this.#rest("", this.startFields);
      this.restUp = true;
      if (p.statusCode !== 0) return this.#unavailable();
      this.#received(p, "rest");
      this.#connect();
    } catch {
      this.#unavailable();
    }
  }

  /** A REST refresh, while CometD does not carry the chat. */
  async #poll() {
    const waiting = this.transport !== "rest" && !this.linkedOnce && Date.now() - this.since < COMETD_WAIT_MS;
    if (this.phase !== "active" || this.cometdUp || waiting || this.polling) return;
    this.polling = true;
    try {
      this.#answered(await this.#rest(`/${this.record.chatId}/refresh`, this.#identity()));
    } catch {
      if (this.restUp) {
        this.restUp = false;
        this.onChange();
      }
    } finally {
      this.polling = false;
    }
  }

  /** A REST answer: the link works, whatever it says. */
  #answered(payload) {
    this.restUp = true;
    this.#received(payload, "rest");
  }

  #identity() {
    const r = this.record;
    return { userId: r.userId, secureKey: r.secureKey, alias: r.alias, transcriptPosition: r.next };
  }

  // ---- sending --------------------------------------------------------------

  async #sendNow(text) {
    if (this.phase !== "active") return { ok: false, error: "notSent" };
    const result = new Promise((settle) => (this.pendingSend = { text, settle }));
    const timer = setTimeout(() => this.#settleSend({ ok: false, error: "notSent" }), ANSWER_WAIT_MS);
    const request = { operation: "sendMessage", message: text, ...this.#identity() };
    if (this.cometdUp) {
      this.#publish(request);
    } else {
      this.#rest(`/${this.record.chatId}/send`, request).then(
        (p) => this.#answered(p),
        () => this.#settleSend({ ok: false, error: "notSent" }),
      );
    }
    const outcome = await result;
    clearTimeout(timer);
    return outcome;
  }

  #settleSend(outcome) {
    const pending = this.pendingSend;
    if (!pending) return;
    this.pendingSend = null;
    pending.settle(outcome);
  }

  // ---- what arrives -----------------------------------------------------------

  #received(payload, via) {
    if (!payload || typeof payload !== "object") return;
    if (payload.chatId && this.record.chatId && payload.chatId !== this.record.chatId) return;
    if (via === "cometd" && payload.statusCode === 0 && !this.cometdUp) {
      this.cometdUp = true;
      this.restUp = false;
    }
    if (payload.statusCode !== 0) return this.#refused(payload);
    const r = this.record;
    if (!r.chatId && payload.chatId && this.phase === "starting") {
      r.chatId = payload.chatId;
      this.phase = "active";
    }
    if (!r.chatId) return;
    for (const k of ["userId", "secureKey", "alias"]) if (payload[k]) r[k] = payload[k];
    this.linkedOnce = true;
    for (const event of payload.messages || []) this.#event(event);
    if (payload.chatEnded) this.#ended();
    this.#save();
    this.onChange();
  }

  #refused(payload) {
    if (this.pendingSend) this.#settleSend({ ok: false, error: errorKind(payload) });
    else if (this.phase === "starting") return this.#unavailable();
    const code = payload.errors?.[0]?.code;
    // The chat is gone (ended meanwhile, or unknown to the server).
    if (this.record.chatId && (payload.chatEnded || code === CODE.ENDED || code === CODE.NOT_FOUND)) {
      this.#ended();
      this.#save();
    }
    this.onChange();
  }

  #event(e) {
    const r = this.record;
    if (typeof e?.index !== "number" || e.index < r.next || this.seen.has(e.index)) return;
    this.seen.add(e.index);
    while (this.seen.delete(r.next)) r.next += 1;
    const from = e.from || {};
    const agentSide = from.type === "Agent" || from.type === "External";
    if (agentSide && e.type === "ParticipantJoined") r.agents[from.participantId] = from.nickname;
    if (agentSide && e.type === "NicknameUpdated" && r.agents[from.participantId] !== undefined) r.agents[from.participantId] = e.text || from.nickname;
    if (e.type === "ParticipantLeft") delete r.agents[from.participantId];
    const pending = this.pendingSend;
    if (pending && e.type === "Message" && from.type === "Client" && e.text === pending.text) this.#settleSend({ ok: true });
    if (SHOWN.has(e.type)) this.#keep(e);
    this.onEvent(e, true);
  }

  /** Keeps `e` for a reload, dropping the oldest past KEPT_CHARS. */
  #keep(e) {
    const events = this.record.events;
    events.push(e);
    this.keptChars += JSON.stringify(e).length;
    while (this.keptChars > KEPT_CHARS && events.length > 1) this.keptChars -= JSON.stringify(events.shift()).length;
  }

  #ended() {
    if (this.phase === "ended") return;
    this.phase = "ended";
    this.record.ended = true;
    this.#settleSend({ ok: false, error: "notSent" });
    this.endWaiter?.();
    this.#stopLinks();
  }

  #unavailable() {
    this.phase = "unavailable";
    this.#stopLinks();
    this.onChange();
  }

  #stopLinks() {
    clearInterval(this.poller);
    this.poller = null;
    const cometd = this.cometd;
    this.cometd = null;
    this.cometdUp = false;
    this.restUp = false;
    // After the current delivery's callbacks have run.
    if (cometd) setTimeout(() => cometd.disconnect(), 0);
  }

  #save() {
    try {
      this.store.setItem(this.key, JSON.stringify(this.record));
    } catch {
      // Full or refused: the chat goes on, a reload would start over.
    }
  }
}
