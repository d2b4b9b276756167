// settings.js — Settings: the profile (name, picture, passphrase, how it
// is listed, lock, delete), relays (by host name, key folded away),
// notifications, files, storage, backup, and About (version and core
// status, which have no permanent place on a phone's screen).
import { h, $, mount, toast, blobURL, blobBase64, resizeAvatar, avatarOf } from "./dom.js";
import { field, errorLine, setError, showError, busy } from "./form.js";
import { say } from "./errors.js";
import { state, setCanary } from "./state.js";
import { nav } from "./nav.js";
import { AUTO_KEY, autoDownloadLimit, formatSize } from "./transfers.js";
import { notificationSettings } from "./notify.js";
import { confirmDialog } from "./confirm.js";
import { relayHost, relayUsage, leavingItem } from "./relays.js";

/** What a refused relay address means in Settings. */
const RELAY_OVERRIDES = {
  invalid: "That is not a relay address. A relay address looks like wisp://…@relay.example, as the relay's operator gives it.",
  relay_local: "That relay is on a private network or on this computer, which Wisp does not connect to from a page on the internet. Use the relay's public address (wisp://…@relay.example).",
};

function relayItem(r, info, saveRelays, use) {
  const key = r.startsWith("wisp://") && r.includes("@") ? r.slice("wisp://".length, r.lastIndexOf("@")) : "";
  return h("li", {},
    h("label", { class: "choice" },
      h("input", { type: "radio", name: "receive", checked: r === info.receive, onchange: () => saveRelays(info.relays, r) }),
      h("span", { class: "relay-host" }, relayHost(r)), r === info.receive ? h("span", { class: "meta" }, " (new connections)") : null,
      use?.chats ? h("span", { class: "meta" }, ` · ${use.chats} chat${use.chats === 1 ? "" : "s"}`) : null),
    key ? h("details", { class: "relay-key" }, h("summary", {}, "Key fingerprint"), h("code", {}, key)) : null,
    h("button", { type: "button", class: "link", "aria-label": `Remove ${relayHost(r)}`, onclick: () => {
      const rest = info.relays.filter((x) => x !== r);
      saveRelays(rest, rest.includes(info.receive) ? info.receive : (rest[0] ?? ""));
    } }, "Remove"));
}

