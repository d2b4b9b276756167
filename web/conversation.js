// conversation.js — one conversation: its history (paged), the composer
// (drafts kept in the core, replies, edits, a visible length limit), the
// per-message actions (menu button, right-click, keyboard), the scrolling
// rules ("New messages ↓", the unread marker), search, and the contact's
// details. Files in a conversation are in transfers.js.
import { h, $, mount, toast, formatDay } from "./dom.js";
import { field } from "./form.js";
import { say } from "./errors.js";
import { state, PAGE, rememberOpen } from "./state.js";
import { statusText, fullTime, timeEl, atBottom } from "./msgparts.js";
import { renderContacts, showEmptyPane, backButton, chatName } from "./chats.js";
import { groupStateText, noticeItem, authorLine, groupFoot, sendGroupText } from "./groups.js";
import { showMembers } from "./members.js";
import { confirmDialog } from "./confirm.js";
import { sendFiles, fileItem, uploadItem, uploads, refreshUploads, composerPickers, attachButton } from "./transfers.js";
import { updateUnreadTotal } from "./notify.js";
import { receivingRelaySection } from "./relays.js";
import { encryptionSection } from "./encryption.js";

const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
const enc = new TextEncoder();

/** Per open conversation: what the composer is doing and where the view is. */
const view = {
  id: null,
  reply: null,       // the message being replied to
  editing: null,     // the message being edited
  unreadFrom: 0,     // seq of the first unread message when the chat was opened
  newBelow: 0,       // messages that arrived below while scrolled up
  draftTimer: 0,
};

// ---------- opening ----------

/** Why messages to contact c wait: the last "delivery" event, else what
 * the core said when the contact was loaded. */
function delayOf(c) {
  return state.delays.get(c.id) ?? c.delay ?? "";
}

/** Shows (or hides) why messages to the open conversation wait: a relay
 * or a private route failing, in the core's words, naming both relays. */
export function showDelay(id, text) {
  state.delays.set(id, text || "");
  const p = $("#delivery-delay");
  if (p && state.current === id) {
    p.textContent = text || "";
    p.hidden = !text;
  }
}

