// The official CometD JavaScript client in Node, set up for tests: one
// cookie jar per client, a chosen transport, and promise wrappers with a
// time bound around its callback API.

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { installJsonpDocument } from "./jsonp.mjs";
import { EXCHANGE_MS, within } from "./wait.mjs";

// adapt() installs one XMLHttpRequest for the whole process, so by default
// every client shares one BAYEUX_BROWSER cookie, as tabs of one browser do.
// To make each client its own browser, its long-polling transport gets a
// `context` holding a jar; the adapter hands that context to
// retrieveCookies() but not to storeCookie(). Both receive the same request
// URL object, though, so the jar is remembered per request URL object.
const jarOfRequest = new WeakMap();
const sharedJar = new Map();
adapt({
  cookies: {
    retrieveCookies(context, uri, callback) {
      const jar = context?.cookieJar ?? sharedJar;
      jarOfRequest.set(uri, jar);
      callback(null, [...jar.values()]);
    },
    storeCookie(uri, header, callback) {
      const jar = jarOfRequest.get(uri) ?? sharedJar;
      const pair = header.split(";")[0].trim(); // Path/HttpOnly do not matter here
      const eq = pair.indexOf("=");
      if (eq > 0) jar.set(pair.slice(0, eq), pair);
      callback(null);
    },
  },
});
installJsonpDocument();

const live = new Set();

/**
 * A configured, not yet handshaken client.
 * transport: "websocket" (default, as an application gets it), "long-polling"
 * (WebSocket unregistered), or "callback-polling" (both others unregistered).
 * sharedCookies: join the process-wide jar instead of having its own.
 */
export function newClient(url, { transport = "websocket", sharedCookies = false } = {}) {
  const cometd = new CometD();
  if (transport !== "websocket") {
    for (const type of cometd.getTransportTypes()) {
      if (type !== transport) cometd.unregisterTransport(type);
    }
    if (cometd.getTransportTypes().join() !== transport) {
      throw new Error(`cannot restrict transports to ${transport}: ${cometd.getTransportTypes()}`);
    }
  }
  const longPolling = cometd.findTransport("long-polling");
  if (longPolling && !sharedCookies) longPolling.context = { cookieJar: new Map() };
  cometd.configure({ url, logLevel: process.env.COMETD_LOG_LEVEL ?? "error" });
  live.add(cometd);
  return cometd;
}

/**
 * Handshakes and waits for the first successful /meta/connect, so the client
 * is fully connected. Resolves to the handshake reply (successful or not).
 */
export async function connect(cometd, handshakeProps = {}) {
  const connected = new Promise((ok) => {
    const handle = cometd.addListener("/meta/connect", (m) => {
      if (m.successful) {
        cometd.removeListener(handle);
        ok();
      }
    });
  });
  const reply = await within(
    EXCHANGE_MS,
    new Promise((ok) => cometd.handshake(handshakeProps, ok)),
    "handshake reply",
  );
  if (reply.successful) await within(EXCHANGE_MS, connected, "first /meta/connect");
  return reply;
}

/** Subscribes; resolves to { reply, handle } once the server answered. */
export async function subscribe(cometd, channel, onMessage) {
  let handle;
  const reply = await within(
    EXCHANGE_MS,
    new Promise((ok) => (handle = cometd.subscribe(channel, onMessage, ok))),
    `subscribe ${channel}`,
  );
  return { reply, handle };
}

export function unsubscribe(cometd, handle) {
  return within(
    EXCHANGE_MS,
    new Promise((ok) => cometd.unsubscribe(handle, ok)),
    `unsubscribe ${handle.channel}`,
  );
}

/** Publishes; resolves to the server's reply. */
export function publish(cometd, channel, data) {
  return within(
    EXCHANGE_MS,
    new Promise((ok) => cometd.publish(channel, data, ok)),
    `publish to ${channel}`,
  );
}

export function disconnect(cometd) {
  return within(EXCHANGE_MS, new Promise((ok) => cometd.disconnect(ok)), "disconnect reply");
}

/** Disconnects every client still connected (after each test), bounded. */
export async function disconnectAll() {
  const clients = [...live];
  live.clear();
  await Promise.all(
    clients
      .filter((c) => !c.isDisconnected())
      .map((c) => within(3_000, new Promise((ok) => c.disconnect(ok)), "cleanup").catch(() => {})),
  );
}

/** Collects the messages a listener gets and waits for them, bounded. */
export class Inbox {
  messages = [];
  #waiters = [];

  /** The listener to pass to subscribe() or addListener(). */
  get listener() {
    return (message) => {
      this.messages.push(message);
      this.#waiters = this.#waiters.filter((w) => !w());
    };
  }

  get data() {
    return this.messages.map((m) => m.data);
  }

  /** Resolves once `predicate(messages)` holds. */
  until(predicate, what, ms = EXCHANGE_MS) {
    return within(
      ms,
      new Promise((ok) => {
        const check = () => predicate(this.messages) && (ok(this.messages), true);
        if (!check()) this.#waiters.push(check);
      }),
      () => `${what} (got ${JSON.stringify(this.messages)})`,
    );
  }

  /** Resolves once at least `n` messages arrived. */
  count(n, ms = EXCHANGE_MS) {
    return this.until((list) => list.length >= n, `${n} message(s)`, ms);
  }
}
