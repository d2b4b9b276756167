// connect.js — making connections: "Create one-time link" (named, shown
// again, shared, cancelled), "I have a link" (paste it, or pick a picture
// of its QR code, decoded in the core), and "Connect to this invitation?"
// for a link opened in this tab. Joining never creates an invitation.
import { h, $, mount, toast } from "./dom.js";
import { readQR } from "./qr.js";
import { field, errorLine, setError, showError, busy } from "./form.js";
import { say } from "./errors.js";
import { state, keepInvite } from "./state.js";
import { nav } from "./nav.js";

function openPane() {
  state.current = null;
  nav.renderContacts();
  document.documentElement.dataset.view = "pane";
  return $("#pane");
}

/** What a link's relay on a private network means when joining. */
const LINK_OVERRIDES = {
  relay_local: "This invitation uses a relay on a private network or on someone's own computer, which Wisp does not connect to from a page on the internet. Ask your contact for a new link made with a relay on the internet.",
};

const INCOGNITO_HINT = " Incognito (they see a random name, not yours)";

/** "Create one-time link": who it is for, then the link. */
export function showCreateLink() {
  const pane = openPane();
  const name = h("input", { id: "invite-name", maxlength: 64, autocomplete: "off", placeholder: "e.g. Alice" });
  const incognito = h("input", { type: "checkbox", id: "incognito" });
  const btn = h("button", { type: "submit" }, "Create link");
  const create = async () => {
    setError("create-link-error", "");
    busy(btn, true, "Creating the link…");
    try {
      const inv = await state.core.call("invite.create", { incognito: incognito.checked, name: name.value.trim() });
      const c = await state.core.call("contact.get", { id: inv.contact }).catch(() => null);
      if (c) state.contacts.set(c.id, c);
      nav.renderContacts();
      showInvitation(inv.contact, inv);
    } catch (err) {
      showError("create-link-error", err, "Creating the link", { retry: create });
      busy(btn, false, "Create link");
    }
  };
  mount(pane, h("div", { class: "connect" },
    nav.backButton(),
    h("h2", {}, "Create one-time link"),
    h("p", { class: "hint" }, "Give the link or its QR code to one person, in person or over a channel you trust. It works once."),
    h("form", { onsubmit: (e) => { e.preventDefault(); create(); } },
      field("Who is it for? (only you see this)", name, "So you know which link was used when someone connects."),
      h("label", { class: "choice" }, incognito, INCOGNITO_HINT),
      errorLine("create-link-error"), btn)));
  name.focus();
}

/** A pending invitation: its link and QR again, Copy, Share, Cancel. */
export async function showInvitation(id, inv = null) {
  const pane = openPane();
  state.current = id;
  nav.renderContacts();
  const c = state.contacts.get(id);
  mount(pane, h("div", { class: "connect", id: "invitation", "data-contact": id },
    nav.backButton(),
    h("h2", {}, c?.invite_name ? `One-time link for ${c.invite_name}` : "One-time link"),
    h("div", { id: "invite-area", class: "invite" }, h("p", { role: "status" }, "Loading the link…"))));
  try {
    inv ??= await state.core.call("invite.show", { id });
  } catch (err) {
    mount($("#invite-area"), h("p", { class: "form-error", role: "alert" }, say(err, "Showing the link")));
    return;
  }
  if (state.current !== id || !$("#invitation")) return;
  const copy = h("button", { type: "button", onclick: async () => {
    try { await navigator.clipboard.writeText(inv.link); toast("Link copied"); } catch { $("#invite-link").select(); toast("Select the link and copy it"); }
  } }, "Copy link");
  const share = navigator.share ? h("button", { type: "button", class: "secondary", onclick: async () => {
    try { await navigator.share({ title: "Wisp invitation", text: "Connect with me on Wisp (this link works once):", url: inv.link }); } catch { /* dismissed */ }
  } }, "Share") : null;
  mount($("#invite-area"),
    h("img", { id: "invite-qr", class: "qr", src: `data:image/png;base64,${inv.qr}`, width: 256, height: 256, alt: "QR code of the invitation link" }),
    field("One-time link", h("input", { id: "invite-link", readonly: true, value: inv.link, onfocus: (e) => e.target.select() })),
    h("div", { class: "row" }, copy, share),
    h("p", { id: "invite-status", role: "status", "data-contact": id }, "Waiting for someone to use it…"),
    h("button", { type: "button", class: "secondary", onclick: async (e) => {
      busy(e.target, true, "Cancelling…");
      try {
        await state.core.call("contact.delete", { id });
        state.contacts.delete(id);
        nav.showEmptyPane();
        toast("Invitation cancelled: the link no longer works.");
      } catch (err) {
        toast(say(err, "Cancelling the invitation"));
        busy(e.target, false, "Cancel invitation");
      }
    } }, "Cancel invitation"));
}

