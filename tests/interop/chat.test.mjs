// Chat API v2 over CometD with the official CometD JavaScript client, the
// way GMS chat clients drive it: subscribe to /service/chatV2/{service},
// publish {operation: ...}, read every answer and event as deliveries on
// that channel. The agent answers through gmshub's agent API (REST).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { Inbox, connect, disconnect, disconnectAll, newClient, publish, subscribe } from "./cometd.mjs";
import { sleep } from "./wait.mjs";

const TEST = { timeout: 30_000 };
const CHANNEL = "/service/chatV2/customer-support";

class Agent {
  static async login(server) {
    const agent = new Agent();
    agent.base = `${server.origin}/gmshub/agent`;
    const r = await fetch(`${agent.base}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ agent: "agent", password: "agent" }),
    });
    assert.equal(r.status, 200);
    agent.token = (await r.json()).token;
    return agent;
  }

  async call(method, path, body) {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: r.status === 204 ? null : await r.json() };
  }
}

/** A customer on the CometD chat channel; `inbox` gets every payload. */
async function customer(server, transport) {
  const cometd = newClient(server.url, { transport });
  assert.equal((await connect(cometd)).successful, true);
  const inbox = new Inbox();
  await subscribe(cometd, CHANNEL, inbox.listener);
  return { cometd, inbox };
}

const events = (inbox) => inbox.data.flatMap((d) => d.messages ?? []);

for (const transport of ["websocket", "long-polling"]) {
  describe(`chat v2 over CometD (${transport})`, () => {
    let server;
    before(async () => (server = await startServer()), TEST);
    after(async () => {
      await disconnectAll();
      await server?.stop();
    }, TEST);

    it("a customer and an agent hold a whole conversation", TEST, async () => {
      const { cometd, inbox } = await customer(server, transport);
      const ack = await publish(cometd, CHANNEL, {
        operation: "requestChat",
        nickname: "Jane",
        subject: "billing",
        userData: { account: "42" },
      });
      assert.equal(ack.successful, true);
      const [first] = await inbox.count(1);
      const hello = first.data;
      assert.equal(first.channel, CHANNEL);
      assert.equal(hello.statusCode, 0);
      assert.equal(hello.chatEnded, false);
      assert.ok(hello.chatId && hello.userId && hello.secureKey, JSON.stringify(hello));
      assert.deepEqual(hello.messages.map((m) => m.type), ["ParticipantJoined"]);
      const key = hello.secureKey;

      const agent = await Agent.login(server);
      await agent.call("POST", "/ready", { capacity: 1 });
      const taken = await agent.call("POST", "/chats/next");
      assert.equal(taken.status, 200);
      assert.equal(taken.body.chatId, hello.chatId);
      assert.equal(taken.body.userData.account, "42");
      await inbox.until(() => events(inbox).some((m) => m.type === "ParticipantJoined" && m.from.type === "Agent"), "agent joined");

      await agent.call("POST", `/chats/${hello.chatId}/start-typing`, {});
      await agent.call("POST", `/chats/${hello.chatId}/send`, { message: "Hello Jane, how can I help?" });
      await inbox.until(() => events(inbox).some((m) => m.type === "Message" && m.from.type === "Agent"), "agent's message");
      assert.ok(events(inbox).some((m) => m.type === "TypingStarted"), "typing shows");

      // Only the secureKey identifies the customer's requests (as the SDKs send them).
      await publish(cometd, CHANNEL, { operation: "startTyping", secureKey: key });
      await publish(cometd, CHANNEL, { operation: "sendMessage", secureKey: key, message: "My invoice is wrong" });
      await publish(cometd, CHANNEL, { operation: "pushUrl", secureKey: key, pushUrl: "https://example.com/invoice/7" });
      await publish(cometd, CHANNEL, { operation: "customNotice", secureKey: key, message: "page=invoices" });
      await publish(cometd, CHANNEL, { operation: "updateNickname", secureKey: key, nickname: "Jane D" });
      await publish(cometd, CHANNEL, { operation: "updateData", secureKey: key, userData: { invoice: 7 } });
      await inbox.until(() => events(inbox).some((m) => m.type === "NicknameUpdated"), "own events echoed");
      // A publish is acknowledged on arrival; updateData leaves no event, so
      // wait until the agent side shows it.
      let seen;
      for (let tries = 0; ; tries++) {
        seen = await agent.call("GET", `/chats/${hello.chatId}?from=1`);
        if (seen.body.userData.invoice === "7") break;
        assert.ok(tries < 200, `user data not updated: ${JSON.stringify(seen.body.userData)}`);
        await sleep(25);
      }
      const texts = seen.body.messages.filter((m) => m.type === "Message").map((m) => m.text);
      assert.deepEqual(texts, ["Hello Jane, how can I help?", "My invoice is wrong"]);

      // Every event arrived once, in index order, none missing.
      const indexes = events(inbox).map((m) => m.index);
      assert.deepEqual(indexes, indexes.map((_, i) => i + 1), `indexes ${indexes}`);

      // Errors come back on the channel in the Digital Channels shape.
      await publish(cometd, CHANNEL, { operation: "sendMessage", secureKey: "not-a-key", message: "x" });
      await publish(cometd, CHANNEL, { operation: "fly", secureKey: key });
      await inbox.until(() => inbox.data.filter((d) => d.statusCode === 2).length >= 2, "two errors");
      const errors = inbox.data.filter((d) => d.statusCode === 2);
      // Each request is answered on its own; two may finish in either order.
      assert.deepEqual(errors.map((d) => d.errors[0].code).sort(), [102, 107]);
      assert.ok(errors.every((d) => typeof d.chatEnded === "boolean"));

      // The agent ends the chat: the customer is told.
      await agent.call("POST", `/chats/${hello.chatId}/end`);
      await inbox.until(() => inbox.data.some((d) => d.chatEnded === true && d.statusCode === 0), "chat ended");
      await disconnect(cometd);
    });

    it("a customer resumes on a new connection and gets exactly the missed events", TEST, async () => {
      const first = await customer(server, transport);
      await publish(first.cometd, CHANNEL, { operation: "requestChat", firstName: "Ann", lastName: "Lee" });
      const [hello] = await first.inbox.count(1);
      const { chatId, secureKey } = hello.data;
      assert.equal(hello.data.messages[0].from.nickname, "Ann Lee");
      const agent = await Agent.login(server);
      await agent.call("POST", "/ready", { capacity: 5 });
      await agent.call("POST", `/chats/${chatId}/accept`);
      await first.inbox.until(() => events(first.inbox).length >= 2, "agent joined");
      const position = Math.max(...events(first.inbox).map((m) => m.index)) + 1;

      // The app goes away (its connection ends); the agent keeps writing.
      await disconnect(first.cometd);
      for (const text of ["one", "two", "three"]) {
        await agent.call("POST", `/chats/${chatId}/send`, { message: text });
      }

      const second = await customer(server, transport);
      await publish(second.cometd, CHANNEL, {
        operation: "requestNotifications",
        secureKey,
        transcriptPosition: String(position),
      });
      const [resumed] = await second.inbox.count(1);
      assert.equal(resumed.data.statusCode, 0);
      assert.deepEqual(resumed.data.messages.map((m) => m.text), ["one", "two", "three"]);
      assert.deepEqual(resumed.data.messages.map((m) => m.index), [position, position + 1, position + 2]);

      // Later events follow the customer to the new connection.
      await agent.call("POST", `/chats/${chatId}/send`, { message: "still there?" });
      await second.inbox.until(() => events(second.inbox).some((m) => m.text === "still there?"), "new event");
      await publish(second.cometd, CHANNEL, { operation: "disconnect", secureKey });
      await second.inbox.until(() => second.inbox.data.some((d) => d.chatEnded), "ended by the customer");
      const gone = await agent.call("POST", `/chats/${chatId}/send`, { message: "bye" });
      assert.equal(gone.status, 410);
    });
  });
}

describe("the agent side over CometD", () => {
  let server;
  before(async () => (server = await startServer()), TEST);
  after(async () => {
    await disconnectAll();
    await server?.stop();
  }, TEST);

  it("an attached agent session hears of offers and of every change to its chats", TEST, async () => {
    const agent = await Agent.login(server);
    await agent.call("POST", "/ready", { capacity: 1 });
    const desk = newClient(server.url);
    assert.equal((await connect(desk)).successful, true);
    const pings = new Inbox();
    await subscribe(desk, "/service/agent", pings.listener);
    await publish(desk, "/service/agent", { operation: "attach", token: "forged" });
    await pings.until((m) => m.some((x) => x.data.successful === false), "refused attach");
    await publish(desk, "/service/agent", { operation: "attach", token: agent.token });
    await pings.until((m) => m.some((x) => x.data.successful === true && x.data.agent === "agent"), "attach");

    // A customer asks for a chat (over REST): the desk hears of an offer.
    const form = new URLSearchParams({ nickname: "Kim" });
    const started = await (await fetch(`${server.origin}/genesys/2/chat/customer-support`, { method: "POST", body: form })).json();
    await pings.until((m) => m.some((x) => x.data.event === "offers" && x.data.chatId === started.chatId), "offer ping");

    await agent.call("POST", `/chats/${started.chatId}/accept`);
    const send = new URLSearchParams({ userId: started.userId, secureKey: started.secureKey, alias: "1", message: "hello desk" });
    await fetch(`${server.origin}/genesys/2/chat/customer-support/${started.chatId}/send`, { method: "POST", body: send });
    const ping = await pings.until(
      (m) => m.some((x) => x.data.event === "chat" && x.data.chatId === started.chatId && x.data.nextPosition >= 4),
      "chat ping",
    );
    const last = ping.filter((x) => x.data.event === "chat").at(-1).data;
    const chat = await agent.call("GET", `/chats/${started.chatId}?from=3`);
    assert.equal(chat.body.messages[0].text, "hello desk");
    assert.equal(chat.body.nextPosition, last.nextPosition);
    assert.equal(last.state, "connected");
    // The ping carries its change's events, as the transcript shows them.
    assert.deepEqual(last.messages, chat.body.messages.slice(-last.messages.length));
    assert.equal(last.messages.at(-1).text, "hello desk");
  });
});
