// Lets the official CometD client's callback-polling transport run in Node.
//
// That transport sends each request by adding a <script src="...?jsonp=NAME
// &message=..."> to the page's <head>; the server answers with script that
// calls window[NAME](replies). Node has no DOM, so this module provides the
// three DOM calls the transport makes and does what a browser does with such
// a script: GET it (with the cookies this "browser" holds), refuse it unless
// it is served as JavaScript (the server sends `nosniff`), and run it, here
// in an empty VM context where only the named callback exists, so a response
// calling anything else fails.

import http from "node:http";
import vm from "node:vm";

/** Cookies of the one simulated browser, by name. */
const cookies = new Map();

/** Installs window.document for the callback-polling transport (once). */
export function installJsonpDocument() {
  const window = globalThis.window;
  if (!window) throw new Error("call adapt() from cometd-nodejs-client first");
  if (window.document) return;
  const head = {
    appendChild: (script) => load(script),
    removeChild: () => {},
  };
  window.document = {
    getElementsByTagName: (name) => (name === "head" ? [head] : []),
    createElement: (tag) => ({ tagName: tag.toUpperCase(), src: "", onerror: null }),
  };
}

function load(script) {
  const url = new URL(script.src);
  const callbackName = url.searchParams.get("jsonp");
  const fail = (why) => script.onerror?.({ type: "error", reason: why });
  const headers = cookies.size ? { cookie: [...cookies.values()].join("; ") } : {};
  // agent: false: one connection per script, closed afterwards, as nothing
  // here should keep the process alive once a test is done.
  const request = http.get(url, { headers, agent: false }, (response) => {
    for (const header of response.headers["set-cookie"] ?? []) {
      const pair = header.split(";")[0].trim();
      const eq = pair.indexOf("=");
      if (eq > 0) cookies.set(pair.slice(0, eq), pair);
    }
    let body = "";
    response.setEncoding("utf8");
    response.on("data", (chunk) => (body += chunk));
    response.on("end", () => {
      const type = response.headers["content-type"] ?? "";
      if (response.statusCode !== 200) return fail(`HTTP ${response.statusCode}`);
      if (!/^(text|application)\/javascript\b/i.test(type)) return fail(`not script: ${type}`);
      const callback = globalThis.window[callbackName];
      if (typeof callback !== "function") return fail(`no callback ${callbackName}`);
      try {
        // In a browser the script runs in the page's realm; objects made in
        // the VM's realm would fail the client's `instanceof Array` checks,
        // so the replies are copied into ours.
        const sandbox = { [callbackName]: (replies) => callback(structuredClone(replies)) };
        vm.runInNewContext(body, sandbox, { timeout: 1000 });
      } catch (e) {
        // A browser would only report this on window.onerror and leave the
        // request to time out; failing now makes the test fail sooner.
        fail(`script error: ${e.message}`);
      }
    });
  });
  request.on("error", (e) => fail(e.message));
}