/** Follows a pending invitation as someone uses it. */
export function onInviteContact(prev, c) {
  if (c.group || !prev || prev.state === c.state || !["invited", "connecting"].includes(prev.state) || c.state === "invited") return;
  const who = c.invite_name ? `the invitation for ${c.invite_name}` : "your one-time link";
  const inv = $("#invite-status");
  const here = inv && inv.dataset.contact === c.id;
  if (c.state === "connecting") {
    if (here) inv.textContent = `${c.name} is connecting with ${who}…`;
    else toast(`${c.name} is connecting with ${who}.`);
  }
  if (c.state === "connected") {
    toast(`${c.name} connected with ${who}.`);
    if (here) nav.openConversation(c.id);
  }
}

/** "I have a link": paste it, or pick a picture of its QR code. */
export function showHaveLink() {
  const pane = openPane();
  const incognito = h("input", { type: "checkbox", id: "incognito" });
  const linkField = h("input", { id: "paste-link", autocomplete: "off", spellcheck: "false", placeholder: "https://…/#/invite/…" });
  const connect = h("button", { type: "submit" }, "Connect");
  const qr = h("input", { id: "qr-file", type: "file", accept: "image/*", onchange: async () => {
    const f = qr.files[0];
    qr.value = "";
    if (!f) return;
    setError("paste-error", "");
    $("#qr-status").textContent = "Reading the QR code…";
    try {
      const link = await readQR(f);
      linkField.value = link;
      $("#qr-status").textContent = "Found a link in the picture. Check it, then press Connect.";
      connect.focus();
    } catch (err) {
      $("#qr-status").textContent = "";
      showError("paste-error", err, "Reading the QR code", { overrides: { too_long: "That picture is too large to read. Crop it around the QR code and try again.", invalid: "That file is not a picture Wisp can read. Use a PNG, JPEG or GIF picture of the QR code." } });
    }
  } });
  mount(pane, h("div", { class: "connect" },
    nav.backButton(),
    h("h2", {}, "I have a link"),
    h("p", { class: "hint" }, "Use a one-time link someone gave you. Connecting shares your display name with them, and nothing else."),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("paste-error", "");
      if (!linkField.value.trim()) { setError("paste-error", "Paste the link first, or choose a picture of its QR code."); return; }
      busy(connect, true, "Connecting…");
      try {
        await join(linkField.value.trim(), incognito.checked);
      } catch (err) {
        showError("paste-error", err, "Connecting", { overrides: LINK_OVERRIDES });
        busy(connect, false, "Connect");
      }
    } }, field("Invitation link", linkField),
    field("Or choose a picture of the QR code", qr, "A screenshot or a photo. It is read in this browser and goes nowhere."),
    h("p", { id: "qr-status", class: "meta", role: "status" }),
    h("label", { class: "choice" }, incognito, INCOGNITO_HINT),
    errorLine("paste-error"), connect)));
  linkField.focus();
}

async function join(link, incognito) {
  if (nav.isAddressLink(link)) return nav.connectAddress(link, incognito); // a contact address (address.js)
  const c = await state.core.call("join", { link, incognito });
  keepInvite(null);
  state.contacts.set(c.id, c);
  nav.renderContacts();
  await nav.openConversation(c.id);
}

/** "Connect to this invitation?" for the link this tab was opened with. */
export function showJoin() {
  const link = state.invite;
  if (!link || !$("#pane")) return;
  const incognito = h("input", { type: "checkbox", id: "join-incognito" });
  const btn = h("button", { type: "button", onclick: async () => {
    setError("join-error", "");
    busy(btn, true, "Connecting…");
    try {
      await join(link, incognito.checked);
    } catch (err) {
      showError("join-error", err, "Connecting", { overrides: LINK_OVERRIDES });
      busy(btn, false, "Connect");
    }
  } }, "Connect");
  document.documentElement.dataset.view = "pane";
  mount($("#pane"), h("div", { class: "connect", id: "join" },
    h("h2", {}, "Connect to this invitation?"),
    h("p", {}, "Someone sent you a one-time Wisp link. Connecting shares your display name with them, and nothing else."),
    h("label", { class: "choice" }, incognito, INCOGNITO_HINT),
    errorLine("join-error"),
    h("div", { class: "row" }, btn, h("button", { type: "button", class: "secondary", onclick: () => { keepInvite(null); nav.showEmptyPane(); } }, "Cancel"))));
  state.core.call("link.check", { link }).catch((err) => {
    showError("join-error", err, "Checking the link", { overrides: LINK_OVERRIDES });
    btn.disabled = true;
  });
  btn.focus();
}
