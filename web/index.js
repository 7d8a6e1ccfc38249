import { CometD } from "/js/cometd/cometd.js";

const $ = (id) => document.getElementById(id);
$("url").value = `${location.origin}/genesys/cometd`;
let cometd = null;

function log(text, cls) {
  const li = document.createElement("li");
  li.className = cls || "";
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(li);
}

function setConnected(on) {
  $("status").textContent = on ? "connected" : "disconnected";
  $("status").className = on ? "connected" : "disconnected";
  $("connect").disabled = on;
  for (const id of ["disconnect", "subscribe", "publish"]) $(id).disabled = !on;
}

$("connect").onclick = () => {
  cometd = new CometD();
  const choice = $("transport").value;
  if (choice !== "websocket") {
    for (const name of cometd.getTransportTypes()) {
      if (name !== choice) cometd.unregisterTransport(name);
    }
  }
  cometd.configure({ url: $("url").value, logLevel: "warn" });
  cometd.addListener("/meta/connect", (m) => {
    setConnected(m.successful === true);
    $("transport-used").textContent = cometd.getTransport() ? `(${cometd.getTransport().type})` : "";
  });
  cometd.handshake((reply) => {
    if (reply.successful) {
      log(`handshake ok, clientId ${reply.clientId}`, "meta");
    } else {
      log(`handshake failed: ${reply.error || "no answer"}`, "meta");
    }
  });
};

$("disconnect").onclick = () => {
  cometd.disconnect(() => { setConnected(false); log("disconnected", "meta"); });
};

$("subscribe").onclick = () => {
  const channel = $("channel").value;
  cometd.subscribe(channel, (m) => {
    const text = typeof m.data === "object" && m.data && "text" in m.data ? m.data.text : JSON.stringify(m.data);
    const li = document.createElement("li");
    li.innerHTML = `<span class="time"></span>  <span class="channel"></span> <span class="text"></span>`;
    li.querySelector(".time").textContent = new Date().toLocaleTimeString();
    li.querySelector(".channel").textContent = m.channel;
    li.querySelector(".text").textContent = text;
    li.dataset.received = "1";
    $("log").prepend(li);
  }, (reply) => log(reply.successful ? `subscribed to ${channel}` : `subscribe failed: ${reply.error}`, "meta"));
};

$("publish").onclick = () => {
  const channel = $("target").value;
  cometd.publish(channel, { text: $("text").value }, (reply) => {
    if (!reply.successful) log(`publish failed: ${reply.error}`, "meta");
  });
};
