// Cross-origin access in headless Chromium: a widget page served from a
// second origin (another port) uses gmshub's Chat API v2 over REST, the
// official CometD client over long-polling, and a raw WebSocket. With that
// origin listed in [cors] all three work; with the default (no origin
// listed) all three are refused, and the refused REST call left no chat
// behind (the agent is offered none).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { freePort, startServer } from "./server.mjs";
import { within } from "./wait.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"];
const COMETD = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "cometd");

// The embedding site's page: it tries each way in and reports what worked.
const WIDGET = `<!doctype html><meta charset="utf-8"><title>shop</title>
<script type="module">
import { CometD } from "/cometd/cometd.js";
const gms = new URL(location).searchParams.get("gms");
window.result = (async () => {
  const out = {};
  try {
    const r = await fetch(gms + "/genesys/2/chat/customer-support",
      { method: "POST", body: new URLSearchParams({ nickname: "Ann" }) });
    out.rest = (await r.json()).statusCode;
  } catch (e) { out.rest = "blocked"; }
  out.cometd = await new Promise((ok) => {
    const cometd = new CometD();
    cometd.unregisterTransport("websocket");
    cometd.configure({ url: gms + "/genesys/cometd", maxNetworkDelay: 3000 });
    cometd.handshake((m) => { ok(m.successful ? cometd.getTransport().type : "failed"); cometd.disconnect(); });
  });
  out.websocket = await new Promise((ok) => {
    const ws = new WebSocket(gms.replace("http", "ws") + "/genesys/cometd");
    ws.onopen = () => { ok("open"); ws.close(); };
    ws.onerror = () => ok("refused");
  });
  return out;
})();
</script>`;

/** The embedding site: the widget page and the CometD client's files. */
function site(port) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(WIDGET);
    } else if (path.startsWith("/cometd/") && /^[\w.]+\.js$/.test(path.slice(8))) {
      res.writeHead(200, { "content-type": "text/javascript" })
        .end(readFileSync(join(COMETD, path.slice(8))));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok(server)));
}

async function offers(gms) {
  const login = await fetch(`${gms}/gmshub/agent/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ agent: "agent", password: "agent" }),
  });
  const { token } = await login.json();
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  await fetch(`${gms}/gmshub/agent/ready`, { method: "POST", headers: auth, body: "{}" });
  const list = await fetch(`${gms}/gmshub/agent/offers`, { headers: auth });
  return (await list.json()).offers;
}

describe("a widget on another origin, in headless Chromium", () => {
  let browser, shop, origin, listed, unlisted, ready;
  before(async () => {
    ready = (async () => {
      if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}`);
      const port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      shop = await site(port);
      listed = await startServer({ env: {
        GMSHUB__CORS__ALLOWEDORIGINPATTERNS: origin.replaceAll(".", "\\."),
        GMSHUB__CORS__ALLOWCREDENTIALS: "true",
      } });
      unlisted = await startServer();
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    })();
    await ready.catch(() => {});
  }, { timeout: 60_000 });
  after(async () => {
    await within(10_000, browser?.close() ?? Promise.resolve(), "closing Chromium").catch(() => {});
    await listed?.stop();
    await unlisted?.stop();
    shop?.close();
  }, { timeout: 30_000 });

  async function tryFrom(gms) {
    const page = await browser.newPage();
    await page.goto(`${origin}/?gms=${encodeURIComponent(gms)}`);
    const out = await page.evaluate(() => window.result);
    await page.close();
    return out;
  }

  it("works when the origin is listed", { timeout: 30_000 }, async () => {
    await ready;
    const out = await tryFrom(listed.origin);
    assert.deepEqual(out, { rest: 0, cometd: "long-polling", websocket: "open" });
    assert.equal((await offers(listed.origin)).length, 1, "the chat was created");
  });

  it("is refused, leaving nothing behind, when it is not", { timeout: 30_000 }, async () => {
    await ready;
    const out = await tryFrom(unlisted.origin);
    assert.deepEqual(out, { rest: "blocked", cometd: "failed", websocket: "refused" });
    assert.deepEqual(await offers(unlisted.origin), [], "no ghost chat");
    assert.match(unlisted.output(), /CORS: no cross-origin access/);
  });
});
