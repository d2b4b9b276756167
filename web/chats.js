// chats.js — the layout of an open profile and its chat list: contacts,
// groups and pending invitations, newest first, with unread counts and
// drafts; and the search across conversations.
import { h, $, mount, formatTime, avatarOf } from "./dom.js";
import { state, rememberOpen } from "./state.js";
import { nav } from "./nav.js";
import { groupListLabel, showNewGroup } from "./groups.js";
import { addressButton, requestsLine } from "./address.js";

export async function loadContacts() {
  const list = (await state.core.call("contacts.list")) ?? [];
  state.contacts = new Map(list.map((c) => [c.id, c]));
  // Why messages wait, per contact, as the core says now (then "delivery" events).
  state.delays = new Map(list.filter((c) => c.delay).map((c) => [c.id, c.delay]));
}

export function showMain() {
  const p = state.profile;
  const query = h("input", { id: "search-all", type: "search", autocomplete: "off", placeholder: "Search all chats" });
  mount($("#main"), h("div", { id: "app", class: "layout" },
    h("aside", { class: "sidebar", "aria-label": "Chats" },
      h("div", { class: "me" },
        avatarOf(p, 32),
        h("span", { class: "me-name" }, p.name),
        h("button", { type: "button", class: "secondary", onclick: nav.showSettings }, "Settings")),
      h("p", { id: "net", class: "net", role: "status", hidden: state.relaysDown.size === 0 }, "Connecting…"),
      requestsLine(),
      h("div", { class: "new-row" },
        h("button", { type: "button", onclick: nav.showCreateLink }, "Create one-time link"),
        h("button", { type: "button", class: "secondary", onclick: nav.showHaveLink }, "I have a link"),
        addressButton(),
        h("button", { type: "button", class: "secondary", onclick: showNewGroup }, "New group")),
      h("form", { role: "search", class: "search-row", onsubmit: (e) => {
        e.preventDefault();
        if (query.value.trim()) nav.showSearch("", query.value.trim());
      } }, h("label", { for: "search-all", class: "visually-hidden" }, "Search all chats"), query,
      h("button", { type: "submit", class: "secondary" }, "Search")),
      h("ul", { id: "contacts", class: "contacts" })),
    h("section", { id: "pane", class: "pane" },
      h("div", { class: "empty" }, h("p", {}, "Choose a chat, or create a one-time link to connect with someone.")))));
  renderContacts();
  document.documentElement.dataset.view = "list";
}

function contactLabel(c) {
  if (c.group) return groupListLabel(c);
  switch (c.state) {
    case "invited": if (c.requested) return "Waiting for them to accept";
      return c.invite_name ? `Invitation for ${c.invite_name} — waiting` : "Invitation — waiting for someone to use it";
    case "connecting": return "Connecting…";
    case "deleted": return "Left the conversation";
    default: return c.last_text ?? "Connected";
  }
}

/** The name a chat is listed by: an unused invitation by whom it is for. */
export function chatName(c) {
  if (c.state === "invited" && c.requested) return "Request sent";
  if (c.state === "invited" && !c.group) return c.invite_name ? `For ${c.invite_name}` : "One-time link";
  return c.name;
}

export function renderContacts() {
  const ul = $("#contacts");
  if (!ul) return;
  const list = [...state.contacts.values()].sort((a, b) =>
    new Date(b.last_time || b.created) - new Date(a.last_time || a.created));
  if (list.length === 0) {
    mount(ul, h("li", { class: "hint" }, "No chats yet. Create a one-time link and give it to someone, or use a link you received."));
    return;
  }
  mount(ul, list.map((c) => {
    const name = chatName(c);
    const draft = c.draft && c.id !== state.current;
    return h("li", {},
      h("button", { type: "button", class: `contact${c.id === state.current ? " current" : ""}`,
        "aria-current": c.id === state.current ? "true" : null,
        onclick: () => (c.state === "invited" && c.requested ? nav.showRequestSent(c.id)
          : c.state === "invited" && !c.group ? nav.showInvitation(c.id) : nav.openConversation(c.id)) },
      c.state === "invited" && !c.group ? h("span", { class: "avatar initial", "aria-hidden": "true" }, "✉") : avatarOf(c, 36),
      h("span", { class: "c-main" },
        h("span", { class: "c-name", dir: "auto" }, name),
        h("span", { class: "c-last", dir: "auto" }, draft ? h("em", {}, "Draft: ") : null, draft ? (typeof c.draft === "string" ? c.draft : "") : contactLabel(c))),
      h("span", { class: "c-side" },
        h("time", { datetime: c.last_time || c.created, title: new Date(c.last_time || c.created).toLocaleString() }, formatTime(c.last_time || c.created)),
        c.group ? h("span", { class: "tag" }, "Group") : null,
        c.unread > 0 ? h("span", { class: "badge" }, String(c.unread), h("span", { class: "visually-hidden" }, " unread")) : null)));
  }));
}

export function showEmptyPane() {
  state.current = null;
  rememberOpen(null);
  document.documentElement.dataset.view = "list";
  mount($("#pane"), h("div", { class: "empty" }, h("p", {}, "Choose a chat, or create a one-time link to connect with someone.")));
  renderContacts();
}

export function backButton() {
  return h("button", { type: "button", class: "back", "aria-label": "Back to chats", onclick: showEmptyPane }, "‹ Chats");
}
