// members.js — the members panel of a group: who is in it, with roles
// and connection states; inviting a connected contact; one member's view
// (security code and verification, role change, removal); the group's
// profile for owners; leaving and deleting the group. app.js wires it in:
//
//   initMembers({ state, openConversation, renderContacts });
//   showMembers(groupId);           // from the conversation's "Members" button
//   onMembersChanged(groupId);      // on "members" and group "contact" events
import { h, $, mount, toast } from "./dom.js";
import { field, errorLine, setError, busy } from "./form.js";
import { confirmDialog } from "./confirm.js";
import { groupError, pictureInput, ROLE_NAMES, rank } from "./groups.js";

let app = null;

/** Gives this module the parts of app.js it calls back. */
export function initMembers(a) { app = a; }

const entry = (id) => app.state.contacts.get(id);

async function members(id) {
  return (await app.state.core.call("group.members", { id })) ?? [];
}

function connectionText(m) {
  switch (m.status) {
    case "invited": return "added, not joined yet";
    case "removed": return "removed";
    case "left": return "left";
  }
  switch (m.connection) {
    case "self": return "you";
    case "connected": return "connected";
    default: return "connecting…";
  }
}

const current = (m) => m.status === "joined" || m.status === "invited";

/** Whether we (role mine) may change the role of, or remove, member m. */
function canManage(mine, m) {
  if (m.connection === "self" || !current(m)) return false;
  if (mine === "owner") return true;
  return mine === "admin" && rank(m.role) < rank("admin");
}

function avatar(src, name) {
  return src ? h("img", { class: "avatar", src: `data:image/jpeg;base64,${src}`, alt: "", width: 36, height: 36 })
    : h("span", { class: "avatar initial", "aria-hidden": "true" }, (name || "?").slice(0, 1));
}

function roleSelect(id, mine, selected) {
  return h("select", { id },
    Object.entries(ROLE_NAMES).filter(([r]) => rank(r) <= rank(mine)).map(([r, label]) =>
      h("option", { value: r, selected: r === selected ? true : null }, label)));
}

// ---------- the panel ----------

/** Shows the members panel of a group in the pane. */
export async function showMembers(id, focus = true) {
  const c = entry(id);
  if (!c?.group) return;
  app.state.current = id;
  app.renderContacts();
  document.documentElement.dataset.view = "pane";
  const g = c.group;
  const active = g.state === "active";
  const admin = active && rank(g.role) >= rank("admin");
  const owner = active && g.role === "owner";
  const panel = h("div", { class: "members-panel", id: "members-panel", "data-group": id, "data-sig": panelSig(c) },
    h("button", { type: "button", class: "link back-link", onclick: () => app.openConversation(id) }, "‹ Conversation"),
    h("h2", { id: "members-title", tabindex: -1 }, "Members"),
    h("p", { id: "members-meta", class: "meta" }),
    h("ul", { id: "member-list", class: "member-list", "aria-labelledby": "members-title" }),
    h("section", { id: "former-section", "aria-labelledby": "former-title", hidden: true },
      h("h3", { id: "former-title" }, "Former members"),
      h("ul", { id: "former-list", class: "member-list" })),
    admin ? inviteSection(c) : null,
    owner ? profileSection(c) : null,
    active ? h("section", { "aria-labelledby": "leave-title" },
      h("h3", { id: "leave-title" }, owner ? "Leave or delete" : "Leave"),
      errorLine("leave-error"),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", onclick: () => leave(id) }, "Leave group"),
        owner ? h("button", { type: "button", class: "danger", onclick: () => deleteGroup(id) }, "Delete group") : null)) : null);
  mount($("#pane"), panel);
  await refreshList(id);
  if (focus) $("#members-title")?.focus();
}

/** What, when it changes, makes the panel be built again (not only its lists). */
function panelSig(c) {
  return `${c.group.state}:${c.group.role}`;
}