export async function openConversation(id, jumpTo = 0) {
  await saveDraftNow();
  state.current = id;
  rememberOpen(id);
  const c = state.contacts.get(id) ?? await state.core.call("contact.get", { id });
  state.contacts.set(id, c);
  renderContacts();
  document.documentElement.dataset.view = "pane";
  Object.assign(view, { id, reply: null, editing: null, newBelow: 0, unreadFrom: 0 });
  const text = h("textarea", { id: "composer", rows: 1, dir: "auto", placeholder: "Message", "aria-describedby": "composer-count",
    onkeydown: (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
      if (e.key === "Escape" && (view.reply || view.editing)) { e.preventDefault(); clearReplyEdit(); }
      if (e.key === "ArrowUp" && !text.value && !c.group) { const last = lastOwnText(id); if (last) { e.preventDefault(); startEdit(last); } }
    },
    oninput: () => { autosize(text); updateCount(); scheduleDraft(); } });
  const sendBtn = h("button", { type: "submit", id: "send" }, "Send");
  sendBtn.title = "Send (Enter); Shift+Enter for a new line";
  // Focusable, so that keyboard users can scroll the history.
  const list = h("ol", { id: "messages", class: "messages", tabindex: 0,
    "aria-label": c.group ? `Messages in ${c.name}` : `Messages with ${c.name}`,
    onscroll: () => {
      if (list.scrollTop < 80) loadOlder(id);
      if (atBottom(list)) hideNewBelow();
    },
    oncontextmenu: (e) => {
      const li = e.target.closest?.("li.msg[data-seq]");
      if (!li) return;
      e.preventDefault();
      openMenu(id, Number(li.dataset.seq), { x: e.clientX, y: e.clientY });
    },
    onkeydown: (e) => {
      const li = e.target.closest?.("li.msg[data-seq]");
      if (!li) return;
      if (e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey) || e.key === "Enter") {
        e.preventDefault();
        openMenu(id, Number(li.dataset.seq), null, li);
      }
      if (e.key === "ArrowUp" || e.key === "ArrowDown") {
        const items = [...list.querySelectorAll("li.msg[data-seq]")];
        const next = items[items.indexOf(li) + (e.key === "ArrowUp" ? -1 : 1)];
        if (next) { e.preventDefault(); next.focus(); }
      }
    } });
  const foot = c.group ? groupFoot(c) : null;
  const left = !c.group && c.state === "deleted";
  const { picker, resumePicker } = composerPickers(id);
  text.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length) { e.preventDefault(); sendFiles(id, files, text); }
  });
  const canSendFiles = !foot && !left;
  mount($("#pane"), h("div", { class: "conversation",
    ondragover: (e) => { if (canSendFiles && e.dataTransfer?.types.includes("Files")) e.preventDefault(); },
    ondrop: (e) => { if (canSendFiles && e.dataTransfer?.files.length) { e.preventDefault(); sendFiles(id, [...e.dataTransfer.files], text); } } },
    h("header", { class: "conv-head" }, backButton(),
      h("div", { class: "conv-title" },
        h("h2", { id: "conv-title", dir: "auto" }, chatName(c)),
        h("span", { id: "conv-state", class: "meta" }, stateText(c))),
      h("button", { type: "button", class: "secondary", "aria-label": "Search in this chat", onclick: () => showSearchForm(id) }, "Search"),
      c.group ? (c.group.state === "invited" ? null : h("button", { type: "button", class: "secondary", onclick: () => showMembers(id) }, "Members"))
        : h("button", { type: "button", class: "secondary", onclick: () => showDetails(id) }, "Details")),
    h("p", { id: "delivery-delay", class: "delay", role: "status", hidden: !delayOf(c) }, delayOf(c)),
    list,
    h("button", { type: "button", id: "new-below", class: "new-below", hidden: true, onclick: () => { list.scrollTop = list.scrollHeight; hideNewBelow(); } }, "New messages ↓"),
    h("div", { id: "announce", class: "visually-hidden", "aria-live": "polite" }),
    foot ?? (left ? h("p", { id: "composer-closed", class: "composer closed", role: "status" },
      `${c.name} left: they deleted this conversation, so nothing more can be sent. You can still read it, or delete it in Details.`)
      : h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); submit(); } },
        h("div", { id: "compose-context", class: "compose-context", hidden: true }),
        h("div", { class: "compose-row" },
          picker, resumePicker, attachButton(picker),
          h("label", { for: "composer", class: "visually-hidden" }, "Message"), text, sendBtn),
        h("p", { id: "composer-count", class: "count", "aria-live": "polite" })))));
  state.messages.set(id, []);
  state.complete.delete(id);
  state.gen.set(id, (state.gen.get(id) ?? 0) + 1);
  loading.delete(id); // a load for an earlier view of this conversation is dropped
  if (c.unread > 0 && !c.group) view.unreadFrom = -c.unread; // resolved once the page is loaded
  if (c.unread > 0 && c.group) view.unreadFrom = -c.unread;
  await loadOlder(id);
  await refreshUploads(id);
  if (view.unreadFrom < 0) {
    const incoming = (state.messages.get(id) ?? []).filter((m) => m.incoming);
    const first = incoming[Math.max(0, incoming.length + view.unreadFrom)];
    view.unreadFrom = first ? first.seq : 0;
    renderMessages(id);
  }
  const marker = $("#unread-marker");
  if (jumpTo) await jump(id, jumpTo);
  else if (marker) marker.scrollIntoView({ block: "start" });
  else list.scrollTop = list.scrollHeight;
  if (c.unread) markRead(id);
  if (!foot && !left) {
    await loadDraft(id, text);
    if (!jumpTo) text.focus(); // a jump leaves focus on the message it found
  }
}

export function stateText(c) {
  if (c.group) return groupStateText(c);
  return { invited: "waiting for someone to use the link", connecting: "connecting…", connected: "connected", deleted: "left" }[c.state] ?? c.state;
}

/** Follows a contact's changes in the open conversation. */
export function onContactChanged(prev, c) {
  if (state.current !== c.id) return;
  const s = $("#conv-state");
  if (s) s.textContent = stateText(c);
  const t = $("#conv-title");
  if (t) t.textContent = chatName(c);
  const list = $("#messages");
  if (list) list.setAttribute("aria-label", c.group ? `Messages in ${c.name}` : `Messages with ${c.name}`);
  // A contact who left: the composer closes.
  if (!c.group && prev && prev.state !== "deleted" && c.state === "deleted" && $("#composer")) openConversation(c.id);
}

