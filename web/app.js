// app.js — the Wisp page: starts the core worker and drives every screen.
// The core (Go, in worker.js) owns all state; this module only shows it.
import { CoreClient, CoreError } from "./rpc.js";
import { h, $, mount, toast, formatTime, formatDay, blobURL, blobBase64, resizeAvatar, scriptURL } from "./dom.js";
import { registerServiceWorker } from "./sw-register.js";
import { field, errorLine, setError, busy } from "./form.js";
import { initGroups, showNewGroup, groupListLabel, groupStateText, groupStatusText, noticeItem, authorLine, groupFoot,
  onGroupEntry, sendGroupText } from "./groups.js";
import { initMembers, showMembers, onMembersChanged } from "./members.js";

const STARTUP_TIMEOUT_MS = 60_000;
const CANARY_KEY = "wisp.canary";
const PAGE = 50;

const state = {
  core: null,
  version: null,
  profiles: [],
  profile: null,        // ProfileInfo of the unlocked profile
  contacts: new Map(),  // id → Contact
  current: null,        // open conversation's contact id
  messages: new Map(),  // id → Message[] (oldest first, loaded pages)
  complete: new Set(),  // contact ids whose history is fully loaded
  gen: new Map(),       // contact id → how many times its conversation was opened
  relaysDown: new Set(),
  invite: null,         // an invitation link opened in this tab, not yet used
  releaseLock: null,
  persisted: null,
};

const main = () => $("#main");

// ---------- start-up ----------

function show(id) {
  for (const s of document.querySelectorAll("main > .screen")) s.hidden = s.id !== id;
}

function fatal(message) {
  document.documentElement.dataset.state = "error";
  mount(main(), h("section", { id: "error", class: "screen error", role: "alert", "aria-labelledby": "error-title" },
    h("h2", { id: "error-title" }, "Wisp could not start"),
    h("p", { id: "error-message" }, message),
    h("p", {}, "Your messages and keys stay where they were. Reload the page to try again; if it keeps failing, your browser may block WebAssembly or Web Workers."),
    h("button", { id: "reload", type: "button", onclick: () => location.reload() }, "Reload")));
  $("#reload").focus();
}

async function boot() {
  takeInviteFromURL();
  let worker;
  try {
    worker = new Worker(scriptURL("./worker.js"), { name: "wisp-core" });
  } catch (err) {
    fatal(`This browser could not start a Web Worker (${err.message}).`);
    return;
  }
  const core = new CoreClient(worker);
  state.core = core;
  core.addEventListener("fatal", (e) => fatal(`The Wisp core stopped: ${e.detail.message}.`));
  core.addEventListener("core-event", (e) => onCoreEvent(e.detail.name, e.detail.data));
  $("#status").textContent = "Starting the encrypted core…";
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("the core did not answer within a minute")), STARTUP_TIMEOUT_MS));
  try {
    const info = await Promise.race([core.call("version"), timeout]);
    state.version = info;
    $("#core-version").textContent = `${info.version} (${info.go}${info.revision ? ", " + info.revision.slice(0, 12) : ""})`;
    $("#status").textContent = "Opening your storage…";
    const relays = await fetchPresetRelays();
    const res = await core.call("init", { origin: location.origin, relays });
    state.profiles = res.profiles ?? [];
    $("#status").textContent = "ready";
    document.documentElement.dataset.state = "ready";
    performance.mark("wisp-ready");
    registerServiceWorker(); // after the core, so installing reads core.wasm from the HTTP cache
  } catch (err) {
    if (!(err instanceof CoreError && err.code === "core_stopped")) fatal(`The Wisp core did not start: ${err.message}.`);
    return;
  }
  window.addEventListener("hashchange", () => { if (takeInviteFromURL() && state.profile) showJoin(); });
  window.addEventListener("online", () => state.core.call("network.reconnect").catch(() => {}));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") state.core.call("network.reconnect").catch(() => {});
  });
  await route();
}

async function fetchPresetRelays() {
  try {
    const res = await fetch("./config.json", { cache: "no-cache" });
    if (!res.ok) return [];
    const cfg = await res.json();
    return Array.isArray(cfg.relays) ? cfg.relays : [];
  } catch {
    return [];
  }
}

/** Moves an invitation from the URL into memory, so it does not linger in the address bar. */
function takeInviteFromURL() {
  if (!location.hash.startsWith("#/invite/")) return false;
  state.invite = location.href;
  history.replaceState(null, "", location.pathname);
  return true;
}

function canary() {
  try { return JSON.parse(localStorage.getItem(CANARY_KEY) ?? "null"); } catch { return null; }
}

function setCanary() {
  try {
    localStorage.setItem(CANARY_KEY, JSON.stringify({ profiles: state.profiles.map((p) => p.id), at: Date.now() }));
  } catch { /* storage disabled: nothing to compare later */ }
}

async function route() {
  const c = canary();
  if (state.profiles.length === 0 && c?.profiles?.length > 0) return showWiped();
  if (state.profiles.length === 0) return showOnboarding();
  setCanary();
  const open = state.profiles.filter((p) => !p.passphrase);
  if (state.profiles.length === 1 && open.length === 1) return unlock(open[0].id, "");
  return showUnlock();
}

// ---------- screens ----------

function screen(id, title, ...children) {
  const s = h("section", { id, class: "screen", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), ...children);
  mount(main(), s);
  return s;
}

