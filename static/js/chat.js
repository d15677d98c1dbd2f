// The chat page's one module: a websocket to /ws/chat/<uuid>/ and the DOM it updates.
// Every frame is merged idempotently: deltas carry the offset of their text, so frames
// that arrive twice, late, or after a resync never duplicate or lose text.

const root = document.getElementById("chat");
const messagesEl = document.getElementById("messages");
const form = document.getElementById("composer");
const prompt = document.getElementById("prompt");
const modelPicker = document.getElementById("model-picker");
const modelSummary = document.getElementById("model-summary");
const blindToggle = document.getElementById("blind-toggle");
const blindInput = document.getElementById("blind");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const composerError = document.getElementById("composer-error");
const connectionState = document.getElementById("connection-state");
const titleEl = document.getElementById("conversation-title");

let conversationId = root.dataset.conversationId || "";
let socket = null;
let retryDelay = 500;
let pendingSend = null;
let followStream = true;
const texts = new Map(); // message id -> text received so far

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function lastMessageId() {
  const ids = [...messagesEl.querySelectorAll("[data-message-id]")].map((el) => Number(el.dataset.messageId));
  return ids.length ? Math.max(...ids) : 0;
}

function setConnection(text) {
  connectionState.textContent = text;
}

function showComposerError(text) {
  if (!composerError) return;
  composerError.textContent = text;
  composerError.hidden = !text;
}

function isStreaming() {
  return messagesEl.querySelector('[data-status="streaming"]') !== null;
}

function refreshControls() {
  if (!form) return;
  const streaming = isStreaming();
  stopButton.hidden = !streaming;
  sendButton.disabled = streaming;
}

function scrollToEnd() {
  if (followStream) messagesEl.scrollTop = messagesEl.scrollHeight;
}

messagesEl.addEventListener("scroll", () => {
  followStream = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 40;
});

function turns() {
  return [...messagesEl.querySelectorAll(":scope > .turn")];
}

function turnElement(promptId) {
  return messagesEl.querySelector(`.turn[data-prompt-id="${promptId}"]`);
}

function actionButton(className, text, hidden = false) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `link ${className}`;
  button.textContent = text;
  button.hidden = hidden;
  return button;
}

// Messages arrive rendered by the server, with the templates of the page itself (a prompt
// with its whole turn, an answer as its article): this script only places them and applies
// text deltas, so the page and the socket can never show a message differently.
function fromHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = html; // our own server-rendered, sanitised partial
  return template.content.firstElementChild;
}

// Put a message's rendering where it belongs on the shown branch; false when it does not
// fit (a new version or another branch): the caller then reloads the branch from the server.
function placeMessage(message) {
  const rendered = fromHtml(message.html);
  if (!rendered) return false;
  if (message.role === "user") {
    const existing = turnElement(message.id);
    if (existing) {
      const prompt = rendered.querySelector(`:scope > [data-message-id="${message.id}"]`);
      existing.querySelector(`:scope > [data-message-id="${message.id}"]`)?.replaceWith(prompt);
      return true;
    }
    const all = turns();
    const last = all.length ? Number(all[all.length - 1].dataset.promptId) : null;
    if ((message.parent ?? null) !== last) return false;
    document.getElementById("empty-state")?.remove();
    messagesEl.appendChild(rendered);
    return true;
  }
  const existing = messagesEl.querySelector(`[data-message-id="${message.id}"]`);
  if (existing) {
    existing.replaceWith(rendered);
    return true;
  }
  const turn = turnElement(message.parent);
  if (!turn) return false;
  const replies = turn.querySelector(".replies");
  if (replies.querySelector(`:scope > [data-column="${message.column}"]`)) return false;
  const after = [...replies.children].find((child) => Number(child.dataset.column) > message.column);
  replies.insertBefore(rendered, after || null);
  replies.dataset.columns = String(replies.children.length);
  return true;
}

function renderMessage(message) {
  if (!placeMessage(message)) {
    scheduleReload();
    return;
  }
  for (const el of messagesEl.querySelectorAll(`[data-message-id="${message.id}"], .turn[data-prompt-id="${message.id}"] [data-status="streaming"]`)) {
    const id = Number(el.dataset.messageId);
    const content = el.querySelector(".content");
    if (el.dataset.status === "streaming") {
      // The text this page has seen may be ahead of the text the server had saved.
      const known = texts.get(id) || "";
      if (known.length > content.textContent.length) content.textContent = known;
      else texts.set(id, content.textContent);
    } else {
      texts.delete(id);
    }
  }
  decorate(messagesEl.querySelector(`[data-message-id="${message.id}"]`)?.closest(".turn") || messagesEl);
  refreshControls();
  scrollToEnd();
}

