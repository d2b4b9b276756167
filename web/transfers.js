// transfers.js — files in a conversation: pick, paste or drop them, see a
// preview (with an optional caption, or Cancel) before anything is sent,
// upload with progress (resumable after a reload), download (pictures up to
// a size by themselves), show downloaded pictures at full resolution, save.
import { h, $, toast, blobBase64 } from "./dom.js";
import { say } from "./errors.js";
import { state } from "./state.js";
import { nav } from "./nav.js";
import { statusText, stickOnLoad, timeEl } from "./msgparts.js";
import { authorLine, sendGroupText } from "./groups.js";

const MAX_FILE = 1 << 30;
export const AUTO_KEY = "wisp.autoDownloadMiB"; // a display preference, not secret
/** Pictures up to this size download by themselves (Settings; default 5 MiB). */
export function autoDownloadLimit() {
  const v = Number(localStorage.getItem(AUTO_KEY) ?? "5");
  return (Number.isFinite(v) && v >= 0 ? v : 5) * (1 << 20);
}
const THUMB_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

/** A small JPEG preview of an image, sent inline with the file. */
async function makeThumbnail(file) {
  if (!THUMB_TYPES.includes(file.type)) return null;
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 160 / Math.max(bitmap.width, bitmap.height));
    const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    for (const q of [0.7, 0.5, 0.3]) {
      const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: q });
      if (blob.size <= 6000) return blobBase64(blob);
    }
  } catch { /* not decodable: send without a preview */ }
  return null;
}

const transfers = new Map(); // transfer id → progress element
let transferSeq = 0;

function progressBar(id, label) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": label });
  const info = h("span", { class: "meta" }, "");
  const cancel = h("button", { type: "button", class: "link", "aria-label": `Cancel: ${label}`,
    onclick: () => state.core.call("file.cancel", { transfer: id }).catch(() => {}) }, "Cancel");
  transfers.set(id, { bar, info, cancel, start: performance.now() });
  return h("div", { class: "transfer" }, bar, h("span", { class: "row" }, info, cancel));
}

export function onTransfer(t) {
  const el = transfers.get(t.id);
  if (!el) return;
  el.bar.max = t.total || 1;
  el.bar.value = t.done;
  const secs = (performance.now() - el.start) / 1000;
  el.info.textContent = `${formatSize(t.done)} of ${formatSize(t.total)}${secs > 0.5 ? ` · ${formatSize(t.done / secs)}/s` : ""}`;
  if (t.done >= t.total) transfers.delete(t.id);
}

/** Uploads by contact (uid → upload): those of this page and unfinished
 * ones the core keeps. An upload has the fields of the core's
 * PendingUpload, plus tid while it runs and file while this page has it. */
export const uploads = new Map();
function uploadsOf(contact) {
  if (!uploads.has(contact)) uploads.set(contact, new Map());
  return uploads.get(contact);
}

/** Brings the unfinished uploads of a contact up to date from the core. */
export async function refreshUploads(contact) {
  let pending = [];
  try { pending = (await state.core.call("file.uploads", { id: contact })) ?? []; } catch { nav.rerender(contact); return; }
  const mine = uploadsOf(contact);
  const ids = new Set(pending.map((u) => u.id));
  for (const [id, u] of mine) if (!u.tid && !ids.has(id)) mine.delete(id);
  for (const p of pending) {
    const u = mine.get(p.id);
    if (u?.tid) continue; // running: its progress is shown
    mine.set(p.id, { ...p, file: u?.file ?? null });
  }
  nav.rerender(contact);
}

export async function sendFile(contact, file, caption = "") {
  if (file.size > MAX_FILE) {
    toast(`${file.name} is ${formatSize(file.size)}: Wisp sends files up to 1 GiB.`);
    return;
  }
  const u = { id: crypto.randomUUID(), contact, name: file.name, type: file.type, size: file.size, done: 0, total: file.size, file };
  let thumbnail = null;
  // A group's file event has no caption: it follows as a message.
  const group = !!state.contacts.get(contact)?.group;
  const sent = await runUpload(u, async (tid) => {
    thumbnail ??= await makeThumbnail(file);
    const params = { contact, name: file.name, type: file.type, thumbnail, transfer: tid, upload: u.id, modified: file.lastModified };
    if (caption && !group) params.caption = caption;
    return state.core.call("file.send", params, file);
  });
  if (sent && caption && group) {
    try { nav.addMessage(await sendGroupText(contact, caption)); } catch { /* sendGroupText told */ }
  }
}

/**
 * Shows what was picked, pasted or dropped before anything is sent: a
 * picture's preview or a file's name and size, an optional caption, Send
 * and Cancel. Focus goes back to the composer afterwards.
 */