function showOnboarding() {
  let avatar = null;
  const name = h("input", { id: "name", name: "name", autocomplete: "nickname", maxlength: 64, required: true });
  const pass = h("input", { id: "passphrase", type: "password", autocomplete: "new-password", "aria-describedby": "passphrase-hint" });
  const pic = h("input", { id: "avatar", type: "file", accept: "image/*", onchange: async () => {
    try {
      avatar = pic.files[0] ? await resizeAvatar(pic.files[0]) : null;
      mount($("#avatar-preview"), avatar ? h("img", { src: URL.createObjectURL(avatar), alt: "Your picture", width: 48, height: 48 }) : "");
    } catch (err) { setError("create-error", `That picture could not be used: ${err.message}`); }
  } });
  const btn = h("button", { type: "submit" }, "Create profile");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    setError("create-error", "");
    busy(btn, true, "Creating…");
    try {
      const params = { name: name.value, passphrase: pass.value };
      if (avatar) params.avatar = await blobBase64(avatar);
      const { id } = await state.core.call("profile.create", params);
      state.profiles = (await state.core.call("profiles.list")) ?? [];
      setCanary();
      await requestPersistence();
      await unlock(id, pass.value);
    } catch (err) {
      setError("create-error", err.message);
      busy(btn, false, "Create profile");
    }
  } },
  field("Display name", name, null),
  h("div", { class: "field" }, h("label", { for: "avatar" }, "Picture (optional)"), pic, h("span", { id: "avatar-preview" })),
  field("Passphrase", pass, "Optional, at least 8 characters. It encrypts everything Wisp keeps in this browser. Without one, anyone who can use this browser profile can open your chats. There is no way to recover a forgotten passphrase."),
  errorLine("create-error"), btn);
  screen("onboarding", "Welcome to Wisp",
    h("p", { class: "lead" }, "Wisp is a private messenger with no accounts: no phone number, no username, nothing that identifies you."),
    h("p", { class: "lead" }, "You connect with people by sharing a one-time link, and only your two browsers can read what you send."),
    form, importSection());
  name.focus();
}

/** The "Import a backup" form, shown at onboarding and after a wipe. */
function importSection() {
  const file = h("input", { id: "backup-file", type: "file", accept: ".wisp,application/octet-stream" });
  const pass = h("input", { id: "backup-pass", type: "password", autocomplete: "off" });
  const newPass = h("input", { id: "backup-new-pass", type: "password", autocomplete: "new-password" });
  const btn = h("button", { type: "submit", class: "secondary" }, "Import backup");
  return h("details", { class: "import" }, h("summary", {}, "Import a backup"),
    h("p", { class: "hint" }, "Import your latest backup, and stop using Wisp in the browser it came from: messages sent or received there after the backup cannot be recovered, and two browsers cannot share one profile."),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("import-error", "");
      if (!file.files[0]) { setError("import-error", "Choose a backup file first."); return; }
      busy(btn, true, "Importing…");
      try {
        const data = await blobBase64(file.files[0]);
        const { id } = await state.core.call("backup.import", { data, passphrase: pass.value, new_passphrase: newPass.value });
        state.profiles = (await state.core.call("profiles.list")) ?? [];
        setCanary();
        await requestPersistence();
        await unlock(id, newPass.value);
        toast("Backup imported");
      } catch (err) {
        setError("import-error", err.code === "wrong_passphrase" ? "Wrong backup passphrase. Nothing was imported." : err.message);
        busy(btn, false, "Import backup");
      }
    } },
    field("Backup file", file),
    field("Backup passphrase", pass),
    field("New passphrase (optional)", newPass, "Protects the profile in this browser. Leave empty for no passphrase."),
    errorLine("import-error"), btn));
}

async function requestPersistence() {
  try {
    state.persisted = await navigator.storage?.persist?.() ?? false;
  } catch { state.persisted = false; }
  if (state.persisted) toast("Storage is persistent: this browser will keep Wisp's data.");
  else showPersistBanner();
}

function showPersistBanner() {
  if (sessionStorage.getItem("wisp.persist-dismissed")) return;
  const banner = $("#banner");
  mount(banner, h("p", {}, "This browser may delete Wisp's storage when space runs low. Install Wisp as an app or bookmark it and use it often, and export a backup in Settings."),
    h("button", { type: "button", class: "secondary", onclick: () => { banner.hidden = true; sessionStorage.setItem("wisp.persist-dismissed", "1"); } }, "Dismiss"));
  banner.hidden = false;
}

function showUnlock() {
  const locked = state.profiles;
  let selected = locked[0].id;
  const pass = h("input", { id: "passphrase", type: "password", autocomplete: "current-password" });
  const btn = h("button", { type: "submit" }, "Unlock");
  const chooser = locked.length > 1 ? h("fieldset", { class: "profiles" }, h("legend", {}, "Profile"),
    locked.map((p, i) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "profile", value: p.id, checked: i === 0, onchange: () => { selected = p.id; } }),
      ` Profile ${i + 1}, created ${new Date(p.created).toLocaleDateString()}${p.passphrase ? "" : " (no passphrase)"}`))) : null;
  screen("unlock", "Unlock Wisp",
    h("p", {}, state.invite ? "Unlock to answer the invitation you opened." : "Your chats are encrypted with your passphrase."),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("unlock-error", "");
      busy(btn, true, "Unlocking…");
      try {
        await unlock(selected, pass.value);
      } catch (err) {
        setError("unlock-error", err.code === "wrong_passphrase" ? "Wrong passphrase. Nothing was changed; try again." : err.message);
        busy(btn, false, "Unlock");
        pass.select();
      }
    } }, chooser, field("Passphrase", pass), errorLine("unlock-error"), btn),
    h("p", {}, h("button", { type: "button", class: "link", onclick: showOnboarding }, "Create another profile")));
  pass.focus();
}

async function unlock(id, passphrase) {
  const got = await takeLock(id);
  if (!got) return showOtherTab(id, passphrase);
  try {
    state.profile = await state.core.call("profile.unlock", { id, passphrase });
  } catch (err) {
    state.releaseLock?.();
    throw err;
  }
  await loadContacts();
  showMain();
  if (state.invite) showJoin();
}

