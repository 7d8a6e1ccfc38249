// The callback page (/callback) in headless Chromium: it books a callback
// with its CometD session as the device and shows every state change live,
// in the customer's words, as the router (over HTTP, or the page's own
// router panel, which acts on the callback on screen) moves it: the "agent
// available" prompt, the customer's "ready", completion. A free time is
// chosen and shown in the browser's time zone (Europe/Berlin), and then
// cancelled. A reload and a gmshub restart pick the callback up again by
// its id. A number that is not a phone number is refused with the reason.
// Chromium must be installed (apt-get install -y chromium) or named by
// CHROMIUM_BIN; without it this test fails.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite } from "./chromium.mjs";
import { restartServer } from "./server.mjs";
import { configFile, openPage } from "./pages.mjs";

// A service whose customers confirm when an agent is free.
const CONFIG = `[service.confirm]
_service = callback
_type = ors
_wait_for_user_confirm = true
`;
const BERLIN = { timezoneId: "Europe/Berlin", locale: "en-GB" };

describe("callback page in headless Chromium", () => {
  const suite = chromiumSuite(() => ({ env: { GMSHUB_CONFIG: configFile(CONFIG) } }));

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

  async function open(problems, options = {}) {
    const p = await openPage(suite.browser, `${suite.server.origin}/callback?service=confirm`, problems, options);
    await p.waitForFunction(() => document.getElementById("link").textContent === "live");
    return p;
  }

  const states = (p) => p.$$eval("#timeline li", (items) => items.map((li) => li.dataset.state));
  const stateIs = (p, state) => p.waitForSelector(`#state[data-state="${state}"]`);

  async function book(p, number) {
    await p.fill("#number", number);
    await p.click("#book-button");
    await p.locator("#timeline li").first().waitFor();
    return p.textContent("#cb-id");
  }

  it("books a callback and follows it to completion, live", { timeout: 90_000 }, async () => {
    await suite.ready;
    const problems = [];
    const p = await open(problems, { expected: [400] });

    await p.fill("#number", "12");
    await p.click("#book-button");
    await p.waitForFunction(() => document.getElementById("error").textContent.includes("not a valid phone number"));

    const id = await book(p, "+1 650 253 0000");
    assert.match(id, /^[0-9a-f-]{36}$/);
    await stateIs(p, "QUEUED");
    assert.equal(await p.textContent("#state"), "Waiting for an agent");

    const taken = await router("confirm/next", { router: "browser-test" });
    assert.equal(taken._id, id);
    await p.locator("#prompt:not(.hidden)").waitFor();
    assert.match(await p.textContent("#prompt-text"), /Are you ready/);
    await p.click("#ready");
    await p.locator("#prompt.hidden").waitFor({ state: "attached" });

    await router(`${id}/state`, { state: "PROCESSING" });
    await router(`${id}/state`, { state: "COMPLETED", reason: "AGENT_CONNECTED" });
    await stateIs(p, "COMPLETED");
    assert.deepEqual(await states(p), ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
    assert.equal(await p.textContent("#state"), "Done");
    assert.match(await p.textContent("#dialog"), /complete/);
    assert.equal(await p.isVisible("#again"), true);
    assert.deepEqual(problems, []);
  });

  it("the router panel acts on the callback on screen, not the oldest one", { timeout: 60_000 }, async () => {
    await suite.ready;
    const problems = [];
    const other = await open(problems);
    const older = await book(other, "+1 650 253 0002");
    const p = await open(problems);
    const mine = await book(p, "+1 650 253 0003");
    await p.click("#router summary");
    await p.click("#take");
    await p.locator("#prompt:not(.hidden)").waitFor();
    await stateIs(p, "ROUTING");
    const read = async (id) => (await (await fetch(`${suite.server.origin}/genesys/1/service/callback/confirm/${id}`)).json())._callback_state;
    assert.equal(await read(mine), "ROUTING");
    assert.equal(await read(older), "QUEUED", "the older one was left alone");
    await p.click("#complete");
    await stateIs(p, "COMPLETED");
    await other.click("#cancel");
    await stateIs(other, "COMPLETED");
    assert.deepEqual(problems, []);
  });

  it("a free time in Berlin: chosen and shown in local time, then cancelled", { timeout: 60_000 }, async () => {
    await suite.ready;
    const problems = [];
    const p = await open(problems, BERLIN);
    assert.equal(await p.textContent("#zone"), "Europe/Berlin time");
    await p.fill("#number", "+1 650 253 0001");
    await p.check("input[name=when][value=later]");
    await p.waitForFunction(() => document.querySelectorAll("#slots option").length > 0);
    const [value, label] = await p.$eval("#slots option", (o) => [o.value, o.textContent]);
    const local = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit" }).format(new Date(value));
    assert.ok(label.includes(local), `the slot ${value} shows as Berlin time ${local}: ${label}`);
    await p.click("#book-button");
    await stateIs(p, "SCHEDULED");
    const dialog = await p.textContent("#dialog");
    assert.ok(dialog.includes(local) && dialog.includes("Europe/Berlin"), dialog);
    assert.doesNotMatch(dialog, /\d{4}-\d\d-\d\dT/, "no raw UTC time");
    const id = await p.textContent("#cb-id");
    const [record] = await (await fetch(`${suite.server.origin}/genesys/1/service/callback?_id=${id}`)).json();
    assert.equal(record._desired_time, value);

    await p.click("#cancel");
    await stateIs(p, "COMPLETED");
    assert.equal(await p.textContent("#state"), "Cancelled");
    assert.deepEqual(problems, []);
  });

  it("a reload and a gmshub restart keep following the callback", { timeout: 90_000 }, async () => {
    await suite.ready;
    const problems = [];
    const p = await open(problems);
    const id = await book(p, "+1 650 253 0004");
    await stateIs(p, "QUEUED");

    await p.reload();
    await stateIs(p, "QUEUED");
    assert.equal(await p.textContent("#cb-id"), id);
    await router("confirm/next", { router: "browser-test" });
    await stateIs(p, "ROUTING");

    suite.server = await restartServer(suite.server, "SIGTERM");
    await p.waitForFunction(() => document.getElementById("link").textContent === "live", null, { timeout: 30_000 });
    await router(`${id}/state`, { state: "PROCESSING" });
    await stateIs(p, "PROCESSING");
    await router(`${id}/state`, { state: "COMPLETED", reason: "AGENT_CONNECTED" });
    await stateIs(p, "COMPLETED");
    assert.deepEqual(await states(p), ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
    assert.deepEqual(problems.filter((x) => !/HTTP 503/.test(x)), []);
  });
});
