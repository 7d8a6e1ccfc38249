// The chat page: puts the widget on itself exactly as a site would, with
// the options this page's address asks for (?service=, ?lang=, ?transport=,
// ?fields=), and shows the tag it used.
(() => {
  const params = new URLSearchParams(location.search);
  const attributes = { "data-service": params.get("service") || "customer-support", "data-open": "true" };
  for (const name of ["lang", "transport", "fields", "title", "accent"]) {
    if (params.get(name)) attributes[`data-${name}`] = params.get(name);
  }
  const tag = document.createElement("script");
  tag.src = `${location.origin}/widget/v1/gmshub-chat.js`;
  for (const [k, v] of Object.entries(attributes)) tag.setAttribute(k, v);
  tag.defer = true;
  const shown = Object.entries(attributes)
    .filter(([k]) => k !== "data-open")
    .map(([k, v]) => ` ${k}="${v}"`)
    .join("");
  document.getElementById("snippet").textContent = `<script src="${tag.src}"${shown} defer></script>`;
  document.body.append(tag);
})();