// ---------- one tab per profile (Web Locks) ----------
// A tab holds the lock "wisp-profile-<id>" while it drives the profile.
// "Use here" steals it; the tab that loses it locks its core and then says
// so on the "wisp-locks" channel, and the new tab waits for that (or a few
// seconds, for a tab that is frozen) before it opens the profile, so that
// two cores never use the same keys at once.

const lockChannel = "BroadcastChannel" in self ? new BroadcastChannel("wisp-locks") : null;

function released(id, timeoutMs) {
  if (!lockChannel) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { lockChannel.removeEventListener("message", onMsg); resolve(); };
    const onMsg = (e) => { if (e.data?.released === id) done(); };
    lockChannel.addEventListener("message", onMsg);
    setTimeout(done, timeoutMs);
  });
}

async function takeLock(id, steal = false) {
  if (!navigator.locks) return true;
  return new Promise((resolve) => {
    const opts = steal ? { steal: true } : { ifAvailable: true };
    navigator.locks.request(`wisp-profile-${id}`, opts, (lock) => {
      if (!lock) { resolve(false); return; }
      resolve(true);
      return new Promise((release) => { state.releaseLock = release; });
    }).catch(async () => {
      // Another tab took the profile ("Use here"): stop driving it, then tell.
      state.profile = null;
      mount(main(), h("section", { id: "elsewhere", class: "screen", "aria-labelledby": "elsewhere-title" },
        h("h2", { id: "elsewhere-title" }, "Wisp is open in another tab"),
        h("p", {}, "Wisp moved to another tab. Close this one, or reload it to take Wisp back."),
        h("button", { type: "button", onclick: () => location.reload() }, "Reload")));
      await state.core?.call("profile.lock").catch(() => {});
      lockChannel?.postMessage({ released: id });
    });
  });
}

function showOtherTab(id, passphrase) {
  const btn = h("button", { type: "button", onclick: async () => {
    setError("elsewhere-error", "");
    busy(btn, true, "Moving Wisp here…");
    try {
      // Check the passphrase first: a wrong one must not take Wisp away
      // from the tab that is using it.
      await state.core.call("profile.check", { id, passphrase });
      const gone = released(id, 5000);
      await takeLock(id, true);
      await gone;
      state.profile = await state.core.call("profile.unlock", { id, passphrase });
      await loadContacts();
      showMain();
      if (state.invite) showJoin();
    } catch (err) {
      state.releaseLock?.();
      setError("elsewhere-error", err.code === "wrong_passphrase" ? "Wrong passphrase. Wisp stays in the other tab." : err.message);
      busy(btn, false, "Use here");
    }
  } }, "Use here");
  screen("elsewhere", "Wisp is open in another tab",
    h("p", {}, "A profile can be used in one tab at a time, so that two tabs never send with the same keys."),
    errorLine("elsewhere-error"), btn);
  btn.focus();
}

function showWiped() {
  screen("wiped", "Your Wisp data is gone",
    h("p", {}, "This browser deleted Wisp's storage (it does that when space runs low or site data is cleared). Wisp did not create a new identity in its place."),
    h("p", {}, "If you exported a backup, import it below. Otherwise your contacts will need to send you new invitations."),
    importSection(),
    h("button", { type: "button", class: "secondary", onclick: () => { localStorage.removeItem(CANARY_KEY); showOnboarding(); } }, "Start again without a backup"));
}

// ---------- main layout ----------

async function loadContacts() {
  const list = (await state.core.call("contacts.list")) ?? [];
  state.contacts = new Map(list.map((c) => [c.id, c]));
}

function showMain() {
  const p = state.profile;
  mount(main(), h("div", { id: "app", class: "layout" },
    h("aside", { class: "sidebar", "aria-label": "Contacts" },
      h("div", { class: "me" },
        p.avatar ? h("img", { class: "avatar", src: `data:image/jpeg;base64,${p.avatar}`, alt: "", width: 32, height: 32 }) : h("span", { class: "avatar initial", "aria-hidden": "true" }, p.name.slice(0, 1)),
        h("span", { class: "me-name" }, p.name),
        h("button", { type: "button", class: "secondary", onclick: showSettings }, "Settings")),
      h("p", { id: "net", class: "net", role: "status", hidden: state.relaysDown.size === 0 }, "Connecting…"),
      h("div", { class: "new-row" },
        h("button", { type: "button", onclick: showNewConnection }, "New connection"),
        h("button", { type: "button", class: "secondary", onclick: showNewGroup }, "New group")),
      h("ul", { id: "contacts", class: "contacts" })),
    h("section", { id: "pane", class: "pane", "aria-live": "polite" },
      h("div", { class: "empty" }, h("p", {}, "Choose a contact, or make a new connection.")))));
  renderContacts();
  document.documentElement.dataset.view = "list";
}

function contactLabel(c) {
  if (c.group) return groupListLabel(c);
  switch (c.state) {
    case "invited": return "Waiting for your contact…";
    case "connecting": return "Connecting…";
    case "deleted": return "Deleted the conversation";
    default: return c.last_text ?? "Connected";
  }
}

function renderContacts() {
  const ul = $("#contacts");
  if (!ul) return;
  const list = [...state.contacts.values()].sort((a, b) =>
    new Date(b.last_time || b.created) - new Date(a.last_time || a.created));
  if (list.length === 0) {
    mount(ul, h("li", { class: "hint" }, "No contacts yet."));
    return;
  }
  mount(ul, list.map((c) => h("li", {},
    h("button", { type: "button", class: `contact${c.id === state.current ? " current" : ""}`,
      "aria-current": c.id === state.current ? "true" : null, onclick: () => openConversation(c.id) },
    c.avatar ? h("img", { class: "avatar", src: `data:image/jpeg;base64,${c.avatar}`, alt: "", width: 36, height: 36 }) : h("span", { class: "avatar initial", "aria-hidden": "true" }, (c.name || "?").slice(0, 1)),
    h("span", { class: "c-main" },
      h("span", { class: "c-name" }, c.name),
      h("span", { class: "c-last" }, contactLabel(c))),
    h("span", { class: "c-side" },
      h("time", { datetime: c.last_time || c.created }, formatTime(c.last_time || c.created)),
      c.group ? h("span", { class: "tag" }, "Group") : null,
      c.unread > 0 ? h("span", { class: "badge", "aria-label": `${c.unread} unread` }, String(c.unread)) : null)))));
}

