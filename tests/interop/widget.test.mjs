// The embeddable chat widget in headless Chromium, on a shop's site (a
// second origin, listed in [cors], under a strict CSP), against the agent
// desk: a whole chat; a customer reload mid-chat; a gmshub restart mid-chat
// and a stop longer than the client's retry; a message the server refuses;
// Enter and Shift+Enter; CometD blocked on the way (the chat runs over REST);
// and the same widget on a site that is not listed, which starts nothing. Chromium must be installed (apt-get install -y
// chromium) or named by CHROMIUM_BIN; without it these tests fail.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite } from "./chromium.mjs";
import { freePort, restartServer, startServer } from "./server.mjs";
import {
  configFile, deskAccept, deskLines, deskLogin, deskReady, deskSend, openPage, shopSite,
  widgetLines, widgetSend, widgetStart, widgetState,
} from "./pages.mjs";
import { sleep } from "./wait.mjs";

const MAX_MESSAGE = 40;

describe("the chat widget on another site, in headless Chromium", () => {
  let shop, unlistedShop, unlisted, shopOrigin;
  const suite = chromiumSuite(async () => {
    const port = await freePort();
    shopOrigin = `http://127.0.0.1:${port}`;
    shop = await shopSite(port, () => suite.server.origin, {
      "data-accent": "#8a2be2",
      "data-user-data": JSON.stringify({ account: "A-42", page: "checkout" }),
    });
    const config = configFile(`[chat.customer-support]\nmax-message-size = ${MAX_MESSAGE}\n`);
    return {
      env: {
        GMSHUB_CONFIG: config,
        GMSHUB__CORS__ALLOWEDORIGINPATTERNS: shopOrigin.replaceAll(".", "\\."),
      },
    };
  });
  after(async () => {
    shop?.close();
    unlistedShop?.close();
    await unlisted?.stop();
  });

  /** A desk logged in and ready, and the shop's page with a chat it accepted. */
  async function chatting(problems, name) {
    const desk = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
    await deskLogin(desk);
    await deskReady(desk);
    const customer = await openPage(suite.browser, `${shopOrigin}/`, problems);
    await widgetStart(customer, name, `help for ${name}`);
    await widgetState(customer, "waiting");
    const box = await deskAccept(desk, `help for ${name}`);
    await widgetState(customer, "connected");
    return { desk, customer, box };
  }

  async function close(...pages) {
    for (const p of pages) await p.context().close();
  }

  it("a whole chat from the shop's page with the agent desk", { timeout: 90_000 }, async () => {
    await suite.ready;
    const problems = [];
    const desk = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
    await deskLogin(desk);
    await deskReady(desk);
    const customer = await openPage(suite.browser, `${shopOrigin}/`, problems);
    // The launcher, in the site's colour (data-accent), opens the panel.
    const launcher = customer.locator("#gmshub-chat .launcher");
    assert.equal(await launcher.evaluate((b) => getComputedStyle(b).backgroundColor), "rgb(138, 43, 226)");
    await widgetStart(customer, "Jane", "my order");
    await widgetState(customer, "waiting");
    assert.match(await customer.textContent("#gmshub-chat #state"), /Waiting for an agent/);

    const box = await deskAccept(desk, "my order");
    // The site's user data reaches the agent.
    assert.match(await box.locator("dl.user-data").textContent(), /accountA-42.*pagecheckout/s);
    await widgetState(customer, "connected");
    assert.equal(await customer.textContent("#gmshub-chat #state"), "You are chatting with Agent");

    await widgetSend(customer, "Where is my parcel?");
    await box.locator("li[data-type=Message] .text", { hasText: "Where is my parcel?" }).waitFor();
    await box.locator("textarea").type("It", { delay: 20 });
    await customer.locator("#gmshub-chat #typing", { hasText: "is typing" }).waitFor();
    await deskSend(box, "It left the warehouse today.");
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "It left the warehouse today." }).waitFor();
    assert.equal(await customer.locator("#gmshub-chat li.theirs time").count(), 1, "a timestamp per line");

    await customer.click("#gmshub-chat #end");
    await widgetState(customer, "ended");
    await desk.waitForSelector(".chat[data-state=ended]");
    assert.equal(await customer.isVisible("#gmshub-chat #again"), true, "a new chat can be started");
    assert.deepEqual(problems, []);
    await close(desk, customer);
  });

  it("a reload of the customer's page continues the same chat", { timeout: 90_000 }, async () => {
    await suite.ready;
    const problems = [];
    const { desk, customer, box } = await chatting(problems, "Reload");
    await widgetSend(customer, "first");
    await deskSend(box, "second");
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "second" }).waitFor();
    const before = await widgetLines(customer);

    await customer.reload();
    await widgetState(customer, "connected");
    assert.deepEqual(await widgetLines(customer), before, "the transcript is back, as it was");
    await deskSend(box, "third");
    await widgetSend(customer, "fourth");
    await box.locator("li[data-type=Message] .text", { hasText: "fourth" }).waitFor();
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "third" }).waitFor();

    const lines = await widgetLines(customer);
    const indexes = lines.map(([i]) => i);
    assert.deepEqual(indexes, [...new Set(indexes)].sort((a, b) => a - b), "in order, none twice");
    assert.deepEqual(lines.filter(([, t]) => t === "Message").map(([, , text]) => text), ["first", "second", "third", "fourth"]);
    // The agent saw no new chat, and no one left.
    assert.equal(await desk.locator(".chat").count(), 1);
    assert.equal(await desk.locator("#offers li").count(), 0);
    assert.equal((await deskLines(box)).filter(([, t]) => t === "ParticipantLeft").length, 0);
    assert.deepEqual(problems, []);
    await close(desk, customer);
  });

  it("a gmshub restart, then a stop longer than the retry: the same chat goes on", { timeout: 120_000 }, async () => {
    await suite.ready;
    const problems = [];
    const { desk, customer, box } = await chatting(problems, "Restart");
    await widgetSend(customer, "before the restart");
    await box.locator("li[data-type=Message] .text", { hasText: "before the restart" }).waitFor();

    suite.server = await restartServer(suite.server, "SIGTERM");
    await deskSend(box, "after the restart");
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "after the restart" }).waitFor({ timeout: 30_000 });
    await widgetState(customer, "connected");
    await widgetSend(customer, "still here");
    await box.locator("li[data-type=Message] .text", { hasText: "still here" }).waitFor({ timeout: 30_000 });

    // Down for longer than the client's backoff: the widget says so.
    const { port, env } = suite.server;
    await suite.server.stop("SIGTERM");
    await widgetState(customer, "reconnecting");
    assert.match(await customer.textContent("#gmshub-chat #state"), /Reconnecting/);
    await sleep(8_000);
    assert.equal(await customer.getAttribute("#gmshub-chat #state", "data-state"), "reconnecting");
    suite.server = await startServer({ port, env });
    await widgetState(customer, "connected");
    await deskSend(box, "back again");
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "back again" }).waitFor({ timeout: 30_000 });

    const lines = await widgetLines(customer);
    const texts = lines.filter(([, t]) => t === "Message").map(([, , text]) => text);
    assert.deepEqual(texts, ["before the restart", "after the restart", "still here", "back again"]);
    assert.equal(await desk.locator(".chat", { hasText: "help for Restart" }).count(), 1, "one chat, never split");
    assert.equal(await desk.locator("#offers li").count(), 0, "and no second one waiting");
    assert.deepEqual(problems.filter((p) => !/HTTP 503/.test(p)), []);
    await close(desk, customer);
  });

  it("a refused message stays in the box with the reason; Enter sends, Shift+Enter does not", { timeout: 60_000 }, async () => {
    await suite.ready;
    const problems = [];
    const { desk, customer, box } = await chatting(problems, "Refused");
    const long = "x".repeat(MAX_MESSAGE + 20);
    await widgetSend(customer, long);
    await customer.locator("#gmshub-chat #send-error", { hasText: "too long" }).waitFor();
    assert.equal(await customer.inputValue("#gmshub-chat #message"), long, "the text is kept");

    await customer.fill("#gmshub-chat #message", "two");
    await customer.press("#gmshub-chat #message", "Shift+Enter");
    await customer.type("#gmshub-chat #message", "lines");
    assert.equal(await customer.inputValue("#gmshub-chat #message"), "two\nlines");
    await customer.press("#gmshub-chat #message", "Enter");
    await box.locator("li[data-type=Message] .text", { hasText: "two\nlines" }).waitFor();
    await customer.waitForFunction(() => document.querySelector("#gmshub-chat").shadowRoot.querySelector("#message").value === "");
    assert.equal(await customer.textContent("#gmshub-chat #send-error"), "", "the reason is gone once a message went");
    assert.equal((await deskLines(box)).filter(([, t]) => t === "Message").length, 1, "the long one never arrived");
    assert.deepEqual(problems, []);
    await close(desk, customer);
  });

  it("with CometD blocked on the way, the chat runs over REST polling", { timeout: 60_000 }, async () => {
    await suite.ready;
    const problems = [];
    const desk = await openPage(suite.browser, `${suite.server.origin}/agent`, problems);
    await deskLogin(desk);
    await deskReady(desk);
    // A network that lets the REST API through but not CometD (some proxies do that).
    const customer = await openPage(suite.browser, `${shopOrigin}/`, problems, {
      async before(context) {
        await context.route("**/genesys/cometd**", (route) => route.abort());
        await context.routeWebSocket(/\/genesys\/cometd/, (ws) => ws.close());
      },
    });
    await widgetStart(customer, "Polly", "over rest");
    await widgetState(customer, "waiting");
    const box = await deskAccept(desk, "over rest");
    await widgetState(customer, "connected");
    await widgetSend(customer, "sent over REST");
    await box.locator("li[data-type=Message] .text", { hasText: "sent over REST" }).waitFor();
    await deskSend(box, "polled over REST");
    await customer.locator("#gmshub-chat li.theirs .text", { hasText: "polled over REST" }).waitFor();
    assert.deepEqual(problems, []);
    await close(desk, customer);
  });

  it("on a site that is not allowed, it says chat is unavailable and starts nothing", { timeout: 60_000 }, async () => {
    await suite.ready;
    unlisted = await startServer();
    const port = await freePort();
    unlistedShop = await shopSite(port, () => unlisted.origin);
    const problems = [];
    const customer = await openPage(suite.browser, `http://127.0.0.1:${port}/`, problems);
    await widgetStart(customer, "Ghost", "nothing");
    await widgetState(customer, "unavailable");
    assert.match(await customer.textContent("#gmshub-chat #state"), /not available right now/);
    const login = await fetch(`${unlisted.origin}/gmshub/agent/login`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ agent: "agent", password: "agent" }),
    });
    const auth = { authorization: `Bearer ${(await login.json()).token}`, "content-type": "application/json" };
    await fetch(`${unlisted.origin}/gmshub/agent/ready`, { method: "POST", headers: auth, body: "{}" });
    const offers = await (await fetch(`${unlisted.origin}/gmshub/agent/offers`, { headers: auth })).json();
    assert.deepEqual(offers.offers, [], "no ghost chat");
    await close(customer);
  });
});
