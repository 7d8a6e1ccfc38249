// With GMS's Basic authentication configured for every group ([server]
// username/password, Chat API v2 protected too), the official CometD client
// still connects, subscribes and receives over WebSocket and long-polling
// (CometD is public, as in GMS), and a Chat API v2 customer works with the
// credentials and is refused (401, GMS's challenge) without them.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, disconnectAll, Inbox, newClient, publish, subscribe } from "./cometd.mjs";
import { startServer } from "./server.mjs";

const BASIC = "Basic " + Buffer.from("ors:s3cret").toString("base64");

describe("with credentials configured", () => {
  let server;
  before(async () => {
    server = await startServer({ env: {
      GMSHUB__SERVER__USERNAME: "ors",
      GMSHUB__SERVER__PASSWORD: "s3cret",
      GMSHUB__CHAT__DISABLE_AUTHENTICATION: "false",
    } });
  });
  after(async () => {
    await disconnectAll();
    await server?.stop();
  });

  for (const transport of ["websocket", "long-polling"]) {
    it(`the CometD client works unchanged (${transport})`, async () => {
      const a = newClient(server.url, { transport });
      const b = newClient(server.url, { transport });
      assert.equal((await connect(a)).successful, true);
      assert.equal((await connect(b)).successful, true);
      const inbox = new Inbox();
      assert.equal((await subscribe(b, "/room/auth", inbox.listener)).reply.successful, true);
      assert.equal((await publish(a, "/room/auth", { text: "hi" })).successful, true);
      await inbox.count(1);
      assert.deepEqual(inbox.data, [{ text: "hi" }]);
    });
  }

  it("a Chat API v2 customer needs the credentials", async () => {
    const chat = `${server.origin}/genesys/2/chat/customer-support`;
    const body = new URLSearchParams({ nickname: "Ann" });
    const refused = await fetch(chat, { method: "POST", body });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("www-authenticate"), 'Basic realm="Genesys Application Configuration Needed"');
    assert.equal(await refused.text(), "");
    const started = await fetch(chat, { method: "POST", body, headers: { authorization: BASIC } });
    const v = await started.json();
    assert.equal(v.statusCode, 0, JSON.stringify(v));
    const send = await fetch(`${chat}/${v.chatId}/send`, {
      method: "POST",
      headers: { authorization: BASIC },
      body: new URLSearchParams({ userId: v.userId, secureKey: v.secureKey, alias: v.alias, message: "hello" }),
    });
    assert.equal((await send.json()).statusCode, 0);
  });
});
