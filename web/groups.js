// groups.js — groups on the page: the "New group" screen, and what a
// group conversation adds to a conversation (authors' names, notices,
// "delivered to k of n", the invitation, joining and ended states).
// The members panel is in members.js. app.js wires these in:
//
//   initGroups({ state, openConversation, showEmptyPane, renderContacts, backButton });
//
// A group is a chat-list entry like a contact, with entry.group set
// ({ profile, state, role, members, incognito, invited_by }).
import { h, $, mount, toast, blobBase64, resizeAvatar } from "./dom.js";
import { field, errorLine, setError, busy } from "./form.js";
import { say } from "./errors.js";

let app = null;

/** Gives this module the parts of app.js it calls back. */
export function initGroups(a) { app = a; }

export const ROLE_NAMES = { owner: "Owner", admin: "Admin", member: "Member", observer: "Observer" };
const RANK = { owner: 4, admin: 3, member: 2, observer: 1 };
export const rank = (role) => RANK[role] ?? 0;

/**
 * The sentence for an error of a group call: what happened and what to
 * do. Never the core's own message. what names the action for the
 * fallback ("Creating the group"); invalid and too_long, whose meaning
 * depends on the action, may be given.
 */
export function groupError(err, what, { invalid, too_long: tooLong } = {}) {
  return say(err, what, {
    no_contact: "That contact is no longer in your list. Pick another one.",
    no_group: "This group is no longer on this device. Choose another chat.",
    no_member: "That person is no longer a member of this group. The list is up to date now; try again.",
    group_closed: "You are no longer a member of this group, so nothing can be sent or changed in it. You can delete the chat.",
    invalid: invalid ?? `${what} did not work: something in it was not accepted. Check it and try again.`,
    too_long: tooLong ?? `${what} did not work: it is too long. Make it shorter and try again.`,
    relay_local: "This invitation uses a relay on a private network, which Wisp does not connect to from a page on the internet. Ask for an invitation made with a relay on the internet.",
    link_corrupted: "The group invitation cannot be used with this version of Wisp. Ask to be invited again.",
    link_version: "The group invitation cannot be used with this version of Wisp. Ask to be invited again.",
    link_relay: "The group invitation cannot be used with this version of Wisp. Ask to be invited again.",
    invitation_used: "This group invitation was already used. Ask to be invited again.",
  });
}

// ---------- the chat list and the conversation header ----------

function membersText(n) {
  return `${n} member${n === 1 ? "" : "s"}`;
}

/** The line under a group's name in the chat list. */
export function groupListLabel(c) {
  const g = c.group;
  switch (g.state) {
    case "invited": return `${g.invited_by || "A contact"} invites you`;
    case "joining": return "Joining…";
    case "removed": return "You were removed";
    case "left": return "You left";
    case "deleted": return "Group deleted";
    default: return c.last_text ?? membersText(g.members);
  }
}

/** The state line of a group's conversation header. */
export function groupStateText(c) {
  const g = c.group;
  switch (g.state) {
    case "invited": return "invitation";
    case "joining": return "joining…";
    case "removed": return "you were removed";
    case "left": return "you left";
    case "deleted": return "deleted";
    default: return g.incognito ? `${membersText(g.members)} · you are ${g.incognito}` : membersText(g.members);
  }
}

// ---------- messages ----------

/** The status of an outgoing group message: delivered to k of n. */
export function groupStatusText(m) {
  if (m.status === "pending") return "Sending…";
  if (m.status === "failed") return "Failed";
  const n = m.recipients ?? 0;
  if (n === 0) return "Sent";
  return `Delivered to ${(m.delivered_to ?? []).length} of ${n}`;
}

/** A change of the group, shown as a centred line. */
export function noticeItem(m) {
  return h("li", { class: "notice", "data-seq": m.seq }, m.text);
}

/** The author's name at the top of an incoming group message. */
export function authorLine(m) {
  return m.incoming && m.author_name ? h("p", { class: "author" }, m.author_name) : null;
}