// ---------- connecting ----------

async function showNewConnection() {
  state.current = null;
  renderContacts();
  const pane = $("#pane");
  document.documentElement.dataset.view = "pane";
  const incognito = h("input", { type: "checkbox", id: "incognito" });
  const linkField = h("input", { id: "paste-link", autocomplete: "off", spellcheck: "false", placeholder: "https://…/#/invite/…" });
  const connect = h("button", { type: "submit" }, "Connect");
  mount(pane, h("div", { class: "connect" },
    backButton(),
    h("h2", {}, "New connection"),
    h("section", { "aria-labelledby": "share-title" },
      h("h3", { id: "share-title" }, "Share a one-time link"),
      h("p", { class: "hint" }, "Give this link or QR code to one person, in person or over a channel you trust. It works once."),
      h("div", { id: "invite-area", class: "invite" }, h("p", { role: "status" }, "Creating your invitation…"))),
    h("section", { "aria-labelledby": "paste-title" },
      h("h3", { id: "paste-title" }, "Or use a link you received"),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        setError("paste-error", "");
        busy(connect, true, "Connecting…");
        try {
          await join(linkField.value, incognito.checked);
        } catch (err) {
          setError("paste-error", linkMessage(err));
          busy(connect, false, "Connect");
        }
      } }, field("Invitation link", linkField),
      h("label", { class: "choice" }, incognito, " Join incognito (they see a random name, not yours)"),
      errorLine("paste-error"), connect))));
  try {
    const inv = await state.core.call("invite.create", {});
    const qr = `data:image/png;base64,${inv.qr}`;
    const copy = h("button", { type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(inv.link); toast("Link copied"); } catch { $("#invite-link").select(); toast("Select the link and copy it"); }
    } }, "Copy link");
    mount($("#invite-area"),
      h("img", { id: "invite-qr", class: "qr", src: qr, width: 256, height: 256, alt: "QR code of the invitation link" }),
      field("One-time link", h("input", { id: "invite-link", readonly: true, value: inv.link, onfocus: (e) => e.target.select() })),
      copy,
      h("p", { id: "invite-status", role: "status", "data-contact": inv.contact }, "Waiting for your contact…"),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        await state.core.call("contact.delete", { id: inv.contact }).catch(() => {});
        state.contacts.delete(inv.contact);
        renderContacts();
        showEmptyPane();
      } }, "Cancel invitation"));
  } catch (err) {
    mount($("#invite-area"), h("p", { class: "form-error", role: "alert" }, err.code === "no_relay" ? "Add a relay in Settings first." : relayRefusal(err) ?? `Could not create an invitation: ${err.message}`));
  }
}

function linkMessage(err) {
  switch (err.code) {
    case "not_wisp_link": return "That is not a Wisp invitation link.";
    case "link_corrupted": return "The invitation link is corrupted: it was cut or changed. Ask for it again.";
    case "link_version": return "This invitation needs a different version of Wisp.";
    case "link_relay": return "The invitation's relay address is invalid.";
    case "relay_local": return "This invitation uses a relay on a private network or on someone's own computer, which Wisp does not connect to from a page on the internet. Ask your contact for a new link made with a relay on the internet.";
    case "invitation_used": return "This invitation was already used. Ask for a new one.";
    case "relay_unreachable": return "The relay could not be reached. Check your connection and try again.";
    default: return relayRefusal(err) ?? err.message;
  }
}

/** The sentence for a relay that refuses for a while, or undefined. */
function relayRefusal(err) {
  switch (err.code) {
    case "relay_busy": return "The relay is busy: too many new connections were made through it just now. Wait a minute and try again.";
    case "relay_full": return "The relay is out of space. Try again later, or choose another relay in Settings.";
    default: return undefined;
  }
}

/** The settings' message for a relay address that was refused. */
function relayMessage(err) {
  if (err.code === "relay_local") return "That relay is on a private network or on this computer, which Wisp does not connect to from a page on the internet. Use the relay's public address (wisp://…@relay.example).";
  return `Not a relay address: ${err.message}`;
}

async function join(link, incognito) {
  const c = await state.core.call("join", { link, incognito });
  state.invite = null;
  state.contacts.set(c.id, c);
  renderContacts();
  await openConversation(c.id);
}

function showJoin() {
  const link = state.invite;
  if (!link || !$("#pane")) return;
  const incognito = h("input", { type: "checkbox", id: "join-incognito" });
  const btn = h("button", { type: "button", onclick: async () => {
    setError("join-error", "");
    busy(btn, true, "Connecting…");
    try {
      await join(link, incognito.checked);
    } catch (err) {
      setError("join-error", linkMessage(err));
      busy(btn, false, "Connect");
    }
  } }, "Connect");
  document.documentElement.dataset.view = "pane";
  mount($("#pane"), h("div", { class: "connect", id: "join" },
    h("h2", {}, "Connect to this invitation?"),
    h("p", {}, "Someone sent you a one-time Wisp link. Connecting shares your display name with them, and nothing else."),
    h("label", { class: "choice" }, incognito, " Join incognito (they see a random name, not yours)"),
    errorLine("join-error"),
    h("div", { class: "row" }, btn, h("button", { type: "button", class: "secondary", onclick: () => { state.invite = null; showEmptyPane(); } }, "Cancel"))));
  state.core.call("link.check", { link }).catch((err) => {
    setError("join-error", linkMessage(err));
    btn.disabled = true;
  });
  btn.focus();
}

