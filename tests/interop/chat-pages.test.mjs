// The chat page (/chat, which embeds the widget) and the agent desk
// (/agent) in headless Chromium. A customer and an agent talk, typing shows
// on both sides, text with HTML in it stays text, the chat ends on both
// sides: once over CometD, once over the widget's REST polling. Then the
// desk as people work in it, with two agents: presence survives a reload,
// a new offer sounds and shows in the title, an invited colleague joins,
// a transfer to another queue reaches the agent serving it, and ended
// chats close. Chromium must be installed (apt-get install -y chromium) or
// named by CHROMIUM_BIN; without it these tests fail, they do not skip.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite } from "./chromium.mjs";
import {
  configFile, deskAccept, deskLogin, deskReady, deskSend, openPage,
  widgetSend, widgetStart, widgetState,
} from "./pages.mjs";

const HOSTILE_NAME = 'Jane <img src=x onerror="window.pwned=1">';
const HOSTILE_TEXT = "<b>bold</b><script>window.pwned=2</script>";
const ACCOUNTS = `[agent.alice]
password = alice-secret
nickname = Alice
queues = Environment:default

[agent.bob]
password = bob-secret
nickname = Bob
queues = Environment:vip
`;

describe("chat page and agent desk in headless Chromium", () => {
  const suite = chromiumSuite(() => ({ env: { GMSHUB_CONFIG: configFile(ACCOUNTS) } }));

  for (const mode of ["cometd", "rest"]) {
    it(`customer (${mode}) and agent talk until the chat ends`, { timeout: 90_000 }, async () => {
      await suite.ready;
      const problems = [];
      const desk = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
      await deskLogin(desk, "alice", "alice-secret");
      await deskReady(desk);

      const widget = await openPage(suite.browser, `${suite.server.origin}/chat${mode === "rest" ? "?transport=rest" : ""}`, problems);
      const cometdRequests = [];
      widget.on("request", (r) => r.url().includes("/genesys/cometd") && cometdRequests.push(r.url()));
      widget.on("websocket", (ws) => ws.url().includes("/genesys/cometd") && cometdRequests.push(ws.url()));
      await widgetStart(widget, HOSTILE_NAME, `refund ${mode}`);
      await widgetState(widget, "waiting");

      const box = await deskAccept(desk, `refund ${mode}`);
      assert.ok((await box.locator("h3").textContent()).includes(HOSTILE_NAME), "the name shown as typed");
      await widgetState(widget, "connected");
      await widget.locator("#gmshub-chat li[data-type=ParticipantJoined]", { hasText: "Alice joined" }).waitFor();

      // The customer types: the desk shows it; then sends text with HTML in it.
      await widget.type("#gmshub-chat #message", "<b>", { delay: 20 });
      await box.locator(".typing", { hasText: "is typing" }).waitFor();
      await widgetSend(widget, HOSTILE_TEXT);
      const got = box.locator("li[data-type=Message] .text").last();
      await got.waitFor();
      assert.equal(await got.textContent(), HOSTILE_TEXT);
      assert.equal(await box.locator("ul b, ul script, ul img").count(), 0, "no markup made it into the page");

      // The agent types and answers: the widget shows both.
      await box.locator("textarea").type("Hello", { delay: 20 });
      await widget.locator("#gmshub-chat #typing", { hasText: "Alice is typing" }).waitFor();
      await deskSend(box, "Hello Jane, <i>one</i> moment");
      await widget.locator("#gmshub-chat li.theirs .text", { hasText: "Hello Jane, <i>one</i> moment" }).waitFor();
      assert.equal(await widget.locator("#gmshub-chat #transcript i, #gmshub-chat #transcript img, #gmshub-chat #transcript b").count(), 0);

      // The customer ends the chat: both sides show it; the desk closes it.
      await widget.click("#gmshub-chat #end");
      await widgetState(widget, "ended");
      await desk.waitForSelector(`.chat[data-state="ended"]`);
      assert.equal(await widget.isVisible("#gmshub-chat #composer"), false);
      await box.locator("button", { hasText: "Close" }).click();
      assert.equal(await desk.locator(".chat").count(), 0, "an ended chat closes");

      if (mode === "rest") assert.deepEqual(cometdRequests, [], "REST only: CometD was never asked");
      else assert.ok(cometdRequests.length > 0, "CometD carried it");
      for (const p of [widget, desk]) assert.equal(await p.evaluate(() => window.pwned), undefined, "no script ran");
      assert.deepEqual(problems, []);
      await widget.context().close();
      await desk.context().close();
    });
  }

  it("the desk: presence after a reload, offer alerts, invite, transfer, logout", { timeout: 120_000 }, async () => {
    await suite.ready;
    const problems = [];
    const alice = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
    await deskLogin(alice, "alice", "alice-secret");
    await deskReady(alice, 2);
    // A reload keeps the login and shows the presence the server has.
    await alice.reload();
    await alice.waitForSelector("#desk:not(.hidden)");
    await alice.waitForFunction(() => document.getElementById("presence").dataset.ready === "true");
    assert.equal(await alice.textContent("#presence"), "Ready for 2 chats");
    await alice.waitForFunction(() => document.getElementById("events").textContent === "live");

    const bob = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
    await deskLogin(bob, "bob", "bob-secret");
    await deskReady(bob);

    // A new chat: alice's desk chimes and says so in its title.
    const first = await openPage(suite.browser, `${suite.server.origin}/chat`, problems);
    await widgetStart(first, "Ann", "invite me");
    await alice.locator("#alert", { hasText: "New chat waiting: Ann" }).waitFor();
    assert.match(await alice.title(), /^\(1\) New chat/);
    assert.ok(Number(await alice.getAttribute("body", "data-chimes")) >= 1, "the chime played");
    const box = await deskAccept(alice, "invite me");
    await alice.waitForFunction(() => !document.title.startsWith("("));

    // Invite bob: his desk gets the chat, the customer sees him join.
    await box.locator("select[id^=colleague]").selectOption("bob");
    await box.locator("button", { hasText: "Invite" }).click();
    const bobBox = bob.locator(".chat", { hasText: "invite me" });
    await bobBox.waitFor();
    await first.locator("#gmshub-chat li[data-type=ParticipantJoined]", { hasText: "Bob joined" }).waitFor();
    await deskSend(bobBox, "Bob here");
    await first.locator("#gmshub-chat li.theirs .text", { hasText: "Bob here" }).waitFor();
    await bobBox.locator("button", { hasText: "End chat" }).click();
    await widgetState(first, "ended");
    for (const b of [box, bobBox]) {
      await b.locator("button", { hasText: "Close" }).waitFor();
      await b.locator("button", { hasText: "Close" }).click();
    }

    // Transfer to the vip queue: alice leaves, bob is offered it.
    const second = await openPage(suite.browser, `${suite.server.origin}/chat`, problems);
    await widgetStart(second, "Ben", "transfer me");
    const box2 = await deskAccept(alice, "transfer me");
    await deskSend(box2, "Let me pass you on.");
    await box2.locator("select[id^=queue]").selectOption("Environment:vip");
    await box2.locator("button", { hasText: "Transfer" }).click();
    await box2.locator(".typing", { hasText: "You left this chat." }).waitFor();
    await bob.locator("#alert", { hasText: "New chat waiting: Ben" }).waitFor();
    const bobBox2 = await deskAccept(bob, "transfer me");
    // Bob sees what was said before him, with times.
    await bobBox2.locator("li[data-type=Message] .text", { hasText: "Let me pass you on." }).waitFor();
    assert.ok((await bobBox2.locator("li time").count()) > 0);
    await second.locator("#gmshub-chat li[data-type=ParticipantJoined]", { hasText: "Bob joined" }).waitFor();
    await widgetState(second, "connected");
    assert.equal(await second.textContent("#gmshub-chat #state"), "You are chatting with Bob");

    await alice.click("#logout");
    await alice.waitForSelector("#login:not(.hidden)");
    await alice.reload();
    await alice.waitForSelector("#login:not(.hidden)");
    assert.deepEqual(problems, []);
    for (const p of [alice, bob, first, second]) await p.context().close();
  });

  it("the widget's texts follow data-lang (German here), an unknown language falls back to English", { timeout: 30_000 }, async () => {
    await suite.ready;
    const problems = [];
    const de = await openPage(suite.browser, `${suite.server.origin}/chat?lang=de`, problems);
    await de.locator("#gmshub-chat #start-button", { hasText: "Chat beginnen" }).waitFor();
    assert.equal(await de.textContent("#gmshub-chat label[for=field-nickname]"), "Ihr Name");
    assert.equal(await de.getAttribute("#gmshub-chat", "lang"), "de");
    await widgetStart(de, "Jana", "Rechnung");
    await widgetState(de, "waiting");
    assert.match(await de.textContent("#gmshub-chat #state"), /Wir suchen einen Mitarbeiter/);
    const fr = await openPage(suite.browser, `${suite.server.origin}/chat?lang=fr`, problems);
    await fr.locator("#gmshub-chat #start-button", { hasText: "Start chat" }).waitFor();
    assert.equal(await fr.getAttribute("#gmshub-chat", "lang"), "en");
    assert.deepEqual(problems, []);
    for (const p of [de, fr]) await p.context().close();
  });
});