// Once every answer of a blind turn has finished, its vote buttons (rendered disabled by the
// server while answers were being written) can be used.
function afterDone(frame) {
  const turn = turnElement(frame.parent);
  if (!turn || turn.querySelector('.replies > [data-status="streaming"]')) return;
  turn.querySelectorAll(".vote-bar .vote").forEach((button) => { button.disabled = false; });
}

const SOURCE_STATUS = { queued: "Queued", fetching: "Fetching", extracting: "Extracting", embedding: "Embedding",
  ready: "Ready", failed: "Failed" };

function renderSource(source) {
  const list = document.getElementById("source-list");
  if (!list || !(source.conversations || []).includes(conversationId)) return;
  let item = list.querySelector(`[data-source-id="${source.id}"]`);
  if (!item) {
    item = document.createElement("li");
    item.dataset.sourceId = source.id;
    for (const name of ["source-title", "source-status", "source-error"]) {
      item.appendChild(document.createElement("span")).className = name;
    }
    const remove = item.appendChild(document.createElement("button"));
    remove.type = "button";
    remove.className = "link source-remove";
    remove.textContent = "Remove";
    list.appendChild(item);
  }
  item.dataset.status = source.status;
  item.querySelector(".source-title").textContent = source.title || source.url;
  const chunks = source.status === "ready" && source.chunk_count ? ` · ${source.chunk_count} chunks` : "";
  item.querySelector(".source-status").textContent = (SOURCE_STATUS[source.status] || source.status) + chunks;
  item.querySelector(".source-error").textContent = source.error || "";
}

function applyDelta(frame) {
  const el = messagesEl.querySelector(`[data-message-id="${frame.message}"]`);
  if (!el || el.dataset.status !== "streaming") return;
  const known = texts.get(frame.message) || "";
  if (frame.offset > known.length) {
    requestSync(); // a frame was missed: ask for the whole text again
    return;
  }
  const merged = frame.offset + frame.text.length > known.length ? known.slice(0, frame.offset) + frame.text : known;
  texts.set(frame.message, merged);
  el.querySelector(".content").textContent = merged;
  scrollToEnd();
}

let syncQueued = false;
function requestSync() {
  if (syncQueued || !socket || socket.readyState !== WebSocket.OPEN) return;
  syncQueued = true;
  setTimeout(() => {
    syncQueued = false;
    sendSync();
  }, 50);
}

function sendSync() {
  const refresh = [...messagesEl.querySelectorAll('[data-status="streaming"]')].map((el) => Number(el.dataset.messageId));
  send({ type: "sync", after: lastMessageId(), refresh });
}

let reloadTimer = null;
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(reloadTurns, 60);
}

function turnsUrl(before) {
  const url = root.dataset.turnsUrl.replace("__id__", conversationId);
  return before ? `${url}?before=${before}` : url;
}

async function fetchTurns(before) {
  const response = await fetch(turnsUrl(before), { credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const template = document.createElement("template");
  template.innerHTML = await response.text(); // our own server-rendered, sanitised partial
  return template.content;
}

// Replace the shown branch with the server's (after a version switch, an edit, a vote...),
// keeping the text of answers still streaming, then catch up on what the fetch missed.
async function reloadTurns() {
  if (!conversationId) return;
  let fragment;
  try {
    fragment = await fetchTurns();
  } catch (error) {
    setConnection(`Could not refresh the conversation (${error.message}).`);
    return;
  }
  const wasFollowing = followStream;
  const scrollTop = messagesEl.scrollTop;
  messagesEl.replaceChildren(fragment);
  for (const el of messagesEl.querySelectorAll('[data-status="streaming"]')) {
    const id = Number(el.dataset.messageId);
    const content = el.querySelector(".content");
    const known = texts.get(id) || "";
    if (known.length > content.textContent.length) content.textContent = known;
    else texts.set(id, content.textContent);
  }
  decorate(messagesEl);
  refreshControls();
  if (wasFollowing) scrollToEnd();
  else messagesEl.scrollTop = scrollTop;
  if (isStreaming()) requestSync();
}

let loadingOlder = false;
async function loadOlder(button) {
  if (loadingOlder) return;
  loadingOlder = true;
  try {
    const fragment = await fetchTurns(button.dataset.before);
    const height = messagesEl.scrollHeight;
    decorate(fragment);
    button.replaceWith(fragment);
    messagesEl.scrollTop += messagesEl.scrollHeight - height; // keep what the reader was looking at in place
    observeOlder();
  } catch (error) {
    button.textContent = `Could not load older messages (${error.message}): try again`;
  } finally {
    loadingOlder = false;
  }
}

const olderObserver = "IntersectionObserver" in window
  ? new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) loadOlder(entry.target);
    }, { root: messagesEl })
  : null;

