// What the page suites share: opening a page with its problems collected,
// the agent desk's and the widget's common moves, a second site that embeds
// the widget, and a gmshub configuration file.

import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const UI_MS = 15_000;

/**
 * A new browser context (`contextOptions`: viewport, timezoneId, ...) with
 * one page at `url`; page errors, dialogs and failed answers go to
 * `problems` (answers whose status is in `expected` excepted). `before`
 * (async, given the context) runs before the page loads: routes, say.
 */
export async function openPage(browser, url, problems, { expected = [], before, ...contextOptions } = {}) {
  const context = await browser.newContext(contextOptions);
  if (before) await before(context);
  const page = await context.newPage();
  page.setDefaultTimeout(UI_MS);
  const where = () => new URL(page.url()).pathname;
  page.on("pageerror", (e) => problems.push(`${where()}: page error: ${e.message}`));
  page.on("dialog", (d) => problems.push(`${where()}: a dialog opened: ${d.message()}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !expected.includes(r.status())) problems.push(`${where()}: HTTP ${r.status()} for ${r.url()}`);
  });
  await page.goto(url);
  return page;
}

/** Writes `text` as a gmshub configuration file; returns its path. */
export function configFile(text) {
  const dir = mkdtempSync(join(tmpdir(), "gmshub-pages-"));
  const path = join(dir, "gmshub.ini");
  writeFileSync(path, text);
  return path;
}

// ---- the agent desk -------------------------------------------------------

/** Logs in on the desk page and waits for its CometD pings to be live. */
export async function deskLogin(desk, agent = "agent", password = "agent") {
  await desk.fill("#agent", agent);
  await desk.fill("#password", password);
  await desk.click("#login button[type=submit]");
  await desk.waitForSelector("#desk:not(.hidden)");
  await desk.waitForFunction(() => document.getElementById("events").textContent === "live");
}

/** Makes the desk ready for `capacity` chats (the server remembers an
 * agent's presence across pages: ready already for as many is left as is). */
export async function deskReady(desk, capacity = 20) {
  const presence = () => desk.evaluate(() => ({
    ready: document.getElementById("presence").dataset.ready === "true",
    capacity: Number(document.getElementById("capacity").value),
  }));
  const now = await presence();
  if (now.ready && now.capacity === capacity) return;
  if (now.ready) {
    await desk.click("#not-ready");
    await desk.waitForFunction(() => document.getElementById("presence").dataset.ready === "false");
  }
  await desk.fill("#capacity", String(capacity));
  await desk.click("#ready");
  await desk.waitForFunction(() => document.getElementById("presence").dataset.ready === "true");
}

/** Accepts the offer whose text has `text`; returns the chat's box. */
export async function deskAccept(desk, text) {
  const offer = desk.locator("#offers li", { hasText: text });
  await offer.waitFor();
  const chatId = await offer.getAttribute("data-chat-id");
  await offer.locator("button", { hasText: "Accept" }).click();
  const box = desk.locator(`.chat[data-chat-id="${chatId}"]`);
  await box.waitFor();
  return box;
}

/** Sends `text` from a desk's chat box (with Enter). */
export async function deskSend(box, text) {
  await box.locator("textarea").fill(text);
  await box.locator("textarea").press("Enter");
}

// ---- the widget (in its shadow root, which CSS locators pierce) -----------

/** Waits until the widget's state is `state` (a key: waiting, connected, ...). */
export function widgetState(page, state) {
  return page.locator(`#gmshub-chat #state[data-state="${state}"]`).waitFor();
}

export async function widgetStart(page, nickname, subject) {
  if (await page.locator("#gmshub-chat .launcher").isVisible()) await page.click("#gmshub-chat .launcher");
  await page.fill("#gmshub-chat #field-nickname", nickname);
  if (subject) await page.fill("#gmshub-chat #field-subject", subject);
  await page.click("#gmshub-chat #start-button");
}

export async function widgetSend(page, text) {
  await page.fill("#gmshub-chat #message", text);
  await page.press("#gmshub-chat #message", "Enter");
}

/** The widget's transcript: [index, type, text] per line, in order. */
export function widgetLines(page) {
  return page.$$eval("#gmshub-chat #transcript li", (items) =>
    items.map((li) => [Number(li.dataset.index), li.dataset.type, li.querySelector(".text").textContent]));
}

/** The desk's lines of one chat box: [index, type, text]. */
export function deskLines(box) {
  return box.locator("ul li").evaluateAll((items) =>
    items.map((li) => [Number(li.dataset.index), li.dataset.type, li.querySelector(".text").textContent]));
}

// ---- a second site ----------------------------------------------------------

/**
 * A shop's web site on `port` whose page embeds the widget of `hub()` with
 * `attributes`, under a strict Content-Security-Policy that allows gmshub
 * and nothing inline. Resolves to the http.Server.
 */
export function shopSite(port, hub, attributes = {}) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/favicon.ico") return res.writeHead(204).end();
    if (path !== "/") return res.writeHead(404).end();
    const gms = hub();
    const attrs = Object.entries({ "data-service": "customer-support", ...attributes })
      .map(([k, v]) => ` ${k}='${v}'`)
      .join("");
    const ws = gms.replace(/^http/, "ws");
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy":
        `default-src 'self'; script-src ${gms}; style-src ${gms}; connect-src ${gms} ${ws}; worker-src blob:; img-src 'self'`,
    });
    res.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Shop</title>
<h1>The shop</h1><p>Products, prices, and help when you need it.</p>
<script src="${gms}/widget/v1/gmshub-chat.js"${attrs} defer></script></html>`);
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok(server)));
}
