// address.js — the contact address: a long-lived link anyone can use to
// ask to connect (wasm/agent SPEC.md, "Contact address").
//
//   the owner   "Contact address": Create address, its QR code and link,
//               Copy link, turn it off or on, make a new one, delete it;
//               the requests waiting ("Bob wants to connect": Accept, Reject)
//   a requester "Connect to this address?" for an address link opened in
//               this tab or pasted in "I have a link"; then "Request sent"
//               until the owner accepts
//
// Events from the core: "request" (a request arrived) and
// "request_dropped" (the oldest was dropped: at most 50 wait).
import { h, $, mount, toast, avatarOf, formatTime } from "./dom.js";
import { field, errorLine, setError, showError, busy } from "./form.js";
import { say } from "./errors.js";
import { state, keepInvite } from "./state.js";
import { nav } from "./nav.js";
import { confirmDialog } from "./confirm.js";

/** Whether a link is a contact address rather than a one-time invitation. */
export const isAddressLink = (link) => typeof link === "string" && link.includes("#/address/");

/** What a refused address means, where the general sentence would mislead. */
const ADDRESS_OVERRIDES = {
  relay_local: "This address uses a relay on a private network or on someone's own computer, which Wisp does not connect to from a page on the internet. Ask its owner for an address made with a relay on the internet.",
  relay_full: "The relay of this address is not taking more requests just now (its owner has not been online for a while). Try again later.",
};

const INCOGNITO_HINT = " Incognito (they see a random name, not yours)";

/** The requests waiting, as last read from the core. */
let requests = [];
/** Notes about requests dropped while the screen was not open. */
let droppedNote = "";

function openPane() {
  state.current = null;
  nav.renderContacts();
  document.documentElement.dataset.view = "pane";
  return $("#pane");
}

/** The sidebar's "Contact address" button. */
export function addressButton() {
  return h("button", { type: "button", class: "secondary", onclick: () => showAddress() }, "Contact address");
}

/** The sidebar's line telling who wants to connect; filled by refreshRequests. */
export function requestsLine() {
  queueMicrotask(refreshRequests);
  return h("p", { id: "requests-waiting", class: "requests-waiting", role: "status", hidden: true });
}

function renderRequestsLine() {
  const line = $("#requests-waiting");
  if (!line) return;
  if (requests.length === 0) { line.hidden = true; line.replaceChildren(); return; }
  const text = requests.length === 1 ? `${requests[0].name} wants to connect` : `${requests.length} people want to connect`;
  line.replaceChildren(h("button", { type: "button", class: "link", onclick: () => showAddress() }, text));
  line.hidden = false;
}

/** Reads the waiting requests again and shows them where they appear. */
export async function refreshRequests() {
  try {
    requests = (await state.core.call("address.requests")) ?? [];
  } catch {
    return; // locked meanwhile
  }
  renderRequestsLine();
  renderRequests();
}

/** The core's "request" and "request_dropped" events. */
export async function onRequestEvent(e) {
  if (e.kind === "request_dropped") {
    droppedNote = `${e.text}'s request was dropped: at most 50 requests wait for an answer, and newer ones arrived.`;
    const note = $("#requests-dropped");
    if (note) { note.textContent = droppedNote; note.hidden = false; } else toast(droppedNote);
  }
  await refreshRequests();
  if (e.kind === "request" && !$("#address")) {
    const r = requests.find((x) => x.id === e.text);
    if (r) toast(`${r.name} wants to connect.`);
  }
}

// ---------- the owner's screen ----------

/** "Contact address": the address (or Create address) and the requests. */
export async function showAddress() {
  const pane = openPane();
  mount(pane, h("div", { class: "connect", id: "address" },
    nav.backButton(),
    h("h2", {}, "Contact address"),
    h("p", { class: "hint" }, "Anyone with your contact address can ask to connect with you, as often as they like; you decide about each request. Share it where you like. Contacts you accept do not depend on it: you can turn it off, replace or delete it at any time."),
    h("section", { id: "requests-section", "aria-labelledby": "requests-title", class: "requests", hidden: true },
      h("h3", { id: "requests-title" }, "Requests"),
      h("p", { id: "requests-dropped", class: "meta", role: "status", hidden: !droppedNote }, droppedNote),
      h("ul", { id: "requests", class: "request-list" }),
      h("label", { class: "choice" }, h("input", { type: "checkbox", id: "accept-incognito" }), " Accept incognito (they see a random name, not yours)"),
      errorLine("requests-error")),
    h("div", { id: "address-area", class: "invite" }, h("p", { role: "status" }, "Loading your address…"))));
  droppedNote = "";
  let addr = null;
  try {
    addr = await state.core.call("address.show");
  } catch (err) {
    if (err?.code !== "no_address") {
      if ($("#address-area")) mount($("#address-area"), h("p", { class: "form-error", role: "alert" }, say(err, "Showing the address")));
      return;
    }
  }
  if (!$("#address")) return;
  renderAddress(addr);
  await refreshRequests();
}