function observeOlder() {
  const button = messagesEl.querySelector(".older-turns");
  if (button && olderObserver) olderObserver.observe(button);
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http, old browser): a selected textarea and the copy command.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1200);
}

function addCodeCopyButtons(container) {
  for (const pre of container.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("code-block")) continue;
    const wrapper = document.createElement("div");
    wrapper.className = "code-block";
    pre.replaceWith(wrapper);
    wrapper.appendChild(actionButton("copy-code", "Copy code"));
    wrapper.appendChild(pre);
  }
}

function decorate(container) {
  container.querySelectorAll(".content.markdown").forEach(addCodeCopyButtons);
}

function selectedModels() {
  return modelPicker ? [...modelPicker.querySelectorAll('input[name="models"]:checked')].map((input) => input.value) : [];
}

function refreshModelPicker() {
  if (!modelPicker) return;
  const chosen = selectedModels();
  const max = Number(modelPicker.dataset.max || 4);
  for (const input of modelPicker.querySelectorAll('input[name="models"]')) {
    input.disabled = !input.checked && chosen.length >= max;
  }
  modelSummary.textContent = chosen.join(", ") || "none";
  blindToggle.hidden = chosen.length < 2;
}

function setSelectedModels(models, blind) {
  if (!modelPicker) return;
  for (const input of modelPicker.querySelectorAll('input[name="models"]')) input.checked = models.includes(input.value);
  if (blind !== undefined) blindInput.checked = blind;
  refreshModelPicker();
}

function composerChoice() {
  const models = selectedModels();
  return { models, blind: models.length > 1 && blindInput.checked };
}

function openEditor(article) {
  if (article.querySelector(".editor")) return;
  const content = article.querySelector(".content");
  const editor = document.createElement("form");
  editor.className = "editor";
  const area = editor.appendChild(document.createElement("textarea"));
  area.value = content.textContent;
  area.rows = Math.min(12, area.value.split("\n").length + 1);
  const buttons = editor.appendChild(document.createElement("div"));
  buttons.className = "editor-actions";
  const save = buttons.appendChild(document.createElement("button"));
  save.type = "submit";
  save.className = "primary";
  save.textContent = "Send as a new branch";
  const cancel = buttons.appendChild(actionButton("cancel-edit", "Cancel"));
  cancel.addEventListener("click", () => {
    editor.remove();
    content.hidden = false;
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    const { models, blind } = composerChoice();
    if (!models.length) {
      showComposerError("Pick a model first.");
      return;
    }
    send({ type: "edit", message: Number(article.dataset.messageId), content: text, models, blind });
    editor.remove();
    content.hidden = false;
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
  content.hidden = true;
  content.after(editor);
  area.focus();
}

messagesEl.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button || button.disabled) return;
  const article = button.closest("article.message");
  const turn = button.closest(".turn");
  const id = article ? Number(article.dataset.messageId) : null;
  const live = socket && socket.readyState === WebSocket.OPEN;
  if (button.classList.contains("older-turns")) loadOlder(button);
  else if (button.classList.contains("copy-code")) copyText(button.parentElement.querySelector("pre").innerText, button);
  else if (button.classList.contains("copy-message")) copyText(article.querySelector(".content").innerText, button);
  else if (button.classList.contains("edit-message")) openEditor(article);
  else if (!live) showComposerError("Not connected: try again in a moment.");
  else if (button.classList.contains("switch-version")) send({ type: "switch", message: Number(button.dataset.target) });
  else if (button.classList.contains("regenerate")) send({ type: "regenerate", message: id });
  else if (button.classList.contains("stop-message")) send({ type: "stop", message: id });
  else if (button.classList.contains("choose")) send({ type: "choose", prompt: Number(turn.dataset.promptId), message: id });
  else if (button.classList.contains("continue-all")) send({ type: "choose", prompt: Number(turn.dataset.promptId), message: null });
  else if (button.classList.contains("vote")) {
    const winner = button.dataset.winner ? Number(button.dataset.winner) : null;
    turn.querySelectorAll(".vote").forEach((b) => { b.disabled = true; });
    send({ type: "vote", prompt: Number(turn.dataset.promptId), winner });
  }
});

function updateConversation(conversation) {
  titleEl.textContent = conversation.title;
  document.title = `${conversation.title} · Multi-LLM Chat`;
  refreshSidebar(); // the conversation moves to the top, under Today
}

