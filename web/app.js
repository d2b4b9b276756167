// app.js — the Wisp page: takes the core worker boot.js started, routes
// between the screens and hands the core's events to them. The core (Go, in
// worker.js) owns all state; the screens only show it. Each screen is its
// own module:
//
//   boot.js         starts the core worker and fetches config.json before the rest has loaded
//   onboarding.js   welcome, create a profile, import a backup, unlock, wiped storage
//   chats.js        the layout and the chat list
//   connect.js      one-time links, "I have a link", pending invitations, joining
//   address.js      the contact address, its requests, and asking to connect through one
//   conversation.js a conversation: history, composer, drafts, message actions
//   transfers.js    files in a conversation: preview, upload, download, progress
//   settings.js     profile, relays, notifications, storage, backup, about
//   notify.js       notifications, the unread count in the title and the app badge
//   groups.js, members.js  what a group adds
import { CoreError } from "./rpc.js";
import { started } from "./boot.js";
import { h, $, mount, screen, toast } from "./dom.js";
import { registerServiceWorker } from "./sw-register.js";
import { say } from "./errors.js";
import { errorLine, setError, showError, busy } from "./form.js";
import { state, keepInvite, restoreInvite, lastOpen, canary, setCanary } from "./state.js";
import { nav } from "./nav.js";
import { initGroups, onGroupEntry } from "./groups.js";
import { initMembers, onMembersChanged } from "./members.js";
import { showOnboarding, showUnlock, showWiped } from "./onboarding.js";
import { showMain, loadContacts, renderContacts, showEmptyPane, backButton } from "./chats.js";
import { showJoin, onInviteContact, showCreateLink, showHaveLink, showInvitation } from "./connect.js";
import { isAddressLink, showAddressConnect, showAddress, showRequestSent, connectAddress, onRequestEvent, onRequestContact } from "./address.js";
import { openConversation, addMessage, markRead, onContactChanged, rerender, showSearch, showDetails, showDelay } from "./conversation.js";
import { showSettings } from "./settings.js";
import { onTransfer, maybeAutoDownload } from "./transfers.js";
import { onIncoming, updateUnreadTotal } from "./notify.js";

const STARTUP_TIMEOUT_MS = 60_000;

const main = () => $("#main");

// ---------- start-up ----------

export function show(id) {
  for (const s of document.querySelectorAll("main > .screen")) s.hidden = s.id !== id;
}

export function fatal(message) {
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
  restoreInvite();
  let core, relays;
  try {
    ({ core, relays } = started());
  } catch (err) {
    fatal(`This browser could not start a Web Worker (${err.message}).`);
    return;
  }
  state.core = core;
  core.addEventListener("fatal", (e) => fatal(`The Wisp core stopped: ${e.detail.message}.`));
  core.addEventListener("core-event", (e) => onCoreEvent(e.detail.name, e.detail.data));
  if (core.stopped) { // before this module had loaded (boot.js starts the core first)
    fatal(`The Wisp core stopped: ${core.stopped}.`);
    return;
  }
  $("#status").textContent = "Starting the encrypted core…";
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("the core did not answer within a minute")), STARTUP_TIMEOUT_MS));
  try {
    const info = await Promise.race([core.call("version"), timeout]);
    state.version = info;
    $("#core-version").textContent = `${info.version} (${info.go}${info.revision ? ", " + info.revision.slice(0, 12) : ""})`;
    $("#status").textContent = "Opening your storage…";
    const res = await core.call("init", { origin: location.origin, relays: await relays });
    state.profiles = res.profiles ?? [];
    $("#status").textContent = "ready";
    document.documentElement.dataset.state = "ready";
    performance.mark("wisp-ready");
    registerServiceWorker(); // after the core, so installing reads core.wasm from the HTTP cache
  } catch (err) {
    if (!(err instanceof CoreError && err.code === "core_stopped")) fatal(`The Wisp core did not start: ${err instanceof CoreError ? say(err, "Starting") : err.message + "."}`);
    return;
  }
  window.addEventListener("hashchange", () => { if (takeInviteFromURL() && state.profile) showLink(); });
  window.addEventListener("online", () => state.core.call("network.reconnect").catch(() => {}));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") state.core.call("network.reconnect").catch(() => {});
  });
  await route();
}

/** Moves an invitation from the URL into memory, so it does not linger in the address bar. */
function takeInviteFromURL() {
  if (!location.hash.startsWith("#/invite/") && !location.hash.startsWith("#/address/")) return false;
  keepInvite(location.href);
  history.replaceState(null, "", location.pathname);
  return true;
}

