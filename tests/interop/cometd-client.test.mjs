// The official CometD JavaScript client (npm `cometd`, run in Node through
// `cometd-nodejs-client`) against the gmshub binary, with default server
// settings. Every scenario runs over WebSocket and over long-polling (with
// WebSocket unregistered); callback-polling gets its own smaller suite.
//
// Each client has its own cookie jar (so its own BAYEUX_BROWSER) unless a
// test says otherwise. Channels need not be unique across tests: every test
// ends by disconnecting all its clients, which drops their subscriptions.

import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AckExtension } from "cometd";
import { restartServer, startServer } from "./server.mjs";
import {
  Inbox,
  connect,
  disconnect,
  disconnectAll,
  newClient,
  publish,
  subscribe,
  unsubscribe,
} from "./cometd.mjs";
import { eventually, sleep } from "./wait.mjs";

const TEST = { timeout: 30_000 };

/** Asserts that a delivered message is exactly what was published, and
 * that nothing in it identifies the publisher. */
function assertDelivery(message, channel, data, publisherId) {
  assert.equal(message.channel, channel);
  assert.deepEqual(message.data, data);
  assert.equal("clientId" in message, false, `delivery carries a clientId: ${JSON.stringify(message)}`);
  assert.ok(!JSON.stringify(message).includes(publisherId), "delivery names the publisher");
}

/**
 * Runs a gmshub for the enclosing suite. Its tests are declared with the
 * returned `test`, which waits for the server first: a server that cannot
 * start then fails each test with the reason instead of cancelling them.
 */
function suiteServer() {
  const suite = { server: null, ready: null };
  before(async () => {
    suite.ready = startServer().then((server) => (suite.server = server));
    await suite.ready.catch(() => {});
  }, TEST);
  afterEach(disconnectAll, TEST);
  after(async () => {
    await disconnectAll();
    await suite.server?.stop();
  }, TEST);
  suite.test = (name, options, fn) =>
    it(name, options, async (t) => {
      await suite.ready;
      return fn(t);
    });
  return suite;
}

