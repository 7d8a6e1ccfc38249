// The official CometD client over gmshub's own TLS listener: `wss://` and
// `https://` long-polling with the certificate trusted (made here by
// openssl, never committed), and nothing at all when it is not trusted
// (the client really checks the certificate gmshub presents).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, startServer } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

/** A self-signed certificate for 127.0.0.1, in `dir`. */
function issue(dir) {
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=gmshub test",
    "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { cert, key };
}

/** What the client in its own process saw, trusting `ca` (or nothing). */
async function client(url, transport, ca) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (ca) env.NODE_EXTRA_CA_CERTS = ca;
  const { stdout } = await run(process.execPath, [join(here, "wss-client.mjs"), url, transport], {
    env,
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split("\n").pop());
}

describe("the CometD client over TLS", () => {
  let server;
  let dir;
  let issued;
  let url;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gmshub-tls-"));
    issued = issue(dir);
    const port = await freePort();
    server = await startServer({ env: {
      GMSHUB__TLS__LISTEN: `127.0.0.1:${port}`,
      GMSHUB__TLS__CERTIFICATE: issued.cert,
      GMSHUB__TLS__PRIVATE_KEY: issued.key,
    } });
    url = `https://127.0.0.1:${port}/genesys/cometd`;
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of ["websocket", "long-polling"]) {
    it(`works over ${transport === "websocket" ? "wss://" : "https:// long-polling"}`, async () => {
      const seen = await client(url, transport, issued.cert);
      assert.deepEqual(seen, {
        handshake: true,
        transport,
        subscribed: true,
        published: true,
        received: [{ text: "over TLS" }],
      });
    });
  }

  it("gets nowhere when the certificate is not trusted", async () => {
    const seen = await client(url, "websocket", null);
    assert.equal(seen.handshake, false, JSON.stringify(seen));
    assert.equal(seen.received, undefined);
  });
});
