// A page a client uploads through the Storage API must not run as a page of
// gmshub's origin: headless Chromium opens the file's URL and no script of
// it runs (it is an attachment, with `Content-Security-Policy: sandbox`).
// The same markup rendered as a page does run, so the check can see it.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromiumSuite } from "./chromium.mjs";

const MARK = "stored-script-ran";
const PAGE = `<!doctype html><title>upload</title>
<script>console.log("${MARK}"); document.title = "owned";</script>`;

describe("stored files in headless Chromium", () => {
  const suite = chromiumSuite();

  /** A page that records every console line and page error of `page`. */
  async function watched(context) {
    const page = await context.newPage();
    const seen = [];
    page.on("console", (m) => seen.push(m.text()));
    page.on("pageerror", (e) => seen.push(`error: ${e.message}`));
    return { page, seen };
  }

  it("an uploaded text/html file runs no script when opened", { timeout: 60_000 }, async () => {
    await suite.ready;
    const form = new FormData();
    form.append("Page", new Blob([PAGE], { type: "text/html" }), "offer.html");
    const created = await fetch(`${suite.server.origin}/genesys/1/storage/3600`, { method: "POST", body: form });
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = await created.json();
    const url = `${suite.server.origin}/genesys/1/storage/${id}/Page`;

    const context = await suite.browser.newContext({ acceptDownloads: true });
    try {
      // The detector works: the same markup as a page runs.
      const control = await watched(context);
      await control.page.setContent(PAGE);
      await control.page.waitForFunction(() => document.title === "owned");
      assert.ok(control.seen.includes(MARK), JSON.stringify(control.seen));

      const opened = await watched(context);
      const download = opened.page.waitForEvent("download", { timeout: 10_000 });
      // Chromium turns the navigation into a download, which aborts it.
      await opened.page.goto(url).catch(() => {});
      const file = await download;
      assert.equal(file.suggestedFilename(), "offer.html");
      await opened.page.waitForTimeout(500);
      assert.deepEqual(opened.seen, []);
      assert.notEqual(await opened.page.title(), "owned");
    } finally {
      await context.close();
    }
  });
});