export function sendFiles(contact, files, composer) {
  files = files.filter((f) => f instanceof File);
  if (!files.length) return;
  const urls = [];
  const caption = h("textarea", { id: "caption", rows: 2, dir: "auto", placeholder: "Add a caption (optional)" });
  const close = () => { dialog.close(); dialog.remove(); for (const u of urls) URL.revokeObjectURL(u); composer?.focus(); };
  const items = files.map((f) => {
    const big = f.size > MAX_FILE;
    let preview = null;
    if (THUMB_TYPES.includes(f.type) && !big) {
      const url = URL.createObjectURL(f);
      urls.push(url);
      preview = h("img", { class: "preview-img", src: url, alt: `Preview of ${f.name}` });
    }
    return h("li", { class: "preview-item" }, preview,
      h("p", { class: "text", dir: "auto" }, f.name),
      h("p", { class: `meta${big ? " form-error" : ""}` }, big ? `${formatSize(f.size)}: too large, Wisp sends files up to 1 GiB.` : `${formatSize(f.size)}${f.type ? " · " + f.type : ""}`));
  });
  const sendable = files.filter((f) => f.size <= MAX_FILE);
  const send = h("button", { type: "submit", disabled: sendable.length === 0 }, sendable.length > 1 ? `Send ${sendable.length} files` : "Send");
  const dialog = h("dialog", { class: "preview", "aria-labelledby": "preview-title", oncancel: (e) => { e.preventDefault(); close(); } },
    h("form", { method: "dialog", onsubmit: (e) => {
      e.preventDefault();
      const text = caption.value.trim();
      close();
      sendable.forEach((f, i) => sendFile(contact, f, i === sendable.length - 1 ? text : ""));
    } },
    h("h2", { id: "preview-title" }, files.length > 1 ? `Send ${files.length} files?` : "Send this file?"),
    h("ul", { class: "preview-list" }, items),
    h("label", { for: "caption" }, "Caption"), caption,
    h("div", { class: "row end" }, h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"), send)));
  document.body.append(dialog);
  dialog.showModal();
  caption.focus();
}

/** The hidden file inputs of a composer: pick files, and pick a file again to resume. */
export function composerPickers(contact) {
  const picker = h("input", { id: "attach-input", type: "file", multiple: true, hidden: true, onchange: () => {
    const files = [...picker.files];
    picker.value = "";
    sendFiles(contact, files, $("#composer"));
  } });
  const resumePicker = h("input", { id: "resume-input", type: "file", hidden: true, "aria-label": "The file to resume sending", onchange: () => {
    const f = resumePicker.files[0];
    resumePicker.value = "";
    if (f && resumeTarget) resumeUpload(resumeTarget, f);
    resumeTarget = null;
  } });
  return { picker, resumePicker };
}

export function attachButton(picker) {
  return h("button", { type: "button", class: "secondary", "aria-label": "Attach file", title: "Attach file (or paste or drop files here)", onclick: () => picker.click() }, "Attach");
}

/** Runs an upload (a new one or a resumed one) with a progress bar. */
async function runUpload(u, call) {
  const tid = `up-${++transferSeq}`;
  progressBar(tid, `Uploading ${u.name}`);
  u.tid = tid;
  uploadsOf(u.contact).set(u.id, u);
  nav.rerender(u.contact);
  const list = $("#messages");
  if (list) list.scrollTop = list.scrollHeight;
  let failure = null;
  let sent = null;
  try {
    const m = await call(tid);
    uploadsOf(u.contact).delete(u.id);
    if (u.file) ownFiles.set(`${m.contact}/${m.seq}`, u.file);
    nav.addMessage(m);
    sent = m;
  } catch (err) {
    failure = err;
    if (err.code === "not_same_file" || err.code === "file_unreadable") u.file = null; // pick it again
  } finally {
    transfers.delete(tid);
    u.tid = null;
    await refreshUploads(u.contact);
  }
  if (!failure) return sent;
  if (failure.code === "canceled") toast(`Sending ${u.name} was cancelled.`);
  else if (failure.code === "not_same_file") toast(`That is not the file that was being sent: pick ${u.name} as it was.`);
  else if (failure.code === "file_unreadable" && uploadsOf(u.contact).has(u.id)) toast(`${u.name} can no longer be read: press Resume and pick it again.`);
  else if (uploadsOf(u.contact).has(u.id)) toast(`${u.name} was not sent. ${say(failure, "Sending the file")} Press Resume to go on.`);
  else toast(`${u.name} was not sent. ${say(failure, "Sending the file")}`);
}

let resumeTarget = null; // the upload the file picker is open for
function resumeUpload(u, file = u.file) {
  if (!file) {
    resumeTarget = u;
    $("#resume-input")?.click();
    return;
  }
  if (file.size !== u.size) {
    toast(`That file has ${formatSize(file.size)}; ${u.name} has ${formatSize(u.size)}. Pick ${u.name}.`);
    return;
  }
  u.file = file;
  runUpload(u, (tid) => state.core.call("file.resume", { contact: u.contact, upload: u.id, transfer: tid }, file));
}

async function discardUpload(u) {
  if (u.discarding) return;
  u.discarding = true;
  try {
    await state.core.call("file.discard", { contact: u.contact, upload: u.id });
  } catch (err) {
    toast(`${u.name} was not discarded. ${say(err, "Discarding")}`);
  } finally {
    u.discarding = false;
  }
  await refreshUploads(u.contact);
}

/** The progress of a running transfer, if it has one. */
function transferBox(tid) {
  const t = transfers.get(tid);
  return t ? h("div", { class: "transfer" }, t.bar, h("span", { class: "row" }, t.info, t.cancel)) : null;
}

export function uploadItem(u) {
  if (u.broken) {
    return h("li", { class: "msg out upload", "data-upload": u.id, "data-state": "broken" },
      h("div", { class: "bubble file" },
        h("p", { class: "meta" }, "An unfinished upload whose record is damaged: it cannot be resumed."),
        h("p", { class: "file-actions" },
          h("button", { type: "button", class: "link", "aria-label": "Discard the damaged upload", onclick: () => discardUpload(u) }, "Discard"))));
  }
  const running = !!u.tid;
  return h("li", { class: "msg out upload", "data-upload": u.id, "data-state": running ? "uploading" : "interrupted" },
    h("div", { class: "bubble file" },
      u.thumbnail ? h("img", { class: "thumb", src: `data:image/jpeg;base64,${u.thumbnail}`, alt: `Preview of ${u.name}` }) : null,
      h("p", { class: "text" }, u.name),
      h("p", { class: "meta" }, `${formatSize(u.size)}${u.type ? " · " + u.type : ""}`),
      running ? (transferBox(u.tid) ?? h("p", { class: "meta" }, "Sending…")) :
        h("p", { class: "meta" }, `Upload interrupted: ${formatSize(u.done)} of ${formatSize(u.total)} are on the relay.${u.file ? "" : " Pick the file again to go on."}`),
      running ? null : h("p", { class: "file-actions" },
        h("button", { type: "button", class: "link", "aria-label": `Resume sending ${u.name}`, onclick: () => resumeUpload(u) }, "Resume"),
        h("button", { type: "button", class: "link", "aria-label": `Discard ${u.name}`, onclick: () => discardUpload(u) }, "Discard"))));
}

/** The stored part of an interrupted download, when the core knows it. */
function storedText(f) {
  return f.stored > 0 && f.stored < f.size ? ` — ${formatSize(f.stored)} of ${formatSize(f.size)} already here` : "";
}

const PICTURE_TYPES = new Set(THUMB_TYPES);

/**
 * A file message. A picture that is here (downloaded, or our own) shows at
 * full resolution, sized to fit; otherwise its small preview.
 * parts are the conversation's pieces: menuButton, quoteBlock, reactionsRow, messageLabel.
 */
export function fileItem(m, parts) {
  const f = m.file;
  const out = !m.incoming;
  const tid = `${m.contact}/${m.seq}`;
  const here = f.state === "downloaded" || (out && ownFiles.has(`${m.contact}/${m.seq}`));
  const picture = PICTURE_TYPES.has(f.type);
  let img = null;
  if (picture && here) {
    img = h("img", { class: "picture", alt: f.name, src: f.thumbnail ? `data:image/jpeg;base64,${f.thumbnail}` : "",
      width: f.width || null, height: f.height || null, onclick: () => viewImage(m) });
    fullPicture(m, img);
  } else if (f.thumbnail) {
    img = h("img", { class: "thumb", src: `data:image/jpeg;base64,${f.thumbnail}`, alt: `Preview of ${f.name}` });
  }
  const actions = [];
  if (m.incoming) {
    if (f.state === "available" || f.state === "failed") {
      const resume = f.stored > 0 && f.stored < f.size;
      actions.push(h("button", { type: "button", class: "link", "aria-label": `${resume ? "Resume download of" : f.state === "failed" ? "Retry download of" : "Download"} ${f.name}`,
        onclick: (e) => download(m, e.target) }, resume ? `Resume download${storedText(f)}` : f.state === "failed" ? "Retry download" : "Download"));
    }
    if (f.state === "corrupted") actions.push(h("span", { class: "integrity" }, "File corrupted: it did not match what was sent."));
    if (f.state === "expired") actions.push(h("span", { class: "integrity" }, "This file has expired on the relay."));
  }
  if (here) {
    if (picture) actions.push(h("button", { type: "button", class: "link", "aria-label": `Open ${f.name}`, onclick: () => viewImage(m) }, "Open"));
    actions.push(h("button", { type: "button", class: "link", "aria-label": `Save ${f.name}`, onclick: () => saveFile(m) }, "Save"));
  }
  const label = `${f.name}, ${formatSize(f.size)}${f.caption ? `, ${f.caption}` : ""}`;
  return h("li", { class: `msg ${out ? "out" : "in"}`, tabindex: -1, "data-seq": m.seq, "data-status": m.status ?? null, "data-file": f.state,
    "aria-label": parts?.messageLabel ? parts.messageLabel(m, label) : label },
  h("div", { class: "bubble file" }, parts?.menuButton?.(m), authorLine(m), parts?.quoteBlock?.(m), img,
    h("p", { class: "text", dir: "auto" }, f.name),
    h("p", { class: "meta" }, `${formatSize(f.size)}${f.type ? " · " + f.type : ""}`),
    transferBox(tid),
    actions.length ? h("p", { class: "file-actions" }, actions) : null,
    f.caption ? h("p", { class: "caption", dir: "auto" }, f.caption) : null,
    h("p", { class: "meta" }, m.edited ? "edited · " : null, timeEl(m.time),
      out ? h("span", { class: `status ${m.status}` }, " · ", statusText(m)) : null)),
  parts?.reactionsRow?.(m));
}

// Object URLs of full pictures, by message, kept while the page lives so a
// re-render does not read the file again.
const pictures = new Map();

async function fullPicture(m, img) {
  const key = `${m.contact}/${m.seq}`;
  let url = pictures.get(key);
  if (!url) {
    try {
      url = URL.createObjectURL(await fileBlob(m));
    } catch { return; } // the preview stays
    pictures.set(key, url);
  }
  stickOnLoad(img);
  img.src = url;
}

const downloading = new Set();
async function download(m, button) {
  const tid = `${m.contact}/${m.seq}`;
  if (downloading.has(tid)) return;
  downloading.add(tid);
  if (button) button.replaceWith(progressBar(tid, `Downloading ${m.file.name}`));
  else progressBar(tid, `Downloading ${m.file.name}`);
  try {
    await state.core.call("file.download", { contact: m.contact, seq: m.seq });
  } catch (err) {
    if (err.code === "canceled") toast(`Download of ${m.file.name} cancelled; it resumes where it stopped.`);
    else if (err.code === "relay_local") toast(`${m.file.name} is on a relay on a private network, which Wisp does not connect to from a page on the internet. Ask your contact to send it from a relay on the internet.`);
    else if (err.code !== "file_corrupted" && err.code !== "file_expired") toast(`${m.file.name} was not downloaded. ${say(err, "Downloading")} Press Resume download to go on.`);
  } finally {
    downloading.delete(tid);
    transfers.delete(tid);
  }
}

/**
 * Files this tab sent, by message ("contact/seq"): the picked File, a
 * reference to the file on disk (no copy), so the sender can open and
 * save what they sent while the tab is open. The core keeps no copy of a
 * sent file.
 */
const ownFiles = new Map();

/** Reads a downloaded file from the core into a Blob (built in the worker),
 * or gives the sender's own file. */
async function fileBlob(m) {
  const own = !m.incoming && ownFiles.get(`${m.contact}/${m.seq}`);
  if (own) return own;
  const { handle, file } = await state.core.call("file.open", { contact: m.contact, seq: m.seq });
  return state.core.call("file.blob", { handle, type: file.type || "application/octet-stream" });
}

async function saveFile(m) {
  try {
    const url = URL.createObjectURL(await fileBlob(m));
    const a = h("a", { href: url, download: m.file.name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    toast(`${m.file.name}: ${say(err, "Opening the file")}`);
  }
}

async function viewImage(m) {
  try {
    const url = URL.createObjectURL(await fileBlob(m));
    const close = () => { dialog.close(); dialog.remove(); URL.revokeObjectURL(url); };
    const dialog = h("dialog", { class: "viewer", "aria-label": m.file.name, onclose: () => URL.revokeObjectURL(url) },
      h("img", { src: url, alt: m.file.name }),
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => saveFile(m) }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: close }, "Close")));
    document.body.append(dialog);
    dialog.showModal();
  } catch (err) {
    toast(`${m.file.name}: ${say(err, "Opening the file")}`);
  }
}

export function maybeAutoDownload(m) {
  const f = m.file;
  if (m.incoming && f && f.state === "available" && THUMB_TYPES.includes(f.type) && f.size <= autoDownloadLimit()) download(m);
}

