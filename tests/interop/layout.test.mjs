// Every page at phone and desktop width, in headless Chromium: no sideways
// scrolling at 375 px (the page's scroll width is its width), no serious or
// critical finding of axe-core (the widget's shadow root included), no
// failed load (the favicon included), and a screenshot of each, written to
// docs/screenshots/ (linked from the README). Chromium must be installed
// (apt-get install -y chromium) or named by CHROMIUM_BIN; without it this
// test fails.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromiumSuite } from "./chromium.mjs";
import { deskAccept, deskLogin, deskReady, deskSend, openPage, widgetStart, widgetState } from "./pages.mjs";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const SHOTS = process.env.GMSHUB_SCREENSHOTS || join(dirname(fileURLToPath(import.meta.url)), "../../docs/screenshots");
const WIDTHS = { phone: { width: 375, height: 740 }, desktop: { width: 1280, height: 860 } };

// Each page, and what brings it to the state worth looking at.
const PAGES = {
  playground: {
    path: "/",
    async prepare(p) {
      await p.click("#connect");
      await p.waitForFunction(() => document.getElementById("status").textContent === "connected");
      await p.click("#subscribe");
      await p.locator("#log li", { hasText: "subscribed" }).waitFor();
    },
  },
  chat: {
    path: "/chat",
    async prepare(p) {
      await widgetStart(p, "Jane", "A question about my order");
      await widgetState(p, "waiting");
    },
  },
  agent: {
    path: "/agent",
    // With a chat open (started over REST, as a customer would) and answered.
    async prepare(p, origin) {
      await deskLogin(p);
      await deskReady(p);
      const subject = `Delivery ${Math.random().toString(36).slice(2, 8)}`;
      const body = new URLSearchParams({ nickname: "Jane", subject, "userData[account]": "A-42" });
      await fetch(`${origin}/genesys/2/chat/customer-support`, { method: "POST", body });
      const box = await deskAccept(p, subject);
      await deskSend(box, "Hello Jane, how can I help?");
      await box.locator("li[data-type=Message]").waitFor();
    },
  },
  callback: { path: "/callback", async prepare(p) { await p.waitForFunction(() => document.getElementById("link").textContent === "live"); } },
};

describe("every page at phone and desktop width", () => {
  const suite = chromiumSuite();
  mkdirSync(SHOTS, { recursive: true });

  for (const [name, page] of Object.entries(PAGES)) {
    for (const [width, viewport] of Object.entries(WIDTHS)) {
      it(`${name} at ${viewport.width} px: fits, passes axe-core, screenshot`, { timeout: 60_000 }, async () => {
        await suite.ready;
        const problems = [];
        // axe-core is injected through the DevTools protocol, past the page's CSP.
        const p = await openPage(suite.browser, `${suite.server.origin}${page.path}`, problems, { viewport, bypassCSP: true });
        await page.prepare(p, suite.server.origin);
        const { scrollWidth, clientWidth } = await p.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth,
        }));
        assert.ok(scrollWidth <= clientWidth, `${name}: scrolls sideways (${scrollWidth} > ${clientWidth})`);
        await p.evaluate(AXE);
        const findings = await p.evaluate(async () => {
          const result = await window.axe.run(document, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
        });
        assert.deepEqual(findings, [], `${name}: axe-core`);
        await p.screenshot({ path: join(SHOTS, `${name}-${width}.png`) });
        assert.deepEqual(problems, []);
        await p.context().close();
      });
    }
  }
});
