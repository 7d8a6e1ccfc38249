// The demo page at `/` in headless Chromium (driven by playwright-core): two
// tabs of one browser connect with the official CometD client the page
// loads, both subscribe to /demo/room, the first publishes, the second shows
// it. Run once per transport the page offers. Chromium is not downloaded by
// playwright: it must be installed (Debian: apt-get install -y chromium) or
// named by CHROMIUM_BIN; without it these tests fail, they do not skip.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { chromiumSuite } from "./chromium.mjs";

const UI_MS = 10_000;
const SCREENSHOT = "/tmp/gmshub-page.png";

describe("demo page in headless Chromium", () => {
  const suite = chromiumSuite();

  /** Opens the page in a tab, connects with `transport`, subscribes. */
  async function openConnected(context, transport, problems) {
    const page = await context.newPage();
    page.setDefaultTimeout(UI_MS);
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // Failed loads are reported through their responses (with the URL).
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
        problems.push(`console: ${m.text()}`);
      }
    });
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(`${suite.server.origin}/`);
    assert.equal(await page.inputValue("#url"), `${suite.server.origin}/genesys/cometd`);
    await page.selectOption("#transport", transport);
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#status").textContent === "connected");
    assert.equal(await page.textContent("#transport-used"), `(${transport})`);
    await page.fill("#channel", "/demo/room");
    await page.click("#subscribe");
    await page.locator("#log li", { hasText: "subscribed to /demo/room" }).waitFor();
    return page;
  }

  for (const transport of ["websocket", "long-polling", "callback-polling"]) {
    it(`one tab's message shows in the other (${transport})`, { timeout: 60_000 }, async () => {
      await suite.ready;
      // One context = one browser profile: the tabs share BAYEUX_BROWSER,
      // so over HTTP the second one is told multiple-clients and polls.
      const context = await suite.browser.newContext({ viewport: { width: 1000, height: 900 } });
      const problems = [];
      try {
        const sender = await openConnected(context, transport, problems);
        const receiver = await openConnected(context, transport, problems);

        const text = `hello over ${transport} ${randomUUID()}`;
        await sender.fill("#target", "/demo/room");
        await sender.fill("#text", text);
        await sender.click("#publish");

        for (const page of [receiver, sender]) { // the sender is subscribed too
          const shown = page.locator('#log li[data-received="1"]', { hasText: text });
          await shown.waitFor();
          assert.equal(await shown.count(), 1);
          assert.equal(await shown.locator(".channel").textContent(), "/demo/room");
          assert.equal(await shown.locator(".text").textContent(), text);
        }
        assert.equal(await receiver.textContent("#status"), "connected");
        const path = transport === "websocket" ? SCREENSHOT : SCREENSHOT.replace(".png", `-${transport}.png`);
        await receiver.screenshot({ path, fullPage: true });
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    });
  }

  it("Disconnect says disconnected; a bad channel name is explained, not sent", { timeout: 60_000 }, async () => {
    await suite.ready;
    const context = await suite.browser.newContext();
    const problems = [];
    try {
      const page = await openConnected(context, "websocket", problems);
      for (const [field, button, name, reason] of [
        ["#channel", "#subscribe", "demo/room", "starts with /"],
        ["#channel", "#subscribe", "/demo/*/x", "whole last segment"],
        ["#target", "#publish", "/demo/*", "no * or **"],
        ["#target", "#publish", "/demo//room", "no empty segment"],
      ]) {
        await page.fill(field, name);
        await page.click(button);
        const error = field === "#channel" ? "#channel-error" : "#target-error";
        await page.locator(error, { hasText: reason }).waitFor();
      }
      await page.click("#disconnect");
      await page.waitForFunction(() => document.getElementById("status").textContent === "disconnected");
      // Whatever the client's last /meta/connect said, it stays disconnected.
      await new Promise((ok) => setTimeout(ok, 1500));
      assert.equal(await page.textContent("#status"), "disconnected");
      assert.equal(await page.isDisabled("#publish"), true);
      assert.equal(await page.isEnabled("#connect"), true);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