function autosize(t) {
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

// ---------- history ----------

const loading = new Set();
export async function loadOlder(id) {
  if (loading.has(id) || state.complete.has(id)) return;
  loading.add(id);
  const gen = state.gen.get(id);
  try {
    const have = state.messages.get(id) ?? [];
    const before = have.length ? have[0].seq : 0;
    const page = (await state.core.call("messages.page", { contact: id, before, limit: PAGE })) ?? [];
    if (state.gen.get(id) !== gen) return; // the conversation was reopened meanwhile
    if (page.length < PAGE) state.complete.add(id);
    // Merge by position: events may have added messages meanwhile.
    const bySeq = new Map(page.map((m) => [m.seq, m]));
    for (const m of state.messages.get(id) ?? []) bySeq.set(m.seq, m);
    state.messages.set(id, [...bySeq.values()].sort((a, b) => a.seq - b.seq));
    if (state.current !== id) return;
    const list = $("#messages");
    if (!list) return; // another view of this chat (a group's members) is open; the list is drawn when it returns
    const oldHeight = list.scrollHeight;
    const oldTop = list.scrollTop;
    renderMessages(id);
    list.scrollTop = oldTop + list.scrollHeight - oldHeight; // keep the view still
    list.dataset.loaded = "true";
  } finally {
    if (state.gen.get(id) === gen) loading.delete(id);
  }
}

/** Scrolls to message seq (loading older pages until it is there) and highlights it. */
async function jump(id, seq) {
  for (let i = 0; i < 400 && !$(`#messages li[data-seq="${seq}"]`) && !state.complete.has(id); i++) {
    loading.delete(id);
    await loadOlder(id);
  }
  const li = $(`#messages li[data-seq="${seq}"]`);
  if (!li) { toast("That message is no longer in this conversation."); return; }
  li.scrollIntoView({ block: "center" });
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 1600);
  li.focus({ preventScroll: true });
}

// ---------- messages ----------

/** Who sent m, for its accessible name. */
function senderName(m) {
  if (!m.incoming) return "You";
  if (m.author_name) return m.author_name;
  return state.contacts.get(m.contact)?.name ?? "Contact";
}