function showEmptyPane() {
  state.current = null;
  document.documentElement.dataset.view = "list";
  mount($("#pane"), h("div", { class: "empty" }, h("p", {}, "Choose a contact, or make a new connection.")));
  renderContacts();
}

function backButton() {
  return h("button", { type: "button", class: "back", "aria-label": "Back to contacts", onclick: showEmptyPane }, "‹ Contacts");
}

// ---------- conversation ----------

async function openConversation(id) {
  state.current = id;
  const c = state.contacts.get(id) ?? await state.core.call("contact.get", { id });
  state.contacts.set(id, c);
  renderContacts();
  document.documentElement.dataset.view = "pane";
  const text = h("textarea", { id: "composer", rows: 1, maxlength: 8000, placeholder: "Write a message", onkeydown: (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  }, oninput: () => autosize(text) });
  const sendBtn = h("button", { type: "submit" }, "Send");
  sendBtn.title = "Send (Enter); Shift+Enter for a new line";
  // Focusable, so that keyboard users can scroll the history.
  const list = h("ol", { id: "messages", class: "messages", tabindex: 0, "aria-label": c.group ? `Messages in ${c.name}` : `Messages with ${c.name}`, onscroll: () => {
    if (list.scrollTop < 80) loadOlder(id);
  } });
  // Sends are chained so that messages keep the order they were typed in,
  // and the box is cleared at once so typing can go on meanwhile.
  let queue = Promise.resolve();
  function send() {
    const value = text.value.trim();
    if (!value) return;
    text.value = "";
    autosize(text);
    queue = queue.then(async () => {
      if (c.group) {
        try { addMessage(await sendGroupText(id, value)); } catch {
          if (!text.value) { text.value = value; autosize(text); }
        }
        return;
      }
      try {
        addMessage(await state.core.call("messages.send", { contact: id, text: value }));
      } catch (err) {
        if (!text.value) { text.value = value; autosize(text); }
        toast(err.code === "not_ready" ? "Wait until the connection is established." : `Not sent: ${err.message}`);
      }
    });
  }
  const picker = h("input", { id: "attach-input", type: "file", multiple: true, hidden: true, onchange: () => {
    for (const f of picker.files) sendFile(id, f);
    picker.value = "";
  } });
  const resumePicker = h("input", { id: "resume-input", type: "file", hidden: true, "aria-label": "The file to resume sending", onchange: () => {
    const f = resumePicker.files[0];
    resumePicker.value = "";
    if (f && resumeTarget) resumeUpload(resumeTarget, f);
    resumeTarget = null;
  } });
  const attach = h("button", { type: "button", class: "secondary", "aria-label": "Attach file", title: "Attach file (or drop files here)", onclick: () => picker.click() }, "Attach");
  text.addEventListener("paste", (e) => {
    const images = [...(e.clipboardData?.files ?? [])].filter((f) => f.type.startsWith("image/"));
    if (images.length) { e.preventDefault(); for (const f of images) sendFile(id, f); }
  });
  const foot = c.group ? groupFoot(c) : null;
  mount($("#pane"), h("div", { class: "conversation",
    ondragover: (e) => { if (!foot && e.dataTransfer?.types.includes("Files")) { e.preventDefault(); } },
    ondrop: (e) => { if (!foot && e.dataTransfer?.files.length) { e.preventDefault(); for (const f of e.dataTransfer.files) sendFile(id, f); } } },
    h("header", { class: "conv-head" }, backButton(),
      h("h2", { id: "conv-title" }, c.name),
      h("span", { id: "conv-state", class: "meta" }, stateText(c)),
      c.group ? (c.group.state === "invited" ? null : h("button", { type: "button", class: "secondary", onclick: () => showMembers(id) }, "Members"))
        : h("button", { type: "button", class: "secondary", onclick: () => showDetails(id) }, "Details")),
    list,
    foot ?? h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); send(); } },
      // A group file is uploaded once, with one copy's keys per member.
      picker, resumePicker, attach,
      h("label", { for: "composer", class: "visually-hidden" }, "Message"), text, sendBtn)));
  state.messages.set(id, []);
  state.complete.delete(id);
  state.gen.set(id, (state.gen.get(id) ?? 0) + 1);
  loading.delete(id); // a load for an earlier view of this conversation is dropped
  await loadOlder(id);
  await refreshUploads(id);
  list.scrollTop = list.scrollHeight;
  if (c.unread) markRead(id);
  if (!foot) text.focus();
}

function stateText(c) {
  if (c.group) return groupStateText(c);
  return { invited: "waiting for your contact", connecting: "connecting…", connected: "connected", deleted: "deleted the conversation" }[c.state] ?? c.state;
}