for (const transport of ["websocket", "long-polling"]) {
  describe(`CometD client over ${transport}`, () => {
    const suite = suiteServer();
    const test = suite.test;

    /** A client on this suite's transport, handshaken and connected. */
    async function connected(options = {}) {
      const cometd = newClient(suite.server.url, { transport, ...options });
      const reply = await connect(cometd);
      assert.equal(reply.successful, true, `handshake failed: ${JSON.stringify(reply)}`);
      assert.equal(cometd.getTransport().type, transport);
      return cometd;
    }

    /** Subscribes and asserts the server accepted it. */
    async function subscribed(cometd, channel, inbox) {
      const { reply, handle } = await subscribe(cometd, channel, inbox.listener);
      assert.equal(reply.successful, true, `subscribe ${channel}: ${JSON.stringify(reply)}`);
      return handle;
    }

    async function published(cometd, channel, data) {
      const reply = await publish(cometd, channel, data);
      assert.equal(reply.successful, true, `publish to ${channel}: ${JSON.stringify(reply)}`);
    }

    test("handshakes and connects", TEST, async () => {
      const cometd = newClient(suite.server.url, { transport });
      const reply = await connect(cometd);
      assert.equal(reply.channel, "/meta/handshake");
      assert.equal(reply.successful, true);
      assert.equal(reply.version, "1.0");
      assert.match(reply.clientId, /^\S{8,}$/);
      assert.ok(reply.supportedConnectionTypes.includes(transport));
      assert.equal(cometd.getClientId(), reply.clientId);
      assert.equal(cometd.getTransport().type, transport);
      // "connecting" between a connect reply and the next connect request.
      await eventually(() => cometd.getStatus() === "connected", "status connected", 2_000);
    });

    test("delivers to exact, /x/* and /x/** subscribers, anonymously", TEST, async () => {
      const [publisher, exact, star, deep] = await Promise.all(
        [0, 1, 2, 3].map(() => connected()),
      );
      const inboxes = { exact: new Inbox(), star: new Inbox(), deep: new Inbox() };
      await subscribed(exact, "/x/a", inboxes.exact);
      await subscribed(star, "/x/*", inboxes.star);
      await subscribed(deep, "/x/**", inboxes.deep);

      // One publisher, replies awaited in turn: each subscriber gets its
      // messages in this order, so once the last one (on /x/a, which all
      // three match) arrived, anything else would have arrived before it.
      const sent = [
        ["/x/a", { n: 1, text: "exact" }],
        ["/x/a/b", { n: 2, text: "two levels" }],
        ["/y/a", { n: 3, text: "nobody" }],
        ["/x/a", { n: 4, text: "last" }],
      ];
      for (const [channel, data] of sent) await published(publisher, channel, data);
      await Promise.all(Object.values(inboxes).map((inbox) => inbox.until(
        (list) => list.some((m) => m.data.n === 4), "the last message")));

      const expect = { exact: [1, 4], star: [1, 4], deep: [1, 2, 4] };
      for (const [name, inbox] of Object.entries(inboxes)) {
        assert.deepEqual(inbox.data.map((d) => d.n), expect[name], `${name} subscriber`);
        for (const message of inbox.messages) {
          const [channel, data] = sent.find(([, d]) => d.n === message.data.n);
          assertDelivery(message, channel, data, publisher.getClientId());
        }
      }
    });

    test("stops delivering after unsubscribe", TEST, async () => {
      const [publisher, leaver, control] = await Promise.all([0, 1, 2].map(() => connected()));
      const left = new Inbox();
      const kept = new Inbox();
      const controlInbox = new Inbox();
      const handle = await subscribed(leaver, "/u/room", left);
      await subscribed(leaver, "/u/other", kept);
      await subscribed(control, "/u/room", controlInbox);

      const reply = await unsubscribe(leaver, handle);
      assert.equal(reply.successful, true, JSON.stringify(reply));
      assert.equal(reply.subscription, "/u/room");

      await published(publisher, "/u/room", { after: "unsubscribe" });
      await published(publisher, "/u/other", { marker: true });
      // The control subscriber still gets the room; the leaver gets the
      // marker published after it, so the room message is not coming.
      const [roomMessage] = await controlInbox.count(1);
      assertDelivery(roomMessage, "/u/room", { after: "unsubscribe" }, publisher.getClientId());
      await kept.count(1);
      assert.deepEqual(left.messages, []);
    });

    test("handles a batch of subscribes and publishes in order", TEST, async () => {
      const [batcher, observer] = await Promise.all([connected(), connected()]);
      const watched = new Inbox();
      await subscribed(observer, "/batch/**", watched);

      const own = new Inbox();
      const replies = [];
      const record = (reply) => replies.push(reply);
      const channels = ["/batch/a", "/batch/b"];
      batcher.batch(() => {
        for (const channel of channels) batcher.subscribe(channel, own.listener, record);
        for (let n = 1; n <= 6; n++) batcher.publish(channels[n % 2], { n }, record);
      });

      await eventually(() => replies.length === 8, () => `8 replies, got ${JSON.stringify(replies)}`);
      for (const reply of replies) assert.equal(reply.successful, true, JSON.stringify(reply));
      assert.deepEqual(replies.map((r) => r.channel), [
        "/meta/subscribe", "/meta/subscribe",
        "/batch/b", "/batch/a", "/batch/b", "/batch/a", "/batch/b", "/batch/a",
      ]);
      // Subscribed earlier in the same batch, the batcher gets its own
      // publishes; both sessions get all six, in publish order.
      const order = [1, 2, 3, 4, 5, 6];
      await own.count(6);
      await watched.count(6);
      assert.deepEqual(own.data.map((d) => d.n), order);
      assert.deepEqual(watched.data.map((d) => d.n), order);
      assert.deepEqual(watched.messages.map((m) => m.channel), order.map((n) => channels[n % 2]));
    });

    test("answers /service/echo to the requester only", TEST, async () => {
      const [requester, bystander] = await Promise.all([connected(), connected()]);
      const echoes = new Inbox();
      const overheard = new Inbox();
      await subscribed(requester, "/service/echo", echoes);
      await subscribed(bystander, "/service/echo", overheard);

      const request = { text: "ping", n: 42, nested: { list: [1, "two", null] } };
      await published(requester, "/service/echo", request);
      const [echo] = await echoes.count(1);
      assert.equal(echo.channel, "/service/echo");
      assert.deepEqual(echo.data, request);

      // The bystander's own request comes back to it and is all it gets.
      await published(bystander, "/service/echo", { mine: true });
      await overheard.count(1);
      assert.deepEqual(overheard.data, [{ mine: true }]);
      assert.equal(echoes.messages.length, 1);
    });

    test("answers a remoteCall to /echo with the call's result", TEST, async () => {
      const caller = await connected();
      const request = { question: "are you there?", n: 7 };
      const response = await new Promise((resolve) => caller.remoteCall("/echo", request, 5_000, resolve));
      assert.equal(response.successful !== false, true, `remote call failed: ${JSON.stringify(response)}`);
      assert.equal(response.channel, "/service/echo");
      assert.deepEqual(response.data, request);
    });

    test("with the ack extension, delivers 50 messages once each, in order", TEST, async () => {
      const acked = newClient(suite.server.url, { transport });
      assert.equal(acked.registerExtension("ack", new AckExtension()), true);
      const handshakes = [];
      acked.addListener("/meta/handshake", (m) => handshakes.push(m));
      const batches = [];
      acked.addListener("/meta/connect", (m) => {
        if (m.successful && typeof m.ext?.ack === "number") batches.push(m.ext.ack);
      });
      assert.equal((await connect(acked)).successful, true);
      assert.equal(acked.getTransport().type, transport);
      const ack = handshakes[0].ext?.ack;
      assert.ok(ack === true || ack?.enabled === true, `handshake ext.ack: ${JSON.stringify(ack)}`);

      const inbox = new Inbox();
      await subscribed(acked, "/ack/stream", inbox);
      const publisher = await connected();
      const count = 50;
      // Not awaited one by one: the client pipelines them, the server must
      // still keep them in order.
      const replies = await Promise.all(
        Array.from({ length: count }, (_, seq) => publish(publisher, "/ack/stream", { seq })),
      );
      assert.ok(replies.every((r) => r.successful));
      await published(publisher, "/ack/stream", { seq: "end" });

      await inbox.until((list) => list.some((m) => m.data.seq === "end"), "the end marker");
      const expected = [...Array.from({ length: count }, (_, i) => i), "end"];
      assert.deepEqual(inbox.data.map((d) => d.seq), expected);
      // The messages rode on /meta/connect replies that carried batch ids.
      assert.ok(batches.some((b) => b > 0), `connect replies' ext.ack: ${batches}`);
      for (let i = 1; i < batches.length; i++) assert.ok(batches[i] >= batches[i - 1], `${batches}`);
    });

    test("disconnects; the session gets nothing afterwards", TEST, async () => {
      const [publisher, leaver, control] = await Promise.all([0, 1, 2].map(() => connected()));
      const left = new Inbox();
      const controlInbox = new Inbox();
      await subscribed(leaver, "/d/room", left);
      await subscribed(control, "/d/room", controlInbox);

      const reply = await disconnect(leaver);
      assert.equal(reply.channel, "/meta/disconnect");
      assert.equal(reply.successful, true, JSON.stringify(reply));
      assert.equal(leaver.getStatus(), "disconnected");
      assert.equal(leaver.isDisconnected(), true);

      await published(publisher, "/d/room", { after: "disconnect" });
      await controlInbox.count(1);
      // Nothing can mark "the leaver would have had it by now"; give it time.
      await sleep(500);
      assert.deepEqual(left.messages, []);
    });

    // SIGKILL: the new process has never heard of the session, and answers
    // the client's next /meta/connect with 402. SIGTERM: the old process
    // itself answers the held /meta/connect with 402 before it exits.
    for (const how of ["SIGKILL", "SIGTERM"]) {
      test(`handshakes again by itself after a server restart (${how})`, { timeout: 60_000 }, async (t) => {
        let own = await startServer(); // its own: this test restarts it
        try {
          const client = newClient(own.url, { transport });
          const timeline = [];
          const inbox = new Inbox();
          const subscribes = [];
          client.addListener("/meta/handshake", (m) => {
            timeline.push({ handshake: m.successful, reestablish: m.reestablish, clientId: m.clientId });
            // What applications do: subscriptions belong to a session, so
            // they are made again on every successful handshake.
            if (m.successful) client.subscribe("/r/room", inbox.listener, (r) => subscribes.push(r));
          });
          client.addListener("/meta/connect", (m) => {
            if (!m.successful) timeline.push({ connectFailed: m.error ?? null, advice: m.advice, at: Date.now() });
          });
          assert.equal((await connect(client)).successful, true);
          await eventually(() => subscribes.length === 1, "first subscribe");
          const firstId = client.getClientId();
          // Let the next /meta/connect reach the server and be held there.
          await eventually(() => client.getStatus() === "connected", "connect sent", 2_000);
          await sleep(300);

          const old = own;
          own = await restartServer(own, how);
          await eventually(() => subscribes.length === 2, () => `re-subscribe; ${JSON.stringify(timeline)}`, 30_000);
          assert.equal(subscribes[1].successful, true, JSON.stringify(subscribes[1]));
          t.diagnostic(`client saw: ${JSON.stringify(timeline)}; old server: ${JSON.stringify(old.stopped)}`);

          const refused = timeline.findIndex((e) => /^402:/.test(e.connectFailed ?? ""));
          assert.ok(refused > 0, `no 402 on /meta/connect: ${JSON.stringify(timeline)}`);
          assert.equal(timeline[refused].advice?.reconnect, "handshake");
          if (how === "SIGTERM") {
            assert.equal(old.stopped.code, 0, `graceful exit: ${JSON.stringify(old.stopped)}`);
            // Answered, not cut off: the first failure is the 402, and it
            // came before the new server was even listening.
            assert.equal(refused, 1, `a failure before the 402: ${JSON.stringify(timeline)}`);
            assert.ok(timeline[refused].at < own.readyAt, "the 402 came from the old server");
          }
          const again = timeline.findLastIndex((e) => e.handshake === true);
          assert.ok(again > refused, `no handshake after the 402: ${JSON.stringify(timeline)}`);
          assert.equal(timeline[again].reestablish, true);
          assert.notEqual(timeline[again].clientId, firstId);
          assert.equal(client.getClientId(), timeline[again].clientId);
          assert.equal(client.getTransport().type, transport);

          const publisher = newClient(own.url, { transport });
          assert.equal((await connect(publisher)).successful, true);
          await published(publisher, "/r/room", { after: "restart" });
          const [message] = await inbox.count(1);
          assertDelivery(message, "/r/room", { after: "restart" }, publisher.getClientId());
        } finally {
          await disconnectAll();
          await own.stop();
        }
      });
    }

    if (transport === "long-polling") {
      test("two sessions of one browser: the extra one polls, both receive", TEST, async () => {
        // Both clients share the process-wide cookie jar: one BAYEUX_BROWSER.
        const first = await connected({ sharedCookies: true });
        const second = await connected({ sharedCookies: true });
        const advised = [];
        for (const client of [first, second]) {
          client.addListener("/meta/connect", (m) => {
            if (m.advice?.["multiple-clients"]) advised.push({ client, advice: m.advice });
          });
        }
        // Default maxSessionsPerBrowser is 1: whichever connect comes second
        // is answered at once and told to poll every 2 s.
        await eventually(() => advised.length > 0, "a multiple-clients advice");
        assert.equal(advised[0].advice.interval, 2000);

        const inboxes = [new Inbox(), new Inbox()];
        await subscribed(first, "/m/room", inboxes[0]);
        await subscribed(second, "/m/room", inboxes[1]);
        const publisher = await connected();
        await published(publisher, "/m/room", { to: "both tabs" });
        for (const inbox of inboxes) {
          const [message] = await inbox.count(1, 6_000);
          assertDelivery(message, "/m/room", { to: "both tabs" }, publisher.getClientId());
        }
      });
    }
  });
}