async function refreshList(id) {
  let list;
  try { list = await members(id); } catch (err) {
    const meta = $("#members-meta");
    if (meta) meta.textContent = groupError(err, "Loading the members");
    return;
  }
  const panel = $("#members-panel");
  if (panel?.dataset.group !== id) return; // the pane moved on meanwhile
  const c = entry(id);
  const now = list.filter(current);
  const former = list.filter((m) => !current(m));
  $("#members-meta").textContent = `${c.name} · ${now.length} member${now.length === 1 ? "" : "s"}${c.group.role ? ` · you are ${ROLE_NAMES[c.group.role]?.toLowerCase() ?? c.group.role}` : ""}`;
  mount($("#member-list"), now.map((m) => memberRow(id, m)));
  mount($("#former-list"), former.map((m) => memberRow(id, m)));
  $("#former-section").hidden = former.length === 0;
}

function memberRow(id, m) {
  const self = m.connection === "self";
  const body = [avatar(m.avatar, m.name),
    h("span", { class: "c-main" },
      h("span", { class: "c-name" }, self ? `${m.name} (you)` : m.name),
      h("span", { class: "c-last" }, `${ROLE_NAMES[m.role] ?? m.role} · ${connectionText(m)}`)),
    m.verified ? h("span", { class: "tag" }, "Verified") : null];
  return h("li", { "data-member": m.id, "data-status": m.status, "data-connection": m.connection },
    self ? h("div", { class: "contact member" }, body)
      : h("button", { type: "button", class: "contact member", onclick: () => showMember(id, m.id) }, body));
}

function inviteSection(c) {
  const candidates = [...app.state.contacts.values()].filter((x) => !x.group && x.state === "connected")
    .sort((a, b) => a.name.localeCompare(b.name));
  if (candidates.length === 0) {
    return h("section", { "aria-labelledby": "invite-title" },
      h("h3", { id: "invite-title" }, "Invite"),
      h("p", { class: "hint" }, "Invite contacts you are connected with. Connect with them first (Create one-time link), then come back here."));
  }
  const who = h("select", { id: "invite-contact" }, candidates.map((x) => h("option", { value: x.id }, x.name)));
  const role = roleSelect("invite-role", c.group.role, "member");
  const btn = h("button", { type: "submit" }, "Invite");
  return h("section", { "aria-labelledby": "invite-title" },
    h("h3", { id: "invite-title" }, "Invite a contact"),
    h("form", { "aria-labelledby": "invite-title", onsubmit: async (e) => {
      e.preventDefault();
      setError("invite-error", "");
      const name = app.state.contacts.get(who.value)?.name ?? "your contact";
      busy(btn, true, "Inviting…");
      try {
        await app.state.core.call("group.invite", { group: c.id, contact: who.value, role: role.value });
        toast(`Invitation sent to ${name}. They join when they accept it.`);
      } catch (err) {
        setError("invite-error", groupError(err, "Inviting", {
          invalid: `${name} cannot be invited: only contacts you are connected with can be. Wait until they are connected, or pick another contact.` }));
      } finally {
        busy(btn, false, "Invite");
      }
    } },
    h("div", { class: "row fields" }, field("Contact", who), field("Role", role)),
    h("p", { class: "hint" }, "Owners can change everything; admins invite and remove members; members post; observers only read."),
    errorLine("invite-error"), btn));
}

