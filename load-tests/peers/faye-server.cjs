// A plain Faye server, the peer that load-tests/bench.py measures gmshub
// against with the same generator.
//
// Usage: node faye-server.cjs [PORT]   (0 or nothing = any free port)
//
// Binds 127.0.0.1 only, prints one line "listening on http://127.0.0.1:PORT/faye"
// when ready (bench.py reads it), logs nothing per message, and exits on
// SIGTERM or SIGINT.
'use strict';

const http = require('http');
const faye = require('faye');

const port = Number(process.argv[2] || 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`faye-server: bad port ${JSON.stringify(process.argv[2])}`);
  process.exit(2);
}

// timeout: how long a /meta/connect is held open, in seconds; 30 matches
// gmshub's hold. `ping` stays unset: Faye then sends no keep-alives, and gmshub's
// (a WebSocket ping every 25 s) cost nothing at these durations.
const bayeux = new faye.NodeAdapter({ mount: '/faye', timeout: 30 });

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});
// Node's defaults would cut long-polls and idle keep-alive sockets sooner
// than gmshub does; a held connect lasts 30 s, so leave room beyond that.
server.requestTimeout = 0;
server.headersTimeout = 60000;
server.keepAliveTimeout = 65000;
bayeux.attach(server);

server.on('error', (err) => {
  console.error(`faye-server: ${err.message}`);
  process.exit(1);
});

// The third argument is the listen backlog. With the default (the kernel's
// 128 here, or Node's 511) thousands of clients connecting at once overflow
// the accept queue and crawl on SYN retries; gmshub asks for a big backlog too.
server.listen(port, '127.0.0.1', 4096, () => {
  const { port: bound } = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${bound}/faye\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`faye-server: ${signal}, stopping`);
  server.close(() => process.exit(0));
  // Open WebSockets and held long-polls would keep close() waiting: drop them.
  if (server.closeAllConnections) server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