function onFrame(frame) {
  switch (frame.type) {
    case "message.created":
      if (frame.message.role === "user" && pendingSend && frame.message.content === pendingSend.content) {
        prompt.value = ""; // the server has it now
        pendingSend = null;
      }
      renderMessage(frame.message);
      break;
    case "delta":
      applyDelta(frame);
      break;
    case "message.done":
      renderMessage(frame);
      afterDone(frame);
      break;
    case "path.changed":
      scheduleReload();
      break;
    case "conversation.models":
      setSelectedModels(frame.selected_models, frame.blind);
      break;
    case "vote.recorded":
      scheduleReload();
      break;
    case "conversation.updated":
      updateConversation(frame.conversation);
      break;
    case "source.status":
      renderSource(frame.source);
      break;
    case "error":
      if (frame.message == null) {
        showComposerError(frame.detail);
        pendingSend = null;
      } else if (!messagesEl.querySelector(`[data-message-id="${frame.message}"]`)?.matches('[data-status="streaming"]')) {
        showComposerError(frame.detail); // about an action on a message (vote, regenerate...), not its answer
        messagesEl.querySelectorAll(".vote").forEach((b) => { b.disabled = false; });
      }
      break;
  }
}

function send(frame) {
  socket.send(JSON.stringify(frame));
}