/** The link this tab opened: a one-time invitation, or a contact address (address.js). */
function showLink() {
  return isAddressLink(state.invite) ? showAddressConnect() : showJoin();
}

export async function route() {
  const c = canary();
  if (state.profiles.length === 0 && c?.profiles?.length > 0) return showWiped();
  if (state.profiles.length === 0) return showOnboarding();
  setCanary();
  const open = state.profiles.filter((p) => !p.passphrase);
  if (state.profiles.length === 1 && open.length === 1) return unlock(open[0].id, "");
  return showUnlock();
}

// ---------- screens ----------

export async function unlock(id, passphrase) {
  performance.mark("wisp-unlock"); // with "wisp-chats", for BenchmarkLargeProfile
  const got = await takeLock(id);
  if (!got) return showOtherTab(id, passphrase);
  try {
    state.profile = await state.core.call("profile.unlock", { id, passphrase });
  } catch (err) {
    state.releaseLock?.();
    throw err;
  }
  await enterProfile();
}

/** Shows the unlocked profile: the invitation this tab opened, else the
 * conversation that was open before a reload, else the chat list. */
async function enterProfile() {
  state.limits = await state.core.call("limits").catch(() => state.limits);
  await loadContacts();
  showMain();
  performance.mark("wisp-chats");
  updateUnreadTotal();
  if (state.invite) return showLink();
  const open = lastOpen();
  if (open && state.contacts.has(open)) await openConversation(open);
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
      await enterProfile();
    } catch (err) {
      state.releaseLock?.();
      showError("elsewhere-error", err, "Moving Wisp here", { overrides: { wrong_passphrase: "Wrong passphrase. Wisp stays in the other tab." } });
      busy(btn, false, "Use here");
    }
  } }, "Use here");
  screen("elsewhere", "Wisp is open in another tab",
    h("p", {}, "A profile can be used in one tab at a time, so that two tabs never send with the same keys."),
    errorLine("elsewhere-error"), btn);
  btn.focus();
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
      updateUnreadTotal();
      if (c.requested) onRequestContact(prev, c); // a request we sent to a contact address
      else onInviteContact(prev, c);
      onContactChanged(prev, c);
      if (c.group) {
        onGroupEntry(prev, c);
        onMembersChanged(c.id);
      }
      break;
    }
    case "request":
    case "request_dropped":
      onRequestEvent(e);
      break;
    case "members":
      onMembersChanged(e.text);
      break;
    case "message": {
      if (e.contact) state.contacts.set(e.contact.id, e.contact);
      const m = e.message;
      addMessage(m, true);
      maybeAutoDownload(m);
      const seen = m.incoming && state.current === m.contact && document.visibilityState === "visible" && document.hasFocus();
      if (seen) markRead(m.contact);
      else if (m.incoming && !m.notice) onIncoming(m, state.contacts.get(m.contact));
      renderContacts();
      updateUnreadTotal();
      break;
    }
    case "status":
    case "update":
      addMessage(e.message);
      break;
    case "relay": {
      if (e.up) state.relaysDown.delete(e.relay); else state.relaysDown.add(e.relay);
      const net = $("#net");
      if (net) net.hidden = state.relaysDown.size === 0;
      break;
    }
    case "rotation":
      // A contact's receiving queue moved (or a move started or was
      // given up): refresh what shows it.
      if (e.up && state.contacts.has(e.id)) toast(e.text ? `${state.contacts.get(e.id).name}: the relay change did not finish; the old relay is still used.` : `${state.contacts.get(e.id).name}: receiving relay changed`);
      if ($("#receiving-now") && state.current === e.id) showDetails(e.id, { refresh: true });
      if ($("#relay-list")) showSettings();
      break;
    case "encryption":
      // A contact's encryption is re-synchronising (or done): the notice
      // is in the conversation; refresh the details if they are open.
      if ($("#encryption-now") && state.current === e.id) showDetails(e.id, { refresh: true });
      break;
    case "delivery":
      // Messages to a contact wait (a relay or a private route fails),
      // or go out again (empty text).
      showDelay(e.id, e.text);
      break;
    case "problem":
      console.warn("Wisp:", e.text);
      break;
  }
}

Object.assign(nav, { showAddress, showRequestSent, connectAddress, isAddressLink });
Object.assign(nav, { unlock, route, showMain, showUnlock, showEmptyPane, renderContacts, backButton, openConversation,
  addMessage, rerender, showSettings, showSearch, showCreateLink, showHaveLink, showInvitation });
initGroups({ state, openConversation, showEmptyPane, renderContacts, backButton });
initMembers({ state, openConversation, renderContacts });
boot();