function renderAddress(addr) {
  const area = $("#address-area");
  if (!area) return;
  if (!addr) {
    const btn = h("button", { type: "button", onclick: async () => {
      setError("address-error", "");
      busy(btn, true, "Creating the address…");
      try {
        renderAddress(await state.core.call("address.create"));
        $("#address-copy")?.focus();
      } catch (err) {
        showError("address-error", err, "Creating the address", { retry: () => btn.click() });
        busy(btn, false, "Create address");
      }
    } }, "Create address");
    mount(area, h("p", {}, "You have no contact address yet."), errorLine("address-error"), btn);
    return;
  }
  const copy = h("button", { type: "button", id: "address-copy", onclick: async () => {
    try { await navigator.clipboard.writeText(addr.link); toast("Address copied"); } catch { $("#address-link").select(); toast("Select the address and copy it"); }
  } }, "Copy link");
  const share = navigator.share ? h("button", { type: "button", class: "secondary", onclick: async () => {
    try { await navigator.share({ title: "My Wisp address", text: "Ask to connect with me on Wisp:", url: addr.link }); } catch { /* dismissed */ }
  } }, "Share") : null;
  const toggle = h("button", { type: "button", class: "secondary", onclick: async () => {
    setError("address-error", "");
    busy(toggle, true, addr.enabled ? "Turning off…" : "Turning on…");
    try {
      renderAddress(await state.core.call("address.set_enabled", { enabled: !addr.enabled }));
      toast(addr.enabled ? "Address turned off" : "Address turned on");
      $("#address-toggle")?.focus();
    } catch (err) {
      showError("address-error", err, "Changing the address");
      busy(toggle, false, addr.enabled ? "Turn off address" : "Turn on address");
    }
  } }, addr.enabled ? "Turn off address" : "Turn on address");
  toggle.id = "address-toggle";
  const replace = h("button", { type: "button", class: "secondary", onclick: async () => {
    if (!await confirmDialog({ title: "Make a new address?", text: "The current link and QR code stop working: people who have them can no longer ask to connect. Your contacts and the requests waiting are kept.", confirm: "Make a new address" })) return;
    setError("address-error", "");
    busy(replace, true, "Making a new address…");
    try {
      renderAddress(await state.core.call("address.replace"));
      toast("New address made: the old link no longer works.");
    } catch (err) {
      showError("address-error", err, "Making a new address");
      busy(replace, false, "New address");
    }
  } }, "New address");
  const del = h("button", { type: "button", class: "danger", onclick: async () => {
    if (!await confirmDialog({ title: "Delete your address?", text: "The link and QR code stop working, and the requests waiting are deleted. Your contacts are kept.", confirm: "Delete" })) return;
    setError("address-error", "");
    busy(del, true, "Deleting…");
    try {
      await state.core.call("address.delete");
      renderAddress(null);
      await refreshRequests();
      toast("Address deleted: the link no longer works.");
    } catch (err) {
      showError("address-error", err, "Deleting the address");
      busy(del, false, "Delete address");
    }
  } }, "Delete address");
  mount(area,
    h("img", { id: "address-qr", class: "qr", src: `data:image/png;base64,${addr.qr}`, width: 256, height: 256, alt: "QR code of your contact address" }),
    field("Your contact address", h("input", { id: "address-link", readonly: true, value: addr.link, onfocus: (e) => e.target.select() })),
    h("div", { class: "row" }, copy, share),
    h("p", { id: "address-status", role: "status" }, addr.enabled
      ? "On: requests appear below, and you decide about each."
      : "Off: requests are dropped without being shown, and nobody is told. The link keeps working when you turn it on again."),
    errorLine("address-error"),
    h("div", { class: "row" }, toggle, replace, del));
}

function renderRequests() {
  const ul = $("#requests");
  if (!ul) return;
  // Shown while requests wait, or to say one was dropped.
  $("#requests-section").hidden = requests.length === 0 && $("#requests-dropped").hidden;
  if (requests.length === 0) {
    mount(ul, h("li", { class: "hint" }, "No requests are waiting."));
    return;
  }
  mount(ul, requests.map((r) => {
    const textId = `request-${r.id}`;
    const accept = h("button", { type: "button", "aria-describedby": textId, onclick: () => answer(r, true, accept) }, "Accept");
    const reject = h("button", { type: "button", class: "secondary", "aria-describedby": textId, onclick: () => answer(r, false, reject) }, "Reject");
    return h("li", { class: "request", "data-request": r.id },
      avatarOf(r, 36),
      h("span", { class: "c-main" },
        h("span", { id: textId, class: "request-text", dir: "auto" }, `${r.name} wants to connect`),
        h("time", { class: "meta", datetime: r.received, title: new Date(r.received).toLocaleString() }, formatTime(r.received))),
      h("span", { class: "row" }, accept, reject));
  }));
}