function connect() {
  if (!conversationId) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/chat/${conversationId}/`);
  setConnection("Connecting…");
  socket.addEventListener("open", () => {
    retryDelay = 500;
    setConnection("");
    sendSync();
    if (pendingSend) send(pendingSend);
  });
  socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) {
      setConnection("Logged out: reload the page to log in again.");
      return;
    }
    if (event.code === 4404) {
      setConnection("This conversation no longer exists.");
      return;
    }
    setConnection("Reconnecting…");
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  });
}

async function createConversation() {
  const response = await fetch(root.dataset.newUrl, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const conversation = await response.json();
  conversationId = conversation.id;
  root.dataset.conversationId = conversationId;
  history.replaceState(null, "", conversation.url);
}

async function submit(event) {
  event?.preventDefault();
  const content = prompt.value.trim();
  showComposerError("");
  if (!content || isStreaming()) return;
  const { models, blind } = composerChoice();
  if (!models.length) {
    showComposerError("Pick a model first.");
    return;
  }
  pendingSend = { type: "send", content, models, blind };
  if (!conversationId) {
    try {
      await ensureConversation(); // the socket sends pendingSend once open
    } catch (error) {
      showComposerError(`Could not start a conversation (${error.message}). Your message is still here: try again.`);
      pendingSend = null;
    }
    return;
  }
  if (socket && socket.readyState === WebSocket.OPEN) send(pendingSend);
  else showComposerError("Not connected yet: your message will be sent when the connection is back.");
}

// One conversation for every action that needs one: two quick clicks must not make two.
let creatingConversation = null;
async function ensureConversation() {
  if (conversationId) return;
  creatingConversation ||= createConversation().then(connect, (error) => {
    creatingConversation = null;
    throw error;
  });
  await creatingConversation;
}

const attachForm = document.getElementById("attach");
const attachError = document.getElementById("attach-error");
if (attachForm) {
  attachForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("attach-url");
    const file = document.getElementById("attach-file");
    // Take what was entered now, and clear it: a second attach may start while this one waits.
    const url = input.value.trim();
    const body = new FormData();
    if (file.files.length) body.append("file", file.files[0]);
    else body.append("url", url);
    input.value = "";
    file.value = "";
    attachError.hidden = true;
    try {
      await ensureConversation();
      const response = await fetch(root.dataset.attachUrl.replace("__id__", conversationId), {
        method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin",
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error?.detail || `HTTP ${response.status}`);
      renderSource(data.source);
    } catch (error) {
      if (!input.value) input.value = url; // nothing typed is lost
      attachError.textContent = error.message;
      attachError.hidden = false;
    }
  });
  document.getElementById("source-list").addEventListener("click", async (event) => {
    const button = event.target.closest(".source-remove");
    if (!button) return;
    const item = button.closest("li");
    const response = await fetch(`/sources/${item.dataset.sourceId}/remove/`, {
      method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin",
    });
    if (response.ok) item.remove();
  });
}

if (form) {
  form.addEventListener("submit", submit);
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
  });
  stopButton.addEventListener("click", () => {
    // Every answer being written, in every column.
    if (isStreaming() && socket?.readyState === WebSocket.OPEN) send({ type: "stop" });
  });
  modelPicker.addEventListener("change", (event) => {
    if (!event.target.checked && selectedModels().length === 0) event.target.checked = true; // keep one
    refreshModelPicker();
  });
  refreshModelPicker();
}

// ---- The sidebar: search, show more, rename, pin, delete --------------------------------
// The list items are rendered by the server (chat/_sidebar.html, chat/_search_results.html);
// these functions fetch them and post the small forms each item carries.

const sidebarList = document.getElementById("conversation-list");
const searchInput = document.getElementById("conversation-search");
let sidebarRequest = 0;

async function loadSidebar(params, append = false) {
  const request = ++sidebarRequest;
  const url = new URL(sidebarList.dataset.sidebarUrl, location.origin);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  url.searchParams.set("current", conversationId);
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok || request !== sidebarRequest) return;
  const template = document.createElement("template");
  template.innerHTML = await response.text(); // escaped by the server's templates
  if (!append) {
    sidebarList.replaceChildren(template.content);
    return;
  }
  sidebarList.querySelector(".sidebar-more")?.remove();
  const labels = sidebarList.querySelectorAll(".group-label");
  const first = template.content.firstElementChild;
  if (first?.classList.contains("group-label") && labels.length && labels[labels.length - 1].dataset.group === first.dataset.group) {
    first.remove(); // the group goes on from the previous page
  }
  sidebarList.append(template.content);
}

function refreshSidebar() {
  const query = searchInput?.value.trim() || "";
  return loadSidebar(query ? { q: query } : { page: 1 });
}

async function postForm(url, body) {
  const response = await fetch(url, {
    method: "POST", body, credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.detail || `HTTP ${response.status}`);
  return data;
}

function startRename(item) {
  const form = item.querySelector(".rename-form");
  const input = form.elements.title;
  input.value = item.querySelector(".conversation-link").textContent;
  item.classList.add("renaming");
  form.hidden = false;
  input.focus();
  input.select();
}

function endRename(item) {
  item.classList.remove("renaming");
  item.querySelector(".rename-form").hidden = true;
}

async function saveRename(item) {
  const form = item.querySelector(".rename-form");
  const link = item.querySelector(".conversation-link");
  if (form.hidden) return;
  const title = form.elements.title.value.trim();
  endRename(item);
  if (!title || title === link.textContent) return;
  try {
    const data = await postForm(form.action, new FormData(form));
    link.textContent = data.title;
    if (item.dataset.conversationId === conversationId) {
      titleEl.textContent = data.title;
      document.title = `${data.title} · Multi-LLM Chat`;
    }
  } catch (error) {
    window.alert(`Could not rename: ${error.message}`);
  }
}

async function deleteConversation(item, link) {
  const title = item.querySelector(".conversation-link").textContent;
  if (!window.confirm(`Delete “${title}”? Its messages and sources are deleted for good.`)) return;
  try {
    await postForm(link.href, null); // an empty multipart body is not valid
  } catch (error) {
    window.alert(`Could not delete: ${error.message}`);
    return;
  }
  if (item.dataset.conversationId === conversationId) location.assign("/");
  else refreshSidebar();
}

if (sidebarList) {
  let searchTimer = null;
  searchInput?.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshSidebar, 200);
  });
  document.getElementById("sidebar-search")?.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    refreshSidebar();
  });
  sidebarList.addEventListener("click", (event) => {
    const item = event.target.closest(".conversation-item");
    const more = event.target.closest(".sidebar-more button");
    if (more) loadSidebar({ page: more.dataset.page }, true);
    else if (item && event.target.closest(".rename")) startRename(item);
    else if (item && event.target.closest(".delete")) {
      event.preventDefault();
      deleteConversation(item, event.target.closest(".delete"));
    }
  });
  sidebarList.addEventListener("submit", async (event) => {
    const item = event.target.closest(".conversation-item");
    if (!item) return;
    event.preventDefault();
    if (event.target.classList.contains("rename-form")) {
      saveRename(item);
    } else if (event.target.classList.contains("pin-form")) {
      await postForm(event.target.action, new FormData(event.target)).catch((error) => window.alert(error.message));
      refreshSidebar();
    }
  });
  sidebarList.addEventListener("keydown", (event) => {
    const item = event.target.closest(".renaming");
    if (item && event.key === "Escape") endRename(item);
  });
  sidebarList.addEventListener("focusout", (event) => {
    const item = event.target.closest(".renaming");
    if (item && event.target.name === "title") saveRename(item);
  });
}

messagesEl.querySelectorAll('[data-status="streaming"]').forEach((el) => {
  texts.set(Number(el.dataset.messageId), el.querySelector(".content").textContent);
});
decorate(messagesEl);
observeOlder();
refreshControls();
scrollToEnd();
connect();