describe("CometD client over callback-polling", () => {
  const suite = suiteServer();

  suite.test("handshakes, publishes and receives", TEST, async () => {
    // One callback-polling client: the transport names its JSONP callbacks
    // by a per-instance counter on the shared window, so two would clash.
    const jsonp = newClient(suite.server.url, { transport: "callback-polling" });
    const reply = await connect(jsonp);
    assert.equal(reply.successful, true, JSON.stringify(reply));
    assert.equal(jsonp.getTransport().type, "callback-polling");
    const peer = newClient(suite.server.url, { transport: "long-polling" });
    assert.equal((await connect(peer)).successful, true);

    const atJsonp = new Inbox();
    const atPeer = new Inbox();
    for (const [client, inbox] of [[jsonp, atJsonp], [peer, atPeer]]) {
      const { reply: r } = await subscribe(client, "/jsonp/room", inbox.listener);
      assert.equal(r.successful, true, JSON.stringify(r));
    }

    const fromJsonp = { text: "from callback-polling", symbols: "&?=#%\"</script>" };
    assert.equal((await publish(jsonp, "/jsonp/room", fromJsonp)).successful, true);
    const [atPeerMessage] = await atPeer.count(1);
    assertDelivery(atPeerMessage, "/jsonp/room", fromJsonp, jsonp.getClientId());
    await atJsonp.count(1); // its own message comes back to it too

    assert.equal((await publish(peer, "/jsonp/room", { text: "to callback-polling" })).successful, true);
    const messages = await atJsonp.count(2);
    assertDelivery(messages[1], "/jsonp/room", { text: "to callback-polling" }, peer.getClientId());

    const echoes = new Inbox();
    assert.equal((await subscribe(jsonp, "/service/echo", echoes.listener)).reply.successful, true);
    assert.equal((await publish(jsonp, "/service/echo", { echo: "jsonp" })).successful, true);
    assert.deepEqual((await echoes.count(1))[0].data, { echo: "jsonp" });
  });
});
