// The chat widget (/chat) and the agent desk (/agent) in headless Chromium:
// a customer and an agent exchange messages, typing shows on both sides,
// text containing HTML is shown as text (no script runs), and the chat ends
// on both sides. Once with the widget on CometD, once on its REST fallback.
// Chromium must be installed (apt-get install -y chromium) or named by
// CHROMIUM_BIN; without it these tests fail, they do not skip.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite } from "./chromium.mjs";

const UI_MS = 15_000;
const HOSTILE_NAME = 'Jane <img src=x onerror="window.pwned=1">';
const HOSTILE_TEXT = "<b>bold</b><script>window.pwned=2</script>";

describe("chat widget and agent desk in headless Chromium", () => {
  const suite = chromiumSuite();

  async function page(path, problems) {
    const context = await suite.browser.newContext();
    const p = await context.newPage();
    p.setDefaultTimeout(UI_MS);
    p.on("pageerror", (e) => problems.push(`${path}: page error: ${e.message}`));
    p.on("dialog", (d) => problems.push(`${path}: a dialog opened: ${d.message()}`));
    await p.goto(`${suite.server.origin}${path}`);
    return p;
  }

  for (const mode of ["cometd", "rest"]) {
    it(`customer (${mode}) and agent talk until the chat ends`, { timeout: 90_000 }, async () => {
      await suite.ready;
      const problems = [];
      const desk = await page("/agent", problems);
      await desk.fill("#password", "agent");
      await desk.click("#login button");
      await desk.waitForSelector("#desk:not(.hidden)");
      await desk.waitForFunction(() => document.getElementById("events").textContent === "live");
      await desk.click("#ready");
      await desk.waitForFunction(() => document.getElementById("presence").textContent.startsWith("ready"));

      const widget = await page(mode === "rest" ? "/chat?transport=rest" : "/chat", problems);
      await widget.fill("#nickname", HOSTILE_NAME);
      await widget.fill("#subject", "refund");
      await widget.click("#start-button");
      await widget.waitForFunction(() => document.getElementById("state").textContent === "connected");
      assert.equal(await widget.textContent("#mode"), mode === "rest" ? "(REST polling)" : "(CometD)");

      // The offer reaches the desk; the agent takes it.
      const offer = desk.locator("#offers li", { hasText: "refund" });
      await offer.waitFor();
      assert.ok((await offer.textContent()).includes(HOSTILE_NAME), "the name shown as typed");
      await offer.locator("button", { hasText: "Accept" }).click();
      const box = desk.locator(".chat").first();
      await box.waitFor();
      await widget.locator("#transcript li[data-type=ParticipantJoined]").nth(1).waitFor();

      // The customer types: the desk shows it; then sends text with HTML in it.
      await widget.type("#message", "<b>", { delay: 20 });
      await box.locator(".typing", { hasText: "is typing" }).waitFor();
      await widget.fill("#message", HOSTILE_TEXT);
      await widget.click("#send");
      const got = box.locator("li[data-type=Message] .text").last();
      await got.waitFor();
      assert.equal(await got.textContent(), HOSTILE_TEXT);
      assert.equal(await box.locator("ul b, ul script, ul img").count(), 0, "no markup made it into the page");

      // The agent types and answers: the widget shows both.
      await box.locator("textarea").type("Hello", { delay: 20 });
      await widget.locator("#typing", { hasText: "is typing" }).waitFor();
      await box.locator("textarea").fill("Hello Jane, <i>one</i> moment");
      await box.locator("button", { hasText: "Send" }).click();
      const reply = widget.locator("#transcript li[data-type=Message]:not(.client) .text").last();
      await reply.waitFor();
      await widget.waitForFunction(
        () => [...document.querySelectorAll("#transcript li[data-type=Message] .text")].some((n) => n.textContent === "Hello Jane, <i>one</i> moment"),
      );
      assert.equal(await widget.locator("#transcript i, #transcript img, #transcript b").count(), 0);

      // The customer ends the chat: both sides show it.
      await widget.click("#end");
      await widget.waitForFunction(() => document.getElementById("state").textContent === "chat ended");
      await desk.waitForSelector('.chat[data-state="ended"]');
      assert.equal(await widget.isDisabled("#send"), true);

      for (const p of [widget, desk]) assert.equal(await p.evaluate(() => window.pwned), undefined, "no script ran");
      assert.deepEqual(problems, []);
      await widget.context().close();
      await desk.context().close();
    });
  }
});