export async function showSettings() {
  if (!state.profile) return;
  state.current = null;
  nav.renderContacts();
  document.documentElement.dataset.view = "pane";
  let info;
  try {
    info = await state.core.call("profile.info");
  } catch {
    return; // locked meanwhile: the unlock screen is shown
  }
  const relayInput = h("input", { id: "relay-add", autocomplete: "off", spellcheck: "false", placeholder: "wisp://…@host:port" });
  const est = await navigator.storage?.estimate?.().catch(() => null);
  const persisted = await navigator.storage?.persisted?.().catch(() => false);
  const mem = await state.core.call("memory").catch(() => null);
  const usage = await relayUsage();
  const summary = (state.profiles ?? []).find((p) => p.id === info.id) ?? {};
  const saveRelays = async (relays, receive) => {
    try {
      state.profile = await state.core.call("relays.set", { relays, receive });
      showSettings();
    } catch (err) { showError("relay-error", err, "Saving the relays", { overrides: RELAY_OVERRIDES }); }
  };
  mount($("#pane"), h("div", { class: "settings" },
    nav.backButton(),
    h("h2", {}, "Settings"),
    profileSection(info, summary),
    h("section", { "aria-labelledby": "relays-title" },
      h("h3", { id: "relays-title" }, "Relays"),
      h("p", { class: "hint" }, "You receive messages on these relays. New connections use the one you choose; your contacts send to it. Removing a relay first moves the chats on it to the one you choose."),
      h("ul", { class: "relays", id: "relay-list" }, (info.relays ?? []).map((r) => relayItem(r, info, saveRelays, usage.get(r))),
        [...usage.values()].filter((u) => u.leaving && u.chats > 0).map(leavingItem)),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        setError("relay-error", "");
        const addr = relayInput.value.trim();
        try {
          await state.core.call("relay.check", { id: addr });
        } catch (err) {
          showError("relay-error", err, "Adding the relay", { overrides: RELAY_OVERRIDES });
          return;
        }
        const relays = [...(info.relays ?? []), addr];
        saveRelays(relays, info.receive || addr);
      } }, field("Add a relay", relayInput), errorLine("relay-error"), h("button", { type: "submit" }, "Add relay")),
      routingSetting(info)),
    notificationSettings(),
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
    h("section", { "aria-labelledby": "storage-title" },
      h("h3", { id: "storage-title" }, "Storage"),
      h("p", { id: "storage-status" }, persisted ? "Persistent: the browser will not delete Wisp's data on its own." :
        "Not persistent: the browser may delete Wisp's data when space runs low. Keep a backup."),
      est ? h("p", { class: "meta" }, `Using about ${(est.usage / 1048576).toFixed(1)} MiB of ${(est.quota / 1048576).toFixed(0)} MiB available.`) : null),
    h("section", { "aria-labelledby": "backup-title" },
      h("h3", { id: "backup-title" }, "Backup"),
      h("p", { class: "hint" }, "An encrypted file with your profile, contacts and messages, to restore Wisp in another browser. Import it there, then stop using this one: two browsers cannot receive on the same connections."),
      exportForm()),
    h("section", { "aria-labelledby": "about-title" },
      h("h3", { id: "about-title" }, "About"),
      h("p", { id: "about-version", class: "meta" }, `Wisp core ${state.version?.version ?? ""}${state.version?.go ? ` (${state.version.go}${state.version.revision ? ", " + state.version.revision.slice(0, 12) : ""})` : ""}`),
      h("p", { class: "meta" }, `Core: ${$("#status")?.textContent || "ready"}${state.relaysDown.size ? `; ${state.relaysDown.size} relay${state.relaysDown.size > 1 ? "s" : ""} not reachable just now` : "; relays reachable"}.`),
      mem ? h("p", { id: "core-memory", class: "meta", "data-heap": mem.heapInuse, "data-sys": mem.sys },
        `Memory: ${formatSize(mem.heapInuse)} in use by Wisp's core, at most ${formatSize(mem.sys)} since this tab opened.`) : null,
      h("p", { class: "meta" }, "Links in messages open in a new tab; Wisp never fetches a preview of them, so nothing leaves this page for a message's content."))));
}

/** The private routing switch: on, messages to a contact's relay go
 * through your receiving relay, so that relay never learns your address. */
function routingSetting(info) {
  const box = h("input", { type: "checkbox", id: "private-routing", checked: !!info.private_routing,
    "aria-describedby": "private-routing-hint", onchange: async () => {
      const on = box.checked;
      if (!on && !(await confirmDialog({
        title: "Turn private routing off?",
        text: "Your browser will then connect straight to your contacts' relays, and each of those relays sees your IP address and when you send.",
        confirm: "Turn off", danger: true,
      }))) { box.checked = true; return; }
      try {
        state.profile = await state.core.call("routing.set", { private: on });
        toast(on ? "Private routing is on." : "Private routing is off: your contacts' relays see your address.");
      } catch (err) { box.checked = !on; toast(say(err, "Changing private routing")); }
    } });
  return h("div", { class: "setting" },
    h("label", { class: "choice" }, box, h("span", {}, "Private routing")),
    h("p", { class: "hint", id: "private-routing-hint" },
      "Messages to your contacts' relays go through your receiving relay, so their relays never see your IP address."));
}