function profileSection(c) {
  const p = c.group.profile;
  let picture = p.picture ?? null;
  const name = h("input", { id: "group-edit-name", autocomplete: "off", maxlength: 64, value: p.name, "aria-required": "true" });
  const description = h("textarea", { id: "group-edit-description", rows: 2, maxlength: 1000, value: p.description ?? "" });
  const btn = h("button", { type: "submit", class: "secondary" }, "Save profile");
  return h("section", { "aria-labelledby": "group-profile-title" },
    h("h3", { id: "group-profile-title" }, "Group profile"),
    h("form", { "aria-labelledby": "group-profile-title", onsubmit: async (e) => {
      e.preventDefault();
      setError("group-profile-error", "");
      busy(btn, true, "Saving…");
      try {
        const params = { id: c.id, name: name.value, description: description.value };
        if (picture) params.picture = picture;
        await app.state.core.call("group.update", params);
        toast("Group profile saved. Every member sees it.");
      } catch (err) {
        setError("group-profile-error", groupError(err, "Saving the group profile", {
          invalid: "That name cannot be used: use 1 to 64 characters of text.",
          too_long: "The description or the picture is too large. Shorten the description to 1,000 characters, or choose another picture." }));
      } finally {
        busy(btn, false, "Save profile");
      }
    } },
    field("Group name", name),
    field("Description", description),
    pictureInput("group-edit-picture", "group-edit-preview", "group-profile-error", (v) => { picture = v ?? p.picture ?? null; }),
    errorLine("group-profile-error"), btn));
}

async function leave(id) {
  const c = entry(id);
  const ok = await confirmDialog({ title: `Leave ${c.name}?`,
    text: "The other members will be told. You will get no more messages from this group, and can come back only if someone invites you again.",
    confirm: "Leave" });
  if (!ok) return;
  try {
    await app.state.core.call("group.leave", { id });
    await reloadEntry(id);
    toast(`You left ${c.name}.`);
    await app.openConversation(id);
  } catch (err) {
    setError("leave-error", groupError(err, "Leaving the group", {
      invalid: "You cannot leave yet: the group needs another owner first. Make someone an owner, or delete the group." }));
  }
}

async function deleteGroup(id) {
  const c = entry(id);
  const ok = await confirmDialog({ title: `Delete ${c.name} for everyone?`,
    text: "Every member is told the group is deleted, and nobody receives its messages any more. This cannot be undone.",
    confirm: "Delete for everyone" });
  if (!ok) return;
  try {
    await app.state.core.call("group.delete", { id });
    await reloadEntry(id);
    toast(`${c.name} was deleted.`);
    await app.openConversation(id);
  } catch (err) {
    setError("leave-error", groupError(err, "Deleting the group"));
  }
}

async function reloadEntry(id) {
  try {
    app.state.contacts.set(id, await app.state.core.call("contact.get", { id }));
    app.renderContacts();
  } catch { /* the "contact" event brings it */ }
}

// ---------- one member ----------