// ---------- the foot of a group conversation ----------

/** What decides the foot of a group conversation; it is re-rendered when it changes. */
function footKind(c) {
  const g = c?.group;
  if (!g) return "";
  return g.state === "active" ? `active:${g.role === "observer" ? "read" : "write"}` : g.state;
}

/**
 * The part shown instead of the composer, or null when the composer is
 * shown (an active group where we may post).
 */
export function groupFoot(c) {
  const g = c.group;
  switch (g.state) {
    case "invited": return invitationCard(c);
    case "joining":
      return h("div", { class: "group-foot", id: "group-foot", role: "status" },
        h("p", {}, `Joining ${g.profile.name}… The group's history comes from ${g.invited_by || "the member who invited you"}; it arrives when they are online.`));
    case "active":
      if (g.role !== "observer") return null;
      return h("div", { class: "group-foot", id: "group-foot" },
        h("p", {}, "You are an observer in this group: you read its messages but cannot post. An owner or an admin can change your role."));
    default: {
      const text = { removed: "You were removed from this group. You no longer receive its messages.",
        left: "You left this group. You no longer receive its messages.",
        deleted: "This group was deleted by an owner. Nobody receives its messages any more." }[g.state] ?? "This group has ended for you.";
      return h("div", { class: "group-foot ended", id: "group-foot" },
        h("p", { id: "group-ended", role: "status" }, text),
        errorLine("group-foot-error"),
        h("button", { type: "button", class: "secondary", onclick: (e) => deleteChat(c, e.currentTarget) }, "Delete chat"));
    }
  }
}

function invitationCard(c) {
  const g = c.group;
  const incognito = h("input", { type: "checkbox", id: "group-join-incognito" });
  const join = h("button", { type: "button", onclick: async () => {
    setError("group-foot-error", "");
    busy(join, true, "Joining…");
    decline.disabled = true;
    try {
      await app.state.core.call("group.join", { id: c.id, incognito: incognito.checked });
      const entry = await app.state.core.call("contact.get", { id: c.id });
      app.state.contacts.set(c.id, entry);
      app.renderContacts();
      if (app.state.current === c.id) await app.openConversation(c.id);
    } catch (err) {
      setError("group-foot-error", groupError(err, "Joining the group", {
        invalid: "This invitation can no longer be answered. Ask to be invited again." }));
      busy(join, false, "Join");
      decline.disabled = false;
    }
  } }, "Join");
  const decline = h("button", { type: "button", class: "secondary", onclick: async () => {
    setError("group-foot-error", "");
    busy(decline, true);
    try {
      await app.state.core.call("group.decline", { id: c.id });
      forget(c.id);
      toast(`You declined the invitation to ${g.profile.name}.`);
    } catch (err) {
      setError("group-foot-error", groupError(err, "Declining the invitation", {
        invalid: "This invitation was already answered." }));
      busy(decline, false);
    }
  } }, "Decline");
  return h("div", { class: "group-foot invitation", id: "group-foot", role: "group", "aria-labelledby": "group-invitation-text" },
    h("p", { id: "group-invitation-text", class: "invitation-text" }, `${g.invited_by || "A contact"} invites you to ${g.profile.name}`),
    g.profile.description ? h("p", { class: "meta" }, g.profile.description) : null,
    h("p", { class: "hint" }, "Joining shares your display name and picture with every member, and connects you with each of them."),
    h("label", { class: "choice" }, incognito, " Join incognito (the group sees a random name, not yours)"),
    errorLine("group-foot-error"),
    h("div", { class: "row" }, join, decline));
}

/** Deletes the entry of a group that ended for us, with its messages. */
async function deleteChat(c, button) {
  setError("group-foot-error", "");
  busy(button, true);
  try {
    await app.state.core.call("contact.delete", { id: c.id });
    forget(c.id);
    toast("Chat deleted");
  } catch (err) {
    setError("group-foot-error", groupError(err, "Deleting the chat", {
      invalid: "Wisp is still closing this group's connections. Try again in a moment." }));
    busy(button, false);
  }
}