function autosize(t) {
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

const loading = new Set();
async function loadOlder(id) {
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

function statusText(m) {
  if (m.recipients) return groupStatusText(m);
  return { pending: "Sending…", sent: "Sent", delivered: "Delivered", failed: "Failed" }[m.status] ?? "";
}

function messageItem(m) {
  const out = !m.incoming;
  if (m.notice) return noticeItem(m);
  if (m.file) return fileItem(m);
  return h("li", { class: `msg ${out ? "out" : "in"}`, "data-seq": m.seq, "data-status": m.status ?? null,
    "data-author": m.author_name ?? null, "data-delivered": m.recipients ? (m.delivered_to ?? []).length : null },
    m.missing ? h("p", { class: "integrity" }, `${m.missing} message${m.missing > 1 ? "s" : ""} may be missing`) : null,
    m.bad_hash ? h("p", { class: "integrity" }, "This message does not follow the previous one: the history may differ") : null,
    h("div", { class: "bubble" },
      authorLine(m),
      h("p", { class: "text" }, m.text),
      h("p", { class: "meta" },
        h("time", { datetime: m.time }, formatTime(m.time)),
        out ? h("span", { class: `status ${m.status}` }, " · ", statusText(m)) : null,
        out && m.status === "failed" ? h("button", { type: "button", class: "link", title: m.reason, onclick: () => retry(m) }, "Retry") : null)));
}

// ---------- files ----------

const MAX_FILE = 1 << 30;
const AUTO_KEY = "wisp.autoDownloadMiB"; // a display preference, not secret
/** Pictures up to this size download by themselves (Settings; default 5 MiB). */
function autoDownloadLimit() {
  const v = Number(localStorage.getItem(AUTO_KEY) ?? "5");
  return (Number.isFinite(v) && v >= 0 ? v : 5) * (1 << 20);
}
const THUMB_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];

function formatSize(n) {
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

function onTransfer(t) {
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
const uploads = new Map();
function uploadsOf(contact) {
  if (!uploads.has(contact)) uploads.set(contact, new Map());
  return uploads.get(contact);
}

function rerender(contact) {
  if (state.current !== contact) return;
  const list = $("#messages");
  const atBottom = list && list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  renderMessages(contact);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** Brings the unfinished uploads of a contact up to date from the core. */
async function refreshUploads(contact) {
  let pending = [];
  try { pending = (await state.core.call("file.uploads", { id: contact })) ?? []; } catch { rerender(contact); return; }
  const mine = uploadsOf(contact);
  const ids = new Set(pending.map((u) => u.id));
  for (const [id, u] of mine) if (!u.tid && !ids.has(id)) mine.delete(id);
  for (const p of pending) {
    const u = mine.get(p.id);
    if (u?.tid) continue; // running: its progress is shown
    mine.set(p.id, { ...p, file: u?.file ?? null });
  }
  rerender(contact);
}

async function sendFile(contact, file) {
  if (file.size > MAX_FILE) {
    toast(`${file.name} is ${formatSize(file.size)}: Wisp sends files up to 1 GiB.`);
    return;
  }
  const u = { id: crypto.randomUUID(), contact, name: file.name, type: file.type, size: file.size, done: 0, total: file.size, file };
  let thumbnail = null;
  await runUpload(u, async (tid) => {
    thumbnail ??= await makeThumbnail(file);
    return state.core.call("file.send", { contact, name: file.name, type: file.type, thumbnail, transfer: tid, upload: u.id, modified: file.lastModified }, file);
  });
}

/** Runs an upload (a new one or a resumed one) with a progress bar. */
async function runUpload(u, call) {
  const tid = `up-${++transferSeq}`;
  progressBar(tid, `Uploading ${u.name}`);
  u.tid = tid;
  uploadsOf(u.contact).set(u.id, u);
  rerender(u.contact);
  const list = $("#messages");
  if (list) list.scrollTop = list.scrollHeight;
  let failure = null;
  try {
    const m = await call(tid);
    uploadsOf(u.contact).delete(u.id);
    addMessage(m);
  } catch (err) {
    failure = err;
    if (err.code === "not_same_file" || err.code === "file_unreadable") u.file = null; // pick it again
  } finally {
    transfers.delete(tid);
    u.tid = null;
    await refreshUploads(u.contact);
  }
  if (!failure) return;
  if (failure.code === "canceled") toast(`Sending ${u.name} was cancelled.`);
  else if (failure.code === "not_same_file") toast(`That is not the file that was being sent: pick ${u.name} as it was.`);
  else if (failure.code === "file_unreadable" && uploadsOf(u.contact).has(u.id)) toast(`${u.name} can no longer be read: press Resume and pick it again.`);
  else if (uploadsOf(u.contact).has(u.id)) toast(`${u.name} was not sent: ${failure.message}. Press Resume to go on.`);
  else toast(`${u.name} was not sent: ${failure.message}`);
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
    toast(`${u.name} was not discarded: ${err.message}`);
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

function uploadItem(u) {
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

function fileItem(m) {
  const f = m.file;
  const out = !m.incoming;
  const tid = `${m.contact}/${m.seq}`;
  const thumb = f.thumbnail ? h("img", { class: "thumb", src: `data:image/jpeg;base64,${f.thumbnail}`, alt: `Preview of ${f.name}`,
    onclick: f.state === "downloaded" ? () => viewImage(m) : null }) : null;
  const actions = [];
  if (m.incoming) {
    if (f.state === "available" || f.state === "failed") {
      actions.push(h("button", { type: "button", class: "link", onclick: (e) => download(m, e.target) }, f.state === "failed" ? "Retry download" : "Download"));
    }
    if (f.state === "downloaded") actions.push(h("button", { type: "button", class: "link", onclick: () => saveFile(m) }, "Save"));
    if (f.state === "corrupted") actions.push(h("span", { class: "integrity" }, "File corrupted: it did not match what was sent."));
    if (f.state === "expired") actions.push(h("span", { class: "integrity" }, "This file has expired on the relay."));
  }
  return h("li", { class: `msg ${out ? "out" : "in"}`, "data-seq": m.seq, "data-status": m.status ?? null, "data-file": f.state },
    h("div", { class: "bubble file" }, authorLine(m), thumb,
      h("p", { class: "text" }, f.name),
      h("p", { class: "meta" }, `${formatSize(f.size)}${f.type ? " · " + f.type : ""}`),
      transferBox(tid),
      actions.length ? h("p", { class: "file-actions" }, actions) : null,
      h("p", { class: "meta" }, h("time", { datetime: m.time }, formatTime(m.time)),
        out ? h("span", { class: `status ${m.status}` }, " · ", statusText(m)) : null)));
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
    else if (err.code !== "file_corrupted" && err.code !== "file_expired") toast(`${m.file.name}: ${err.message}`);
  } finally {
    downloading.delete(tid);
    transfers.delete(tid);
  }
}

/** Reads a downloaded file from the core into a Blob (built in the worker). */
async function fileBlob(m) {
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
    toast(`${m.file.name}: ${err.message}`);
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
    toast(`${m.file.name}: ${err.message}`);
  }
}

function maybeAutoDownload(m) {
  const f = m.file;
  if (m.incoming && f && f.state === "available" && THUMB_TYPES.includes(f.type) && f.size <= autoDownloadLimit()) download(m);
}

function renderMessages(id) {
  const list = $("#messages");
  if (!list) return;
  const msgs = state.messages.get(id) ?? [];
  const items = [];
  let day = "";
  for (const m of msgs) {
    const d = new Date(m.time).toDateString();
    if (d !== day) {
      day = d;
      items.push(h("li", { class: "day" }, formatDay(m.time)));
    }
    items.push(messageItem(m));
  }
  const ups = [...(uploads.get(id)?.values() ?? [])];
  if (msgs.length === 0 && ups.length === 0) items.push(h("li", { class: "day" }, "No messages yet."));
  for (const u of ups) items.push(uploadItem(u));
  mount(list, items);
}

const STATUS_RANK = { pending: 0, sent: 1, delivered: 2, failed: 3 };

function addMessage(m) {
  const msgs = state.messages.get(m.contact);
  if (!msgs) return;
  const i = msgs.findIndex((x) => x.seq === m.seq);
  if (i >= 0) {
    // A late answer must not move a status backwards.
    if ((STATUS_RANK[msgs[i].status] ?? -1) > (STATUS_RANK[m.status] ?? -1)) m = { ...m, status: msgs[i].status, reason: msgs[i].reason };
    msgs[i] = m;
  } else msgs.push(m);
  msgs.sort((a, b) => a.seq - b.seq);
  if (state.current !== m.contact) return;
  const list = $("#messages");
  if (!list) return; // the pane shows the contact's details or a group's members
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  renderMessages(m.contact);
  if (atBottom || !m.incoming) list.scrollTop = list.scrollHeight;
}

async function retry(m) {
  try {
    const n = await state.core.call("messages.send", { contact: m.contact, text: m.text });
    addMessage(n);
  } catch (err) {
    toast(`Not sent: ${err.message}`);
  }
}

function markRead(id) {
  state.core.call("contact.read", { id }).catch(() => {});
  const c = state.contacts.get(id);
  if (c) { c.unread = 0; renderContacts(); }
}

async function showDetails(id) {
  const c = state.contacts.get(id);
  const name = h("input", { id: "rename", value: c.name, maxlength: 64 });
  let code = "Available once connected.";
  try { code = (await state.core.call("contact.code", { id })).code; } catch { /* not connected yet */ }
  mount($("#pane"), h("div", { class: "details" },
    h("button", { type: "button", class: "back", onclick: () => openConversation(id) }, "‹ Conversation"),
    h("h2", {}, c.name),
    c.peer_name && c.peer_name !== c.name ? h("p", { class: "meta" }, `Calls themselves ${c.peer_name}`) : null,
    c.incognito ? h("p", { class: "meta" }, `You appear to them as ${c.incognito}`) : null,
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      try {
        await state.core.call("contact.rename", { id, name: name.value });
        toast("Renamed");
      } catch (err) { toast(err.message); }
    } }, field("Name (only you see it)", name), h("button", { type: "submit" }, "Rename")),
    h("section", { "aria-labelledby": "code-title" },
      h("h3", { id: "code-title" }, "Security code"),
      h("p", { class: "hint" }, "Compare this code with your contact in person or on a call. If it is the same on both screens, nobody is in the middle."),
      h("p", { id: "security-code", class: "code" }, code)),
    h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete ${c.name} and all messages? They will be told.`)) return;
      try {
        await state.core.call("contact.delete", { id });
        state.contacts.delete(id);
        state.messages.delete(id);
        showEmptyPane();
        toast("Contact deleted");
      } catch (err) { toast(err.message); }
    } }, "Delete contact")));
}

// ---------- settings ----------

async function showSettings() {
  state.current = null;
  renderContacts();
  document.documentElement.dataset.view = "pane";
  const info = await state.core.call("profile.info");
  const relayInput = h("input", { id: "relay-add", autocomplete: "off", spellcheck: "false", placeholder: "wisp://…@host:port" });
  const est = await navigator.storage?.estimate?.().catch(() => null);
  const persisted = await navigator.storage?.persisted?.().catch(() => false);
  const mem = await state.core.call("memory").catch(() => null);
  const saveRelays = async (relays, receive) => {
    try {
      state.profile = await state.core.call("relays.set", { relays, receive });
      showSettings();
    } catch (err) { setError("relay-error", err.code === "relay_local" ? relayMessage(err) : err.message); }
  };
  mount($("#pane"), h("div", { class: "settings" },
    backButton(),
    h("h2", {}, "Settings"),
    h("section", { "aria-labelledby": "relays-title" },
      h("h3", { id: "relays-title" }, "Relays"),
      h("p", { class: "hint" }, "You receive messages on these relays. New connections use the one you choose; your contacts send to it."),
      h("ul", { class: "relays" }, (info.relays ?? []).map((r) => h("li", {},
        h("label", { class: "choice" },
          h("input", { type: "radio", name: "receive", checked: r === info.receive, onchange: () => saveRelays(info.relays, r) }),
          h("code", {}, r)),
        h("button", { type: "button", class: "link", "aria-label": `Remove ${r}`, onclick: () => {
          const rest = info.relays.filter((x) => x !== r);
          saveRelays(rest, rest.includes(info.receive) ? info.receive : (rest[0] ?? ""));
        } }, "Remove")))),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        setError("relay-error", "");
        const addr = relayInput.value.trim();
        try {
          await state.core.call("relay.check", { id: addr });
        } catch (err) { setError("relay-error", relayMessage(err)); return; }
        const relays = [...(info.relays ?? []), addr];
        saveRelays(relays, info.receive || addr);
      } }, field("Add a relay", relayInput), errorLine("relay-error"), h("button", { type: "submit" }, "Add relay"))),
    h("section", { "aria-labelledby": "storage-title" },
      h("h3", { id: "storage-title" }, "Storage"),
      h("p", { id: "storage-status" }, persisted ? "Persistent: the browser will not delete Wisp's data on its own." :
        "Not persistent: the browser may delete Wisp's data when space runs low. Keep a backup."),
      est ? h("p", { class: "meta" }, `Using about ${(est.usage / 1048576).toFixed(1)} MiB of ${(est.quota / 1048576).toFixed(0)} MiB available.`) : null,
      mem ? h("p", { id: "core-memory", class: "meta", "data-heap": mem.heapInuse, "data-sys": mem.sys },
        `Memory: ${formatSize(mem.heapInuse)} in use by Wisp's core, at most ${formatSize(mem.sys)} since this tab opened.`) : null),
    h("section", { "aria-labelledby": "files-title" },
      h("h3", { id: "files-title" }, "Files"),
      h("form", { onsubmit: (e) => {
        e.preventDefault();
        const v = Number($("#auto-download").value);
        if (!Number.isFinite(v) || v < 0 || v > 1024) { toast("Enter a size from 0 to 1024 MiB."); return; }
        localStorage.setItem(AUTO_KEY, String(v));
        toast("Saved");
      } }, field("Download pictures automatically up to (MiB)",
        h("input", { id: "auto-download", type: "number", min: 0, max: 1024, step: 1, value: String(autoDownloadLimit() / (1 << 20)) }),
        "Other files wait for you to press Download. 0 turns automatic downloads off."),
      h("button", { type: "submit", class: "secondary" }, "Save setting"))),
    h("section", { "aria-labelledby": "backup-title" },
      h("h3", { id: "backup-title" }, "Backup"),
      h("p", { class: "hint" }, "An encrypted file with your profile, contacts and messages, to restore Wisp in another browser. Import it there, then stop using this one: two browsers cannot receive on the same connections."),
      exportForm()),
    h("section", { "aria-labelledby": "profile-title" },
      h("h3", { id: "profile-title" }, "Profile"),
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: async () => {
          await state.core.call("profile.lock");
          state.releaseLock?.();
          state.profile = null;
          state.profiles = (await state.core.call("profiles.list")) ?? [];
          showUnlock();
        } }, "Lock"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm("Delete this profile, its contacts and messages from this browser? This cannot be undone.")) return;
          await state.core.call("profile.delete", { id: info.id });
          state.releaseLock?.();
          state.profile = null;
          state.profiles = (await state.core.call("profiles.list")) ?? [];
          setCanary();
          route();
        } }, "Delete profile"))),
    h("p", { class: "meta" }, `Wisp core ${state.version?.version ?? ""}`)));
}