function profileSection(info, summary) {
  let avatar;
  const name = h("input", { id: "profile-name", value: info.name ?? "", maxlength: 64, autocomplete: "nickname" });
  const pic = h("input", { id: "profile-picture", type: "file", accept: "image/*", onchange: async () => {
    setError("profile-error", "");
    try {
      const blob = pic.files[0] ? await resizeAvatar(pic.files[0]) : null;
      avatar = blob ? await blobBase64(blob) : undefined;
      mount($("#profile-preview"), blob ? h("img", { src: URL.createObjectURL(blob), alt: "Your new picture", width: 48, height: 48 }) : "");
    } catch {
      setError("profile-error", "That picture could not be used: the browser could not read it as an image. Pick a JPEG or PNG picture.");
    }
  } });
  const save = h("button", { type: "submit" }, "Save profile");
  const show = h("input", { type: "checkbox", id: "profile-show", checked: !!summary.show, onchange: async () => {
    try {
      await state.core.call("profile.listing", { show: show.checked });
      state.profiles = (await state.core.call("profiles.list")) ?? [];
      toast(show.checked ? "Your name and picture are shown on this browser's profile chooser." : "Your name and picture are hidden until you unlock.");
    } catch (err) { show.checked = !show.checked; toast(say(err, "Changing the setting")); }
  } });
  return h("section", { "aria-labelledby": "profile-title" },
    h("h3", { id: "profile-title" }, "Profile"),
    h("div", { class: "me-card" }, avatarOf(state.profile, 48), h("span", {}, info.name)),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("profile-error", "");
      busy(save, true, "Saving…");
      try {
        const params = { name: name.value };
        params.avatar = avatar === undefined ? info.avatar : avatar;
        state.profile = await state.core.call("profile.update", params);
        toast("Profile saved. Your contacts see the new name and picture; incognito contacts do not.");
        nav.showMain();
        showSettings();
      } catch (err) {
        showError("profile-error", err, "Saving the profile", { overrides: {
          invalid: "That name was not accepted: use 1 to 64 characters.", too_long: "The name or picture is too large." } });
      } finally { busy(save, false, "Save profile"); }
    } },
    field("Display name", name, "Sent to your contacts (not to those you joined incognito)."),
    h("div", { class: "field" }, h("label", { for: "profile-picture" }, "Picture"), pic, h("span", { id: "profile-preview" })),
    errorLine("profile-error"), save),
    passphraseForm(info),
    info.passphrase || summary.passphrase ? h("label", { class: "choice" }, show, " Show my name and picture on this browser's profile chooser (anyone using this browser can see them)") : null,
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", onclick: () => lock(summary) }, "Lock"),
      h("button", { type: "button", class: "danger", onclick: () => deleteProfile(info) }, "Delete profile")));
}

function passphraseForm(info) {
  const has = !!(state.profiles ?? []).find((p) => p.id === info.id)?.passphrase;
  const old = h("input", { id: "pass-old", type: "password", autocomplete: "current-password" });
  const next = h("input", { id: "pass-new", type: "password", autocomplete: "new-password" });
  const again = h("input", { id: "pass-again", type: "password", autocomplete: "new-password" });
  const btn = h("button", { type: "submit", class: "secondary" }, has ? "Change passphrase" : "Set passphrase");
  return h("details", { class: "passphrase", id: "passphrase-box" },
    h("summary", {}, has ? "Change passphrase" : "Set a passphrase"),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("pass-error", "");
      if (next.value !== again.value) { setError("pass-error", "The two new passphrases are not the same. Type it again."); again.select(); return; }
      if (next.value && [...next.value].length < 8) { setError("pass-error", "The new passphrase needs at least 8 characters."); next.select(); return; }
      if (!next.value && !has) { setError("pass-error", "Type the passphrase to set."); next.focus(); return; }
      busy(btn, true, "Saving…");
      try {
        await state.core.call("profile.passphrase", { id: info.id, old: has ? old.value : "", new: next.value });
        state.profiles = (await state.core.call("profiles.list")) ?? [];
        toast(next.value ? "Passphrase saved. You need it to unlock Wisp from now on." : "Passphrase removed.");
        showSettings();
      } catch (err) {
        showError("pass-error", err, "Changing the passphrase", { overrides: {
          wrong_passphrase: "The current passphrase is wrong. Nothing was changed.",
          invalid: "The new passphrase needs at least 8 characters." } });
        busy(btn, false, has ? "Change passphrase" : "Set passphrase");
      }
    } },
    has ? field("Current passphrase", old) : null,
    field(has ? "New passphrase" : "Passphrase", next, has ? "At least 8 characters. Leave both new fields empty to remove the passphrase." : "At least 8 characters. It encrypts everything Wisp keeps in this browser; there is no way to recover a forgotten one."),
    field(has ? "New passphrase again" : "Passphrase again", again),
    errorLine("pass-error"), btn));
}