/** The accessible name of a message: who, when, then what. */
export function messageLabel(m, what) {
  return `${senderName(m)}, ${fullTime(m.time)}: ${what}`;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/gi;

/**
 * Text with its web addresses as links (opened in a new tab, no referrer,
 * no opener). No preview is ever fetched: nothing leaves the page for a
 * message's content.
 */
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function quoteBlock(m) {
  const q = m.quote;
  if (!q) return null;
  const who = q.incoming ? (state.contacts.get(m.contact)?.name ?? "Contact") : "You";
  const preview = q.missing || !q.seq ? "The original message is not on this device." : (q.text || "Message");
  return h("button", { type: "button", class: "quote", dir: "auto", title: q.seq ? "Show the original" : null,
    disabled: !q.seq, onclick: () => jump(m.contact, q.seq) },
  h("span", { class: "quote-who" }, h("span", { class: "visually-hidden" }, "Reply to "), who, h("span", { class: "visually-hidden" }, ": ")),
  h("span", { class: "quote-text" }, preview));
}

function reactionsRow(m) {
  if (!m.reactions?.length) return null;
  return h("p", { class: "reactions" }, m.reactions.map((r) =>
    h("button", { type: "button", class: `reaction${r.mine ? " mine" : ""}`, "aria-pressed": r.mine ? "true" : "false",
      "aria-label": `${r.emoji} ${r.count}${r.mine ? ", including yours: press to remove" : ": press to add yours"}`,
      onclick: () => react(m, r.emoji, !r.mine) }, `${r.emoji} ${r.count}`)));
}

export function metaLine(m) {
  const out = !m.incoming;
  return h("p", { class: "meta" },
    m.edited ? h("span", { class: "edited" }, "edited · ") : null,
    timeEl(m.time),
    out ? h("span", { class: `status ${m.status}` }, " · ", statusText(m)) : null,
    out && m.status === "failed" && !m.deleted && !m.file ? h("button", { type: "button", class: "link", title: m.reason, onclick: () => retry(m) }, "Retry") : null);
}

function menuButton(m) {
  return h("button", { type: "button", class: "msg-menu", "aria-label": "Message actions", "aria-haspopup": "menu",
    onclick: (e) => openMenu(m.contact, m.seq, null, e.currentTarget) }, "⋯");
}

export function messageItem(m) {
  if (m.notice) return noticeItem(m);
  if (m.file && !m.deleted) return fileItem(m, { menuButton, quoteBlock, reactionsRow, messageLabel });
  const out = !m.incoming;
  const text = m.deleted ? "Message deleted" : m.text;
  return h("li", { class: `msg ${out ? "out" : "in"}${m.deleted ? " deleted" : ""}`, tabindex: -1, "data-seq": m.seq, "data-status": m.status ?? null,
    "data-author": m.author_name ?? null, "data-delivered": m.recipients ? (m.delivered_to ?? []).length : null,
    "aria-label": messageLabel(m, text) },
  m.missing ? h("p", { class: "integrity" }, `${m.missing} message${m.missing > 1 ? "s" : ""} may be missing`) : null,
  m.bad_hash ? h("p", { class: "integrity" }, "This message does not follow the previous one: the history may differ") : null,
  h("div", { class: "bubble" },
    menuButton(m),
    authorLine(m),
    m.deleted ? null : quoteBlock(m),
    h("p", { class: "text", dir: "auto" }, m.deleted ? h("em", {}, "Message deleted") : linkify(m.text)),
    metaLine(m)),
  reactionsRow(m));
}

export function renderMessages(id) {
  const list = $("#messages");
  if (!list) return;
  const msgs = (state.messages.get(id) ?? []).filter((m) => !m.hidden);
  const items = [];
  let day = "";
  for (const m of msgs) {
    const d = new Date(m.time).toDateString();
    if (d !== day) {
      day = d;
      items.push(h("li", { class: "day" }, formatDay(m.time)));
    }
    if (view.id === id && view.unreadFrom > 0 && m.seq === view.unreadFrom) {
      items.push(h("li", { id: "unread-marker", class: "unread-marker" }, "Unread messages"));
    }
    items.push(messageItem(m));
  }
  const ups = [...(uploads.get(id)?.values() ?? [])];
  if (msgs.length === 0 && ups.length === 0) items.push(h("li", { class: "day" }, "No messages yet."));
  for (const u of ups) items.push(uploadItem(u));
  const focused = document.activeElement?.closest?.("#messages li[data-seq]")?.dataset.seq;
  mount(list, items);
  if (focused) list.querySelector(`li[data-seq="${focused}"]`)?.focus({ preventScroll: true });
}

/** Re-renders the open conversation, keeping it at the bottom if it was there. */
export function rerender(contact) {
  if (state.current !== contact) return;
  const list = $("#messages");
  const bottom = list && atBottom(list);
  renderMessages(contact);
  if (bottom) list.scrollTop = list.scrollHeight;
}

const STATUS_RANK = { pending: 0, sent: 1, delivered: 2, failed: 3 };

/** Adds or updates a message; fresh is set for a message that just arrived. */
export function addMessage(m, fresh = false) {
  const msgs = state.messages.get(m.contact);
  if (!msgs) return;
  const i = msgs.findIndex((x) => x.seq === m.seq);
  const isNew = i < 0;
  if (!isNew) {
    // A late answer must not move a status backwards.
    if ((STATUS_RANK[msgs[i].status] ?? -1) > (STATUS_RANK[m.status] ?? -1)) m = { ...m, status: msgs[i].status, reason: msgs[i].reason };
    msgs[i] = m;
  } else msgs.push(m);
  msgs.sort((a, b) => a.seq - b.seq);
  if (state.current !== m.contact) return;
  const list = $("#messages");
  if (!list) return; // the pane shows the contact's details or a group's members
  const bottom = atBottom(list);
  if (!patchMessage(list, msgs, m, isNew)) renderMessages(m.contact);
  if (bottom || (isNew && !m.incoming)) list.scrollTop = list.scrollHeight;
  else if (isNew && fresh && m.incoming) showNewBelow();
  if (isNew && fresh && m.incoming && !m.notice) announce(m);
}

/** Puts one message's item in place without rebuilding the list, when
 * nothing else on the list changes: a status or text update of a message
 * shown, or a new newest message on the same day as the one before it.
 * Returns false when the whole list must be rendered (renderMessages). */
function patchMessage(list, msgs, m, isNew) {
  if (m.hidden || (uploads.get(m.contact)?.size ?? 0) > 0) return false;
  if (!isNew) {
    const old = list.querySelector(`li[data-seq="${m.seq}"]`);
    if (!old) return false;
    const focused = old.contains(document.activeElement);
    const item = messageItem(m);
    old.replaceWith(item);
    if (focused) item.focus({ preventScroll: true });
    return true;
  }
  const visible = msgs.filter((x) => !x.hidden);
  const prev = visible.at(-2);
  if (visible.at(-1) !== m || !prev || list.lastElementChild?.dataset.seq !== String(prev.seq)) return false;
  if (new Date(prev.time).toDateString() !== new Date(m.time).toDateString()) return false;
  if (view.id === m.contact && view.unreadFrom > 0 && m.seq === view.unreadFrom) return false;
  list.append(messageItem(m));
  return true;
}

function announce(m) {
  const a = $("#announce");
  if (!a) return;
  a.textContent = `New message from ${senderName(m)}: ${m.file ? m.file.name : m.text}`;
}

function showNewBelow() {
  view.newBelow++;
  const b = $("#new-below");
  if (!b) return;
  b.textContent = `${view.newBelow} new message${view.newBelow === 1 ? "" : "s"} ↓`;
  b.setAttribute("aria-label", `${view.newBelow} new message${view.newBelow === 1 ? "" : "s"}: show them`);
  b.hidden = false;
}

function hideNewBelow() {
  view.newBelow = 0;
  const b = $("#new-below");
  if (b) b.hidden = true;
}

export function markRead(id) {
  state.core.call("contact.read", { id }).catch(() => {});
  const c = state.contacts.get(id);
  if (c) { c.unread = 0; renderContacts(); updateUnreadTotal(); }
}

const lastOwnText = (id) => [...(state.messages.get(id) ?? [])].reverse().find((m) => !m.incoming && !m.file && !m.deleted && !m.notice);

// ---------- the composer ----------

function updateCount() {
  const text = $("#composer");
  const count = $("#composer-count");
  if (!text || !count) return;
  const n = enc.encode(text.value).length;
  const max = state.limits.max_text_bytes ?? 8000;
  const over = n > max;
  count.textContent = n > max * 0.9 ? `${n} of ${max} bytes${over ? ` — ${n - max} too many: shorten the message to send it` : ""}` : "";
  count.classList.toggle("over", over);
  text.setAttribute("aria-invalid", over ? "true" : "false");
  const send = $("#send");
  if (send) send.disabled = over;
}

function composeContext() {
  const box = $("#compose-context");
  if (!box) return;
  const m = view.editing ?? view.reply;
  if (!m) { box.hidden = true; box.replaceChildren(); return; }
  const what = view.editing ? "Editing your message" : `Replying to ${senderName(m) === "You" ? "yourself" : senderName(m)}`;
  mount(box, h("span", { class: "ctx-what" }, what, ": "),
    h("span", { class: "ctx-text", dir: "auto" }, (m.file ? m.file.name : m.text).slice(0, 120)),
    h("button", { type: "button", class: "link", "aria-label": view.editing ? "Cancel editing" : "Cancel reply", onclick: clearReplyEdit }, "Cancel"));
  box.hidden = false;
}

function clearReplyEdit() {
  const wasEditing = !!view.editing;
  view.reply = null;
  view.editing = null;
  composeContext();
  const text = $("#composer");
  if (wasEditing && text) { text.value = view.savedText ?? ""; autosize(text); updateCount(); }
  scheduleDraft();
  text?.focus();
}

function startReply(m) {
  view.editing = null;
  view.reply = m;
  composeContext();
  scheduleDraft();
  $("#composer")?.focus();
}

function startEdit(m) {
  const text = $("#composer");
  if (!text) return;
  if (!view.editing) view.savedText = text.value;
  view.reply = null;
  view.editing = m;
  text.value = m.text;
  autosize(text);
  updateCount();
  composeContext();
  text.focus();
}

// Sends are chained so that messages keep the order they were typed in,
// and the box is cleared at once so typing can go on meanwhile.
let queue = Promise.resolve();

function submit() {
  const text = $("#composer");
  const id = view.id;
  if (!text || !id) return;
  const value = text.value.trim();
  if (!value) return;
  if (enc.encode(value).length > (state.limits.max_text_bytes ?? 8000)) { updateCount(); return; }
  const c = state.contacts.get(id);
  const editing = view.editing;
  const reply = view.reply;
  text.value = view.editing ? (view.savedText ?? "") : "";
  view.reply = null;
  view.editing = null;
  composeContext();
  autosize(text);
  updateCount();
  view.pendingDraft = { id, text: text.value, replyTo: 0 }; // sent: the draft goes
  saveDraftNow();
  const restore = () => {
    if (!text.value) { text.value = value; autosize(text); updateCount(); }
    if (editing) { view.editing = editing; composeContext(); }
    if (reply) { view.reply = reply; composeContext(); }
  };
  queue = queue.then(async () => {
    try {
      if (editing) {
        addMessage(await state.core.call("message.edit", { contact: id, seq: editing.seq, text: value }));
      } else if (c?.group) {
        addMessage(await sendGroupText(id, value));
      } else {
        const params = { contact: id, text: value };
        if (reply) params.reply_to = reply.seq;
        addMessage(await state.core.call("messages.send", params));
      }
    } catch (err) {
      restore();
      if (!c?.group) toast(`Not sent. ${say(err, "Sending")}`);
    }
  });
}

async function retry(m) {
  try {
    addMessage(await state.core.call("messages.send", { contact: m.contact, text: m.text }));
  } catch (err) {
    toast(`Not sent. ${say(err, "Sending")}`);
  }
}

// ---------- drafts ----------

async function loadDraft(id, text) {
  try {
    const d = await state.core.call("draft.get", { contact: id });
    if (view.id !== id) return;
    if (d?.text && !text.value) { text.value = d.text; autosize(text); updateCount(); }
    if (d?.reply_to) {
      const m = (state.messages.get(id) ?? []).find((x) => x.seq === d.reply_to);
      if (m) { view.reply = m; composeContext(); }
    }
  } catch { /* no draft */ }
}

const written = new Set(); // chats whose draft this page wrote and did not clear yet

/** Notes the composer's draft now and writes it a moment later (or when the chat is left). */
function scheduleDraft() {
  const text = $("#composer");
  if (!text || !view.id || view.editing) return;
  view.pendingDraft = { id: view.id, text: text.value, replyTo: view.reply?.seq ?? 0 };
  clearTimeout(view.draftTimer);
  view.draftTimer = setTimeout(saveDraftNow, 400);
}

/** Writes the draft noted last, if any (when leaving a chat, or after typing). */
export async function saveDraftNow() {
  clearTimeout(view.draftTimer);
  const d = view.pendingDraft;
  view.pendingDraft = null;
  if (!d) return;
  const c = state.contacts.get(d.id);
  const value = d.text.trim() ? d.text : "";
  if (!value && !d.replyTo && !c?.draft && !written.has(d.id)) return; // nothing kept, nothing to clear
  if (value || d.replyTo) written.add(d.id); else written.delete(d.id);
  try {
    await state.core.call("draft.set", { contact: d.id, text: value, reply_to: d.replyTo });
  } catch { /* kept in the box while the chat is open */ }
}

// ---------- message actions ----------

function findMessage(id, seq) {
  return (state.messages.get(id) ?? []).find((m) => m.seq === seq);
}

function menuItems(m) {
  const c = state.contacts.get(m.contact);
  const group = !!c?.group;
  const open = !group && c?.state === "connected";
  const own = !m.incoming;
  const items = [];
  if (m.deleted) {
    if (!group) items.push(["Delete for me", () => deleteMessage(m, false)]);
    return items;
  }
  if (open) items.push(["Reply", () => startReply(m)]);
  if (!m.file) items.push(["Copy", () => copyText(m)]);
  if (open && own && !m.file) items.push(["Edit", () => startEdit(m)]);
  if (open) items.push(["React", () => openReactions(m)]);
  items.push(["Info", () => showInfo(m)]);
  // A group's messages stay in its signed history, which members need.
  if (!group) items.push(["Delete for me", () => deleteMessage(m, false)]);
  if (open && own) items.push(["Delete for everyone", () => deleteMessage(m, true)]);
  return items;
}

let menuEl = null;
function closeMenu(focusBack = true) {
  if (!menuEl) return;
  const back = menuEl.back;
  menuEl.remove();
  menuEl = null;
  document.removeEventListener("pointerdown", outside, true);
  if (focusBack) back?.focus?.({ preventScroll: true });
}
function outside(e) { if (menuEl && !menuEl.contains(e.target)) closeMenu(false); }

/** The actions of message seq as a menu, at a point or under an element. */
function openMenu(id, seq, at, anchor) {
  closeMenu(false);
  const m = findMessage(id, seq);
  if (!m) return;
  const buttons = menuItems(m).map(([label, act]) => h("button", { type: "button", role: "menuitem", tabindex: -1,
    onclick: () => { closeMenu(false); act(); } }, label));
  menuEl = h("div", { class: "menu", role: "menu", "aria-label": "Message actions",
    onkeydown: (e) => {
      const i = buttons.indexOf(document.activeElement);
      if (e.key === "Escape" || e.key === "Tab") { e.preventDefault(); closeMenu(); }
      if (e.key === "ArrowDown") { e.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
      if (e.key === "ArrowUp") { e.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
      if (e.key === "Home") { e.preventDefault(); buttons[0].focus(); }
      if (e.key === "End") { e.preventDefault(); buttons[buttons.length - 1].focus(); }
    } }, buttons);
  menuEl.back = anchor ?? document.querySelector(`#messages li[data-seq="${seq}"]`);
  document.body.append(menuEl);
  const r = anchor?.getBoundingClientRect();
  const x = at ? at.x : (r ? r.left : 40);
  const y = at ? at.y : (r ? r.bottom : 40);
  const w = menuEl.offsetWidth, hgt = menuEl.offsetHeight;
  menuEl.style.left = `${Math.max(4, Math.min(x, innerWidth - w - 4))}px`;
  menuEl.style.top = `${Math.max(4, Math.min(y, innerHeight - hgt - 4))}px`;
  buttons[0]?.focus();
  document.addEventListener("pointerdown", outside, true);
}

async function copyText(m) {
  try { await navigator.clipboard.writeText(m.text); toast("Copied"); } catch { toast("The browser did not allow copying. Select the text and copy it."); }
}

function openReactions(m) {
  const mine = new Set((m.reactions ?? []).filter((r) => r.mine).map((r) => r.emoji));
  const buttons = REACTIONS.map((e) => h("button", { type: "button", role: "menuitemcheckbox", "aria-checked": mine.has(e) ? "true" : "false",
    "aria-label": `${e}${mine.has(e) ? " (yours: remove)" : ""}`, onclick: () => { closeMenu(false); react(m, e, !mine.has(e)); } }, e));
  closeMenu(false);
  menuEl = h("div", { class: "menu reactions-menu", role: "menu", "aria-label": "React",
    onkeydown: (e) => {
      const i = buttons.indexOf(document.activeElement);
      if (e.key === "Escape" || e.key === "Tab") { e.preventDefault(); closeMenu(); }
      if (e.key === "ArrowRight" || e.key === "ArrowDown") { e.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
      if (e.key === "ArrowLeft" || e.key === "ArrowUp") { e.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
    } }, buttons);
  const li = document.querySelector(`#messages li[data-seq="${m.seq}"]`);
  menuEl.back = li;
  document.body.append(menuEl);
  const r = li?.getBoundingClientRect();
  menuEl.style.left = `${Math.max(4, Math.min(r ? r.left : 40, innerWidth - menuEl.offsetWidth - 4))}px`;
  menuEl.style.top = `${Math.max(4, Math.min(r ? r.bottom : 40, innerHeight - menuEl.offsetHeight - 4))}px`;
  buttons[0].focus();
  document.addEventListener("pointerdown", outside, true);
}

async function react(m, emoji, on) {
  try {
    addMessage(await state.core.call("message.react", { contact: m.contact, seq: m.seq, emoji, on }));
  } catch (err) {
    toast(say(err, "Reacting"));
  }
}

async function deleteMessage(m, everyone) {
  const ok = await confirmDialog({
    title: everyone ? "Delete this message for everyone?" : "Delete this message for you?",
    text: everyone ? "It is deleted here and on your contact's device; they see \"message deleted\"." : "It is deleted from this device only. Your contact keeps their copy.",
    confirm: everyone ? "Delete for everyone" : "Delete for me" });
  if (!ok) return;
  try {
    const res = await state.core.call("message.delete", { contact: m.contact, seq: m.seq, everyone });
    if (res && res.seq) addMessage(res);
    else {
      const msgs = state.messages.get(m.contact) ?? [];
      const i = msgs.findIndex((x) => x.seq === m.seq);
      if (i >= 0) msgs.splice(i, 1);
      rerender(m.contact);
    }
    toast("Message deleted");
  } catch (err) {
    toast(say(err, "Deleting the message"));
  }
}

async function showInfo(m) {
  let info = {};
  try { info = (await state.core.call("message.info", { contact: m.contact, seq: m.seq })) ?? {}; } catch (err) { toast(say(err, "Showing the message's details")); return; }
  const rows = [];
  const row = (k, v) => { if (v) rows.push(h("dt", {}, k), h("dd", {}, fullTime(v))); };
  if (m.incoming) {
    row("Sent", info.sent ?? m.time);
    row("Received", info.received_at);
  } else {
    row("Written", info.created ?? m.time);
    row("Sent (the relay has it)", info.sent_at);
    row("Delivered (stored on their device)", info.delivered_at);
  }
  row("Edited", info.edited_at);
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = h("dialog", { class: "info", "aria-labelledby": "info-title", onclose: () => dialog.remove() },
    h("h2", { id: "info-title" }, "Message info"),
    h("dl", {}, rows.length ? rows : h("dd", {}, "No times recorded.")),
    !m.incoming && !info.delivered_at && m.status !== "failed" ? h("p", { class: "hint" }, "Not delivered yet: your contact's device has not fetched it.") : null,
    m.status === "failed" && m.reason ? h("p", { class: "hint" }, "This message could not be sent.") : null,
    h("button", { type: "button", onclick: close }, "Close"));
  document.body.append(dialog);
  dialog.showModal();
}

// ---------- search ----------

function showSearchForm(id) {
  const q = h("input", { id: "search-chat", type: "search", autocomplete: "off" });
  const box = h("form", { role: "search", class: "search-row in-chat", onsubmit: (e) => {
    e.preventDefault();
    if (q.value.trim()) showSearch(id, q.value.trim());
  } }, h("label", { for: "search-chat", class: "visually-hidden" }, "Search in this chat"), q,
  h("button", { type: "submit", class: "secondary" }, "Find"),
  h("button", { type: "button", class: "link", onclick: () => box.remove() }, "Close"));
  $(".conv-head")?.after(box);
  q.focus();
}

/** Search results (one conversation, or all when id is ""), each jumping to its message. */
export async function showSearch(id, query) {
  await saveDraftNow();
  const pane = $("#pane");
  document.documentElement.dataset.view = "pane";
  const where = id ? `in ${state.contacts.get(id)?.name ?? "this chat"}` : "in all chats";
  mount(pane, h("div", { class: "search", id: "search-results" },
    id ? h("button", { type: "button", class: "back", onclick: () => openConversation(id) }, "‹ Conversation") : backButton(),
    h("h2", {}, `Search ${where}`),
    h("p", { id: "search-status", role: "status" }, `Searching for “${query}”…`),
    h("ol", { id: "results", class: "results" })));
  let results = [];
  try {
    results = (await state.core.call("messages.search", { contact: id, query, limit: 100 })) ?? [];
  } catch (err) {
    $("#search-status").textContent = say(err, "Searching");
    return;
  }
  $("#search-status").textContent = results.length ? `${results.length}${results.length === 100 ? " or more" : ""} message${results.length === 1 ? "" : "s"} with “${query}”.` : `No message has “${query}”.`;
  mount($("#results"), results.map((r) => h("li", {},
    h("button", { type: "button", class: "result", onclick: () => openConversation(r.contact, r.seq) },
      h("span", { class: "r-who" }, chatName(state.contacts.get(r.contact) ?? { name: "Chat" })),
      h("span", { class: "r-text", dir: "auto" }, r.snippet ?? r.text ?? ""),
      timeEl(r.time)))));
}

// ---------- details ----------

/**
 * Shows a contact's details. With refresh (a section's change, or an
 * event), it only redraws details that are still on screen: the awaits
 * below must not take the pane back from a conversation opened meanwhile.
 */
export async function showDetails(id, { refresh = false } = {}) {
  if (!refresh) await saveDraftNow();
  const c = state.contacts.get(id);
  const name = h("input", { id: "rename", value: c.name, maxlength: 64 });
  let code = "Available once connected.";
  try { code = (await state.core.call("contact.code", { id })).code; } catch { /* not connected yet */ }
  const view = h("div", { class: "details" },
    h("button", { type: "button", class: "back", onclick: () => openConversation(id) }, "‹ Conversation"),
    h("h2", { dir: "auto" }, c.name),
    c.peer_name && c.peer_name !== c.name ? h("p", { class: "meta" }, `Calls themselves ${c.peer_name}`) : null,
    c.invite_name ? h("p", { class: "meta" }, `Connected with your one-time link for ${c.invite_name}`) : null,
    c.incognito ? h("p", { class: "meta" }, `You appear to them as ${c.incognito}`) : null,
    c.state === "deleted" ? h("p", { class: "meta" }, "They left: they deleted this conversation.") : null,
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        await state.core.call("contact.rename", { id, name: name.value });
        toast("Renamed");
      } catch (err) { toast(say(err, "Renaming", { invalid: "That name was not accepted: use 1 to 64 characters.", too_long: "That name is too long: 64 characters at most." })); }
    } }, field("Name (only you see it)", name), h("button", { type: "submit" }, "Rename")),
    c.group ? null : await receivingRelaySection(id, () => showDetails(id, { refresh: true })),
    c.group ? null : await encryptionSection(id, () => showDetails(id, { refresh: true })),
    h("section", { "aria-labelledby": "code-title" },
      h("h3", { id: "code-title" }, "Security code"),
      h("p", { class: "hint" }, "Compare this code with your contact in person or on a call. If it is the same on both screens, nobody is in the middle."),
      h("p", { id: "security-code", class: "code" }, code)),
    h("button", { type: "button", class: "danger", onclick: async () => {
      if (!await confirmDialog({ title: `Delete ${c.name}?`, text: "This deletes the contact and all messages from this device. They will be told.", confirm: "Delete contact" })) return;
      try {
        await state.core.call("contact.delete", { id });
        state.contacts.delete(id);
        state.messages.delete(id);
        showEmptyPane();
        toast("Contact deleted");
      } catch (err) { toast(say(err, "Deleting the contact")); }
    } }, "Delete contact"));
  if (refresh && !($("#pane .details") && state.current === id)) return;
  mount($("#pane"), view);
}