/** Drops an entry from the page after the core deleted it. */
export function forget(id) {
  app.state.contacts.delete(id);
  app.state.messages.delete(id);
  if (app.state.current === id) app.showEmptyPane();
  else app.renderContacts();
}

/**
 * Follows a change of a group entry (a "contact" event): when what its
 * conversation's foot shows changes (joined, removed, role…), the open
 * conversation is shown again.
 */
export function onGroupEntry(prev, c) {
  if (app.state.current !== c.id || !$("#messages")) return;
  if (footKind(prev) !== footKind(c)) app.openConversation(c.id);
}

/** Sends a text to a group; resolves with the message, or toasts why not and rejects. */
export async function sendGroupText(id, text) {
  try {
    return await app.state.core.call("group.send", { group: id, text });
  } catch (err) {
    toast(`Not sent. ${groupError(err, "Sending", { invalid: "An empty message cannot be sent.",
      too_long: "The message is too long: the limit is 8,000 bytes." })}`);
    throw err;
  }
}

// ---------- New group ----------

/** A picture input that resizes the chosen image for a group (8 KB at most). */
export function pictureInput(id, previewId, errorId, onPicture) {
  const input = h("input", { id, type: "file", accept: "image/*", onchange: async () => {
    setError(errorId, "");
    try {
      const blob = input.files[0] ? await resizeAvatar(input.files[0]) : null;
      onPicture(blob ? await blobBase64(blob) : null);
      mount($(`#${previewId}`), blob ? h("img", { class: "avatar", src: URL.createObjectURL(blob), alt: "The group's new picture", width: 48, height: 48 }) : "");
    } catch {
      onPicture(null);
      setError(errorId, "That picture could not be used. Choose a JPEG, PNG or WebP image.");
    }
  } });
  return h("div", { class: "field" }, h("label", { for: id }, "Picture (optional)"), input, h("span", { id: previewId }));
}

export function showNewGroup() {
  app.state.current = null;
  app.renderContacts();
  document.documentElement.dataset.view = "pane";
  let picture = null;
  const name = h("input", { id: "group-name", autocomplete: "off", maxlength: 64, "aria-required": "true" });
  const description = h("textarea", { id: "group-description", rows: 2, maxlength: 1000 });
  const incognito = h("input", { type: "checkbox", id: "group-incognito" });
  const btn = h("button", { type: "submit" }, "Create group");
  mount($("#pane"), h("div", { class: "connect", id: "new-group" },
    app.backButton(),
    h("h2", { id: "new-group-title" }, "New group"),
    h("p", { class: "hint" }, "A group lives only in its members' browsers: no server keeps it or its member list. After creating it, invite contacts you are connected with from Members."),
    h("form", { "aria-labelledby": "new-group-title", onsubmit: async (e) => {
      e.preventDefault();
      setError("new-group-error", "");
      if (!name.value.trim()) { setError("new-group-error", "Give the group a name."); name.focus(); return; }
      busy(btn, true, "Creating…");
      try {
        const params = { name: name.value, description: description.value, incognito: incognito.checked };
        if (picture) params.picture = picture;
        const c = await app.state.core.call("group.create", params);
        app.state.contacts.set(c.id, c);
        await app.openConversation(c.id);
        toast(`${c.name} is ready. Invite people from Members.`);
      } catch (err) {
        setError("new-group-error", groupError(err, "Creating the group", {
          invalid: "That name cannot be used: use 1 to 64 characters of text.",
          too_long: "The description or the picture is too large. Shorten the description to 1,000 characters, or choose another picture." }));
        busy(btn, false, "Create group");
      }
    } },
    field("Group name", name),
    field("Description (optional)", description),
    pictureInput("group-picture", "group-picture-preview", "new-group-error", (p) => { picture = p; }),
    h("label", { class: "choice" }, incognito, " Appear in this group under a random name (incognito)"),
    errorLine("new-group-error"), btn)));
  name.focus();
}