async function answer(r, accept, btn) {
  setError("requests-error", "");
  busy(btn, true, accept ? "Accepting…" : "Rejecting…");
  try {
    if (accept) {
      const c = await state.core.call("request.accept", { id: r.id, incognito: !!$("#accept-incognito")?.checked });
      state.contacts.set(c.id, c);
      await refreshRequests();
      await nav.openConversation(c.id);
    } else {
      await state.core.call("request.reject", { id: r.id });
      await refreshRequests();
      toast(`Request from ${r.name} rejected. They are not told.`);
    }
  } catch (err) {
    showError("requests-error", err, accept ? "Accepting the request" : "Rejecting the request", { overrides: ADDRESS_OVERRIDES });
    busy(btn, false, accept ? "Accept" : "Reject");
    if (err?.code === "no_request") refreshRequests();
  }
}

// ---------- the requester ----------

/** Sends a request to the address link; opens "Request sent". */
export async function connectAddress(link, incognito) {
  const c = await state.core.call("address.connect", { link, incognito });
  keepInvite(null);
  state.contacts.set(c.id, c);
  nav.renderContacts();
  showRequestSent(c.id);
}

/** "Connect to this address?" for the address link this tab was opened with. */
export function showAddressConnect() {
  const link = state.invite;
  if (!link || !$("#pane")) return;
  const incognito = h("input", { type: "checkbox", id: "address-incognito" });
  const btn = h("button", { type: "button", onclick: async () => {
    setError("address-join-error", "");
    busy(btn, true, "Sending the request…");
    try {
      await connectAddress(link, incognito.checked);
    } catch (err) {
      showError("address-join-error", err, "Asking to connect", { overrides: ADDRESS_OVERRIDES });
      busy(btn, false, "Ask to connect");
    }
  } }, "Ask to connect");
  document.documentElement.dataset.view = "pane";
  mount($("#pane"), h("div", { class: "connect", id: "address-join" },
    h("h2", {}, "Connect to this address?"),
    h("p", {}, "Someone shared their Wisp contact address. Asking to connect sends them your display name; they decide whether to accept."),
    h("label", { class: "choice" }, incognito, INCOGNITO_HINT),
    errorLine("address-join-error"),
    h("div", { class: "row" }, btn, h("button", { type: "button", class: "secondary", onclick: () => { keepInvite(null); nav.showEmptyPane(); } }, "Cancel"))));
  state.core.call("address.check", { link }).catch((err) => {
    showError("address-join-error", err, "Checking the address", { overrides: ADDRESS_OVERRIDES });
    btn.disabled = true;
  });
  btn.focus();
}

/** A request we sent, waiting for the owner: "Request sent", Cancel request. */
export function showRequestSent(id) {
  const pane = openPane();
  state.current = id;
  nav.renderContacts();
  const c = state.contacts.get(id);
  const cancel = h("button", { type: "button", class: "secondary", onclick: async () => {
    busy(cancel, true, "Cancelling…");
    try {
      await state.core.call("contact.delete", { id });
      state.contacts.delete(id);
      nav.showEmptyPane();
      toast("Request cancelled.");
    } catch (err) {
      toast(say(err, "Cancelling the request"));
      busy(cancel, false, "Cancel request");
    }
  } }, "Cancel request");
  mount(pane, h("div", { class: "connect", id: "request-sent", "data-contact": id },
    nav.backButton(),
    h("h2", {}, "Request sent"),
    h("p", { role: "status" }, "Waiting for them to accept. When they do, your chat opens here. If they decline, nobody tells you: cancel the request whenever you like."),
    c?.incognito ? h("p", { class: "meta" }, `They see you as ${c.incognito}.`) : null,
    c?.created ? h("p", { class: "meta" }, `Sent ${new Date(c.created).toLocaleString()}`) : null,
    cancel));
}

/** Follows a request we sent as its owner answers. */
export function onRequestContact(prev, c) {
  if (!prev || prev.state !== "invited" || c.state === "invited") return;
  const here = $("#request-sent")?.dataset.contact === c.id;
  toast(`${c.name} accepted your request.`);
  if (here) nav.openConversation(c.id);
}
