// gmshub's chat widget, embedded with one tag on any site:
//
//   <script src="https://HUB/widget/v1/gmshub-chat.js" data-service="customer-support" defer></script>
//
// Built into one file (with the official CometD JavaScript client) by
// build.rs with esbuild; options come from the tag's data- attributes
// (docs/widget.md lists them).

import { mount } from "./view.js";
import { textsFor } from "./texts.js";

const VERSION = "1";
const FIELD_NAMES = ["nickname", "firstName", "lastName", "email", "subject"];

// Read while this script runs: document.currentScript is gone afterwards.
const script = document.currentScript || document.querySelector('script[src*="/widget/v1/gmshub-chat.js"]');

function options() {
  const src = new URL(script.src, location.href);
  const d = script.dataset;
  const fields = (d.fields || "nickname,subject").split(",").map((f) => f.trim()).filter((f) => FIELD_NAMES.includes(f));
  if (!fields.includes("nickname") && !fields.includes("firstName")) fields.unshift("nickname");
  let userData;
  try {
    const parsed = d.userData ? JSON.parse(d.userData) : undefined;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      userData = Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
    }
  } catch {
    console.error("gmshub chat widget: data-user-data is not a JSON object; ignored");
  }
  const colour = (v) => (v && window.CSS?.supports("color", v) ? v : undefined);
  const { code, texts } = textsFor(d.lang || document.documentElement.lang || navigator.language);
  return {
    hub: (d.hub || src.origin).replace(/\/+$/, ""),
    service: d.service || "customer-support",
    transport: d.transport === "rest" ? "rest" : "auto",
    fields: [...new Set(fields)],
    userData,
    title: d.title,
    accent: colour(d.accent),
    accentText: colour(d.accentText),
    open: d.open === "true",
    lang: code,
    texts,
    stylesheet: new URL("gmshub-chat.css", src).href,
  };
}

function start() {
  if (window.gmshubChat) return; // the tag twice on one page: one widget
  const widget = mount(options());
  window.gmshubChat = { version: VERSION, open: widget.open, close: widget.close };
}

if (script) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
} else {
  console.error("gmshub chat widget: cannot find its own <script> tag");
}
