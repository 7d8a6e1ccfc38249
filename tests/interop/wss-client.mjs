// Run by tls.test.mjs in a process of its own, so that NODE_EXTRA_CA_CERTS
// (read only at start) can trust the test's certificate: the official CometD
// client talks to the `https://` URL given as argument over the transport
// given as the second, and prints what happened as one JSON line.

import { connect, disconnectAll, Inbox, newClient, publish, subscribe } from "./cometd.mjs";

const [url, transport] = process.argv.slice(2);
const result = {};
try {
  const a = newClient(url, { transport });
  const b = newClient(url, { transport });
  result.handshake = (await connect(a)).successful && (await connect(b)).successful;
  if (result.handshake) {
    result.transport = a.getTransport().type;
    const inbox = new Inbox();
    result.subscribed = (await subscribe(b, "/room/tls", inbox.listener)).reply.successful;
    result.published = (await publish(a, "/room/tls", { text: "over TLS" })).successful;
    await inbox.count(1);
    result.received = inbox.data;
  }
} catch (e) {
  result.error = String(e?.message ?? e);
}
await disconnectAll();
console.log(JSON.stringify(result));
process.exit(0);
