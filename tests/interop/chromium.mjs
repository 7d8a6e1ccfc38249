// Headless Chromium for the page suites: one gmshub and one browser per
// suite. Chromium is not downloaded by playwright: it must be installed
// (Debian: apt-get install -y chromium) or named by CHROMIUM_BIN; without
// it the suites fail, they do not skip.

import { after, before } from "node:test";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";
import { within } from "./wait.mjs";

export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
export const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/**
 * Registers the suite's hooks: gmshub started with `serverOptions` (an
 * object for startServer, or a function returning one, or a promise of one) and Chromium.
 * Returns { ready, server, browser }: every test awaits `ready` first, so a
 * failed setup (such as Chromium missing) fails each test with its reason
 * instead of cancelling it.
 */
export function chromiumSuite(serverOptions = {}) {
  const suite = { ready: null, server: null, browser: null };
  before(async () => {
    suite.ready = (async () => {
      if (!existsSync(CHROMIUM)) {
        throw new Error(
          `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_BIN`,
        );
      }
      const options = typeof serverOptions === "function" ? await serverOptions() : serverOptions;
      suite.server = await startServer(options);
      suite.browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    })();
    await suite.ready.catch(() => {});
  }, { timeout: 60_000 });
  after(async () => {
    await within(10_000, suite.browser?.close() ?? Promise.resolve(), "closing Chromium").catch(() => {});
    await suite.server?.stop();
  }, { timeout: 30_000 });
  return suite;
}
