// The demo chat page: residents' words and replies are shown as text, never HTML.
const log = document.getElementById("log");
function bubble(who, text) {
  const row = document.createElement("div");
  row.className = "msg " + who;
  const b = document.createElement("div");
  b.className = "bubble";
  b.textContent = text;  // residents' words and replies are text, never HTML
  row.appendChild(b);
  log.appendChild(row);
  window.scrollTo(0, document.body.scrollHeight);
}
async function send(payload) {
  const r = await fetch("send", {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(payload)});
  const data = await r.json();
  if (data.reply) bubble("bot", data.reply);
}
document.getElementById("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  const text = input.value.trim();
  if (!text) return;
  bubble("me", text);
  input.value = "";
  send({text});
});
document.querySelectorAll(".menu button").forEach((btn) => btn.addEventListener("click", () => {
  bubble("me", "［" + btn.textContent + "］");
  send({event: btn.dataset.event, key: btn.dataset.key || ""});
}));
