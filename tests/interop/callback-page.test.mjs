// The callback page (/callback) in headless Chromium: it connects with the
// official CometD client, lists free times, books a callback with its
// session as the device, and shows every state change live as the router
// (driven here over HTTP) moves the callback: the "agent available" prompt,
// the customer's "ready", completion. Then a scheduled booking from the
// list of free times, cancelled from the page. A number that is not a phone
// number shows GMS's error. Chromium must be installed (apt-get install -y
// chromium) or named by CHROMIUM_BIN; without it this test fails.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromiumSuite } from "./chromium.mjs";

const UI_MS = 15_000;
// A service whose customers confirm when an agent is free.
const CONFIG = `[service.confirm]
_service = callback
_type = ors
_wait_for_user_confirm = true
`;

describe("callback page in headless Chromium", () => {
  const suite = chromiumSuite(() => {
    const dir = mkdtempSync(join(tmpdir(), "gmshub-callback-"));
    writeFileSync(join(dir, "callback.ini"), CONFIG);
    return { env: { GMSHUB_CONFIG: join(dir, "callback.ini") } };
  });

  async function router(path, body) {
    const r = await fetch(`${suite.server.origin}/gmshub/callback/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    const text = await r.text();
    assert.equal(r.status, 200, `${path}: ${text}`);
    return JSON.parse(text);
  }

  async function open(problems) {
    const context = await suite.browser.newContext();
    const p = await context.newPage();
    p.setDefaultTimeout(UI_MS);
    p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await p.goto(`${suite.server.origin}/callback?service=confirm`);
    await p.waitForFunction(() => document.getElementById("link").textContent === "live");
    return p;
  }

  const states = (p) => p.$$eval("#timeline li", (items) => items.map((li) => li.dataset.state));

  it("books a callback and follows it to completion, live", { timeout: 90_000 }, async () => {
    await suite.ready;
    const problems = [];
    const p = await open(problems);

    await p.fill("#number", "12");
    await p.click("#book-button");
    await p.waitForFunction(() => document.getElementById("error").textContent.includes("not a valid phone number"));

    await p.fill("#number", "+1 650 253 0000");
    await p.click("#book-button");
    await p.locator("#timeline li[data-state=QUEUED]").waitFor();
    const id = await p.textContent("#cb-id");
    assert.match(id, /^[0-9a-f-]{36}$/);

    const taken = await router("confirm/next", { router: "browser-test" });
    assert.equal(taken._id, id);
    await p.locator("#prompt:not(.hidden)").waitFor();
    assert.match(await p.textContent("#prompt-text"), /agent is available/i);
    await p.click("#ready");
    await p.waitForFunction(() => document.getElementById("dialog").textContent.includes("receive the call"));

    await router(`${id}/state`, { state: "PROCESSING" });
    await router(`${id}/state`, { state: "COMPLETED", reason: "AGENT_CONNECTED" });
    await p.locator("#timeline li[data-state=COMPLETED]").waitFor();
    assert.deepEqual(await states(p), ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
    assert.equal(await p.textContent("#state"), "COMPLETED (AGENT_CONNECTED)");
    assert.deepEqual(problems, []);
  });

  it("books a free time from the list and cancels it", { timeout: 60_000 }, async () => {
    await suite.ready;
    const problems = [];
    const p = await open(problems);
    await p.fill("#number", "+1 650 253 0001");
    await p.check("input[name=when][value=later]");
    await p.waitForFunction(() => document.querySelectorAll("#slots option").length > 0);
    const first = await p.$eval("#slots option", (o) => o.value);
    await p.click("#book-button");
    await p.locator("#timeline li[data-state=SCHEDULED]").waitFor();
    assert.match(await p.textContent("#dialog"), /scheduled for/);
    const id = await p.textContent("#cb-id");
    const r = await fetch(`${suite.server.origin}/genesys/1/service/callback?_id=${id}`);
    const [record] = await r.json();
    assert.equal(record._desired_time, first);

    await p.click("#cancel");
    await p.locator("#timeline li[data-state=COMPLETED]").waitFor();
    assert.equal(await p.textContent("#state"), "COMPLETED (CANCELLED)");
    assert.deepEqual(problems, []);
  });
});