/** Shows one member of a group: code, verification, role, removal. */
export async function showMember(id, memberId, focus = true) {
  const c = entry(id);
  let list;
  try { list = await members(id); } catch (err) { toast(groupError(err, "Loading the member")); return; }
  const m = list.find((x) => x.id === memberId);
  if (!m) { showMembers(id); return; }
  let code = null;
  if (m.connection === "connected") {
    try { code = (await app.state.core.call("member.code", { group: id, member: m.id })).code; } catch { /* not connected after all */ }
  }
  const mine = c.group.state === "active" ? c.group.role : "";
  const manage = canManage(mine, m);
  const role = manage ? roleSelect("member-role", mine, m.role) : null;
  const roleBtn = h("button", { type: "submit", class: "secondary" }, "Change role");
  const view = h("div", { class: "members-panel", id: "member-view", "data-group": id, "data-member": m.id, "data-sig": memberSig(c, m) },
    h("button", { type: "button", class: "link back-link", onclick: () => showMembers(id) }, "‹ Members"),
    h("div", { class: "row" }, avatar(m.avatar, m.name), h("h2", { id: "member-title", tabindex: -1 }, m.name)),
    h("p", { class: "meta", id: "member-state" }, `${ROLE_NAMES[m.role] ?? m.role} · ${connectionText(m)}${m.added_by ? ` · added by ${m.added_by}` : ""}`),
    m.connection === "connecting" && current(m) ? h("p", { class: "hint" },
      "Your direct connection with this member is being made. Until it is ready, your messages reach them through the member who introduced you.") : null,
    h("section", { "aria-labelledby": "member-code-title" },
      h("h3", { id: "member-code-title" }, "Security code"),
      h("p", { class: "hint" }, "Compare this code with the member in person or on a call. If it is the same on both screens, nobody is in the middle, not even the member who introduced you."),
      h("p", { id: "member-code", class: "code" }, code ?? "Available once you are connected directly with them."),
      code ? h("p", { id: "member-verified", role: "status" }, m.verified ? "Verified: you compared this code." : "Not verified yet.") : null,
      errorLine("verify-error"),
      code ? h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          await app.state.core.call("member.verify", { group: id, member: m.id, verified: !m.verified });
          await showMember(id, m.id);
        } catch (err) {
          setError("verify-error", groupError(err, "Marking the member", { invalid: "Connect directly with this member first; then compare the code." }));
        }
      } }, m.verified ? "Mark as not verified" : "Mark as verified") : null),
    manage ? h("section", { "aria-labelledby": "member-role-title" },
      h("h3", { id: "member-role-title" }, "Role"),
      h("form", { "aria-labelledby": "member-role-title", onsubmit: async (e) => {
        e.preventDefault();
        setError("role-error", "");
        busy(roleBtn, true);
        try {
          await app.state.core.call("member.role", { group: id, member: m.id, role: role.value });
          toast(`${m.name} is now ${ROLE_NAMES[role.value].toLowerCase()}.`);
          await showMember(id, m.id);
        } catch (err) {
          setError("role-error", groupError(err, "Changing the role", { invalid: "Choose one of the roles in the list." }));
          busy(roleBtn, false);
        }
      } }, field("Role", role), errorLine("role-error"), roleBtn)) : null,
    manage ? h("section", { "aria-labelledby": "member-remove-title" },
      h("h3", { id: "member-remove-title" }, "Remove from the group"),
      h("p", { class: "hint" }, `${m.name} will be told, and will get no more of the group's messages.`),
      errorLine("remove-error"),
      h("button", { type: "button", class: "danger", onclick: () => removeMember(id, m) }, "Remove")) : null);
  mount($("#pane"), view);
  if (focus) $("#member-title")?.focus();
}

function memberSig(c, m) {
  return `${c.group.state}:${c.group.role}:${m.role}:${m.status}:${m.connection}:${m.verified}`;
}

async function removeMember(id, m) {
  const c = entry(id);
  const ok = await confirmDialog({ title: `Remove ${m.name}?`,
    text: `${m.name} will be told they were removed from ${c.name}, and will get no more of its messages.`,
    confirm: `Remove ${m.name}` });
  if (!ok) return;
  try {
    await app.state.core.call("member.remove", { group: id, member: m.id });
    toast(`${m.name} was removed.`);
    await showMembers(id);
  } catch (err) {
    setError("remove-error", groupError(err, "Removing the member"));
  }
}

// ---------- events ----------

/**
 * Brings an open members panel or member view of group id up to date: its
 * lists when members changed, the whole view when our role or state did.
 */
export async function onMembersChanged(id) {
  const panel = $("#members-panel");
  if (panel?.dataset.group === id && panel.id === "members-panel") {
    const c = entry(id);
    if (c?.group && panel.dataset.sig !== panelSig(c)) await showMembers(id, false);
    else await refreshList(id);
    return;
  }
  const view = $("#member-view");
  if (view?.dataset.group === id) {
    const c = entry(id);
    let m;
    try { m = (await members(id)).find((x) => x.id === view.dataset.member); } catch { return; }
    if ($("#member-view") !== view || !c?.group) return;
    if (!m) { await showMembers(id, false); return; }
    if (view.dataset.sig !== memberSig(c, m)) await showMember(id, m.id, false);
  }
}