async function lock(summary) {
  const has = !!summary.passphrase;
  if (!has) {
    const set = await confirmDialog({ title: "Set a passphrase first?",
      text: "This profile has no passphrase, so there is nothing to unlock it with: locking only closes it, and anyone using this browser can open it again. Set a passphrase to protect it.",
      confirm: "Set a passphrase", danger: false });
    if (set) {
      const box = $("#passphrase-box");
      if (box) { box.open = true; $("#pass-new")?.focus(); }
      return;
    }
  }
  state.profile = null;
  await state.core.call("profile.lock").catch(() => {});
  state.releaseLock?.();
  state.profiles = (await state.core.call("profiles.list")) ?? [];
  nav.showUnlock();
}

async function deleteProfile(info) {
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "delete-title", "aria-describedby": "delete-text", oncancel: (e) => { e.preventDefault(); close(); } },
    h("h2", { id: "delete-title" }, "Delete this profile?"),
    h("p", { id: "delete-text" }, "This deletes the profile, its contacts and all messages from this browser. It cannot be undone. Export a backup first if you may want them again."),
    h("div", { class: "row end" },
      h("button", { type: "button", class: "secondary", onclick: () => { close(); $("#export-pass")?.focus(); $("#export-pass")?.scrollIntoView({ block: "center" }); } }, "Export a backup first"),
      h("button", { type: "button", class: "secondary", onclick: () => close() }, "Cancel"),
      h("button", { type: "button", class: "danger solid", onclick: async () => {
        close();
        try {
          await state.core.call("profile.delete", { id: info.id });
        } catch (err) { toast(say(err, "Deleting the profile")); return; }
        state.releaseLock?.();
        state.profile = null;
        state.profiles = (await state.core.call("profiles.list")) ?? [];
        setCanary();
        nav.route();
      } }, "Delete profile")));
  const close = () => { dialog.close(); dialog.remove(); };
  document.body.append(dialog);
  dialog.showModal();
  dialog.querySelector("button.secondary")?.focus();
}

function exportForm() {
  const pass = h("input", { id: "export-pass", type: "password", autocomplete: "new-password" });
  const again = h("input", { id: "export-pass-again", type: "password", autocomplete: "new-password" });
  const btn = h("button", { type: "submit" }, "Export backup");
  return h("form", { onsubmit: async (e) => {
    e.preventDefault();
    setError("export-error", "");
    if (pass.value !== again.value) { setError("export-error", "The two passphrases are not the same. Type it again."); again.select(); return; }
    if ([...pass.value].length < 8) { setError("export-error", "The backup passphrase needs at least 8 characters."); pass.select(); return; }
    busy(btn, true, "Exporting…");
    try {
      const { data } = await state.core.call("backup.export", { passphrase: pass.value });
      const a = h("a", { href: blobURL(data, "application/octet-stream"), download: `wisp-backup-${new Date().toISOString().slice(0, 10)}.wisp` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      pass.value = "";
      again.value = "";
      toast("Backup saved");
    } catch (err) {
      showError("export-error", err, "Exporting the backup", { overrides: { invalid: "The backup passphrase needs at least 8 characters." } });
    } finally {
      busy(btn, false, "Export backup");
    }
  } }, field("Backup passphrase", pass, "At least 8 characters; needed to import the backup. It can be your passphrase."),
  field("Backup passphrase again", again),
  errorLine("export-error"), btn);
}