function exportForm() {
  const pass = h("input", { id: "export-pass", type: "password", autocomplete: "new-password" });
  const btn = h("button", { type: "submit" }, "Export backup");
  return h("form", { onsubmit: async (e) => {
    e.preventDefault();
    setError("export-error", "");
    busy(btn, true, "Exporting…");
    try {
      const { data } = await state.core.call("backup.export", { passphrase: pass.value });
      const a = h("a", { href: blobURL(data, "application/octet-stream"), download: `wisp-backup-${new Date().toISOString().slice(0, 10)}.wisp` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      pass.value = "";
      toast("Backup saved");
    } catch (err) {
      setError("export-error", err.message);
    } finally {
      busy(btn, false, "Export backup");
    }
  } }, field("Backup passphrase", pass, "At least 8 characters; needed to import the backup. It can be your passphrase."),
  errorLine("export-error"), btn);
}

// ---------- events from the core ----------

function onCoreEvent(name, e) {
  if (name === "transfer") { onTransfer(e); return; }
  if (name !== "chat" || !state.profile) return;
  switch (e.kind) {
    case "contact": {
      const c = e.contact;
      const prev = state.contacts.get(c.id);
      state.contacts.set(c.id, c);
      renderContacts();
      const inv = $("#invite-status");
      if (inv && inv.dataset.contact === c.id) {
        if (c.state === "connecting") inv.textContent = `${c.name} is connecting…`;
        if (c.state === "connected") openConversation(c.id);
      }
      if (state.current === c.id) {
        const s = $("#conv-state");
        if (s) s.textContent = stateText(c);
        const t = $("#conv-title");
        if (t) t.textContent = c.name;
      }
      if (c.group) {
        onGroupEntry(prev, c);
        onMembersChanged(c.id);
      }
      break;
    }
    case "members":
      onMembersChanged(e.text);
      break;
    case "message": {
      if (e.contact) state.contacts.set(e.contact.id, e.contact);
      addMessage(e.message);
      maybeAutoDownload(e.message);
      if (e.message.incoming && state.current === e.message.contact && document.visibilityState === "visible") markRead(e.message.contact);
      renderContacts();
      break;
    }
    case "status":
      addMessage(e.message);
      break;
    case "relay": {
      if (e.up) state.relaysDown.delete(e.relay); else state.relaysDown.add(e.relay);
      const net = $("#net");
      if (net) net.hidden = state.relaysDown.size === 0;
      break;
    }
    case "problem":
      console.warn("Wisp:", e.text);
      break;
  }
}

initGroups({ state, openConversation, showEmptyPane, renderContacts, backButton });
initMembers({ state, openConversation, renderContacts });
boot();
