// Admin "Pull a model": sends one frame to /ws/admin/pull/ and shows the progress it streams.
const form = document.getElementById("pull-form");
const state = document.getElementById("pull-state");
const table = document.getElementById("pull-layers");
const rows = new Map();

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function show(frame) {
  if (frame.type === "pull.progress") {
    table.hidden = false;
    const key = frame.digest || frame.status;
    let row = rows.get(key);
    if (!row) {
      row = table.tBodies[0].insertRow();
      row.insertCell(); row.insertCell(); row.insertCell();
      rows.set(key, row);
    }
    row.cells[0].textContent = frame.status;
    if (frame.total) {
      const percent = Math.floor((100 * (frame.completed || 0)) / frame.total);
      row.cells[1].innerHTML = `<progress max="100"></progress> <span></span>`;
      row.cells[1].querySelector("progress").value = percent;
      row.cells[1].querySelector("span").textContent = `${percent}%`;
      row.cells[2].textContent = `${bytes(frame.completed)} / ${bytes(frame.total)}`;
    }
    state.textContent = `Pulling ${frame.model}…`;
  } else if (frame.type === "pull.done") {
    state.textContent = `Pulled ${frame.model}: it is now in the model list.`;
  } else if (frame.type === "error") {
    state.textContent = `Failed: ${frame.detail}`;
  }
}

if (form) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/admin/pull/`);
  socket.addEventListener("message", (event) => show(JSON.parse(event.data)));
  socket.addEventListener("close", () => { state.textContent ||= "Connection closed: reload the page."; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    rows.clear();
    table.tBodies[0].replaceChildren();
    state.textContent = "Starting…";
    socket.send(JSON.stringify({ type: "pull", provider: form.provider.value, model: form.model.value.trim() }));
  });
}
