// onboarding.js — the screens before a profile is open: welcome and
// create a profile (with what a relay is and where data lives, before
// anything is created), import a backup, the profile chooser and unlock,
// and the screen for storage the browser wiped.
import { h, $, mount, toast, blobBase64, resizeAvatar, screen, avatarOf } from "./dom.js";
import { field, errorLine, setError, showError, busy } from "./form.js";
import { state, keepInvite, setCanary, CANARY_KEY } from "./state.js";
import { nav } from "./nav.js";

export function showOnboarding() {
  let avatar = null;
  const name = h("input", { id: "name", name: "name", autocomplete: "nickname", maxlength: 64, required: true });
  const pass = h("input", { id: "passphrase", type: "password", autocomplete: "new-password" });
  const pic = h("input", { id: "avatar", type: "file", accept: "image/*", onchange: async () => {
    setError("create-error", "");
    try {
      avatar = pic.files[0] ? await resizeAvatar(pic.files[0]) : null;
      mount($("#avatar-preview"), avatar ? h("img", { src: URL.createObjectURL(avatar), alt: "Your picture", width: 48, height: 48 }) : "");
    } catch {
      avatar = null;
      setError("create-error", "That picture could not be used: the browser could not read it as an image. Pick a JPEG or PNG picture.");
    }
  } });
  const btn = h("button", { type: "submit" }, "Create profile");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    setError("create-error", "");
    if (pass.value && [...pass.value].length < 8) {
      setError("create-error", "The passphrase needs at least 8 characters, or leave it empty.");
      pass.focus();
      return;
    }
    busy(btn, true, "Creating…");
    try {
      const params = { name: name.value, passphrase: pass.value };
      if (avatar) params.avatar = await blobBase64(avatar);
      const { id } = await state.core.call("profile.create", params);
      state.profiles = (await state.core.call("profiles.list")) ?? [];
      setCanary();
      requestPersistence(); // never waited for: Firefox answers only after a prompt
      await nav.unlock(id, pass.value);
    } catch (err) {
      showError("create-error", err, "Creating the profile", { overrides: {
        invalid: "The name or passphrase was not accepted: a name needs 1 to 64 characters, a passphrase at least 8.",
        too_long: "The name or picture is too large. Use a shorter name (64 characters at most) or another picture.",
      } });
      busy(btn, false, "Create profile");
    }
  } },
  field("Display name", name, "What your contacts see. You can change it later."),
  h("div", { class: "field" }, h("label", { for: "avatar" }, "Picture (optional)"), pic, h("span", { id: "avatar-preview" })),
  field("Passphrase", pass, "Optional, at least 8 characters. It encrypts everything Wisp keeps in this browser. Without one, anyone who can use this browser profile can open your chats. There is no way to recover a forgotten passphrase."),
  errorLine("create-error"), btn);
  const invited = state.invite ? h("div", { id: "invited", class: "invited", role: "note" },
    h("p", { class: "lead" }, h("strong", {}, "You were invited to chat on Wisp — create a profile to connect.")),
    h("p", { class: "hint" }, "The invitation stays in this tab until you use it, also if you reload."),
    h("button", { type: "button", class: "link", onclick: () => { keepInvite(null); $("#invited")?.remove(); } }, "Dismiss the invitation")) : null;
  screen("onboarding", "Welcome to Wisp",
    invited,
    h("p", { class: "lead" }, "Wisp is a private messenger with no accounts: no phone number, no username, nothing that identifies you."),
    h("p", { class: "lead" }, "You connect with people by sharing a one-time link, and only your two browsers can read what you send."),
    h("section", { class: "explain", "aria-labelledby": "how-title" },
      h("h3", { id: "how-title" }, "How it works"),
      h("p", {}, "Messages travel through relays: small servers that hold encrypted messages until your contact's browser fetches them, and that cannot read them or tell who talks to whom."),
      h("p", {}, "Everything else — your profile, contacts, messages and keys — lives only in this browser. Clearing this site's data, or the browser deleting it, erases them for good, so export a backup in Settings.")),
    form, importSection());
  name.focus();
}

/** The "Import a backup" form, shown at onboarding and after a wipe. */
export function importSection() {
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
        requestPersistence();
        await nav.unlock(id, newPass.value);
        toast("Backup imported");
      } catch (err) {
        showError("import-error", err, "Importing the backup", { overrides: {
          wrong_passphrase: "Wrong backup passphrase. Nothing was imported.",
          invalid: "That file is not a Wisp backup, or it is damaged. Nothing was imported.",
          too_long: "That file is too large to be a Wisp backup. Nothing was imported.",
        } });
        busy(btn, false, "Import backup");
      }
    } },
    field("Backup file", file),
    field("Backup passphrase", pass),
    field("New passphrase (optional)", newPass, "Protects the profile in this browser. Leave empty for no passphrase."),
    errorLine("import-error"), btn));
}

/**
 * Asks the browser to keep Wisp's storage, without waiting for the
 * answer: Firefox answers only after the person answers its prompt. The
 * answer is reported when it comes.
 */
export function requestPersistence() {
  let ask;
  try { ask = navigator.storage?.persist?.(); } catch { ask = null; }
  Promise.resolve(ask).then((ok) => {
    state.persisted = !!ok;
    if (ok) toast("Storage is persistent: this browser will keep Wisp's data.");
    else showPersistBanner();
  }, () => { state.persisted = false; showPersistBanner(); });
}

function showPersistBanner() {
  try { if (sessionStorage.getItem("wisp.persist-dismissed")) return; } catch { /* show it */ }
  const banner = $("#banner");
  mount(banner, h("p", {}, "This browser may delete Wisp's storage when space runs low. Install Wisp as an app or bookmark it and use it often, and export a backup in Settings."),
    h("button", { type: "button", class: "secondary", onclick: () => {
      banner.hidden = true;
      try { sessionStorage.setItem("wisp.persist-dismissed", "1"); } catch { /* once per page */ }
    } }, "Dismiss"));
  banner.hidden = false;
}

/** The name a profile is listed by on the chooser. */
function profileLabel(p, i) {
  const created = new Date(p.created).toLocaleDateString();
  if (p.name) return `${p.name}${p.passphrase ? "" : " (no passphrase)"}`;
  return `Profile ${i + 1}, created ${created}${p.passphrase ? "" : " (no passphrase)"}`;
}

export function showUnlock() {
  const profiles = state.profiles;
  // Nothing to unlock (the list came back empty): the router decides
  // between onboarding and "your data is gone".
  if (profiles.length === 0) return nav.route();
  let selected = profiles[0];
  const pass = h("input", { id: "passphrase", type: "password", autocomplete: "current-password" });
  const passField = field("Passphrase", pass);
  const btn = h("button", { type: "submit" }, "Unlock");
  const fit = () => {
    passField.hidden = !selected.passphrase;
    btn.textContent = selected.passphrase ? "Unlock" : "Open";
  };
  const chooser = profiles.length > 1 ? h("fieldset", { class: "profiles" }, h("legend", {}, "Profile"),
    profiles.map((p, i) => h("label", { class: "choice profile-choice" },
      h("input", { type: "radio", name: "profile", value: p.id, checked: i === 0, onchange: () => { selected = p; fit(); setError("unlock-error", ""); } }),
      avatarOf(p, 28), ` ${profileLabel(p, i)}`))) : null;
  screen("unlock", profiles.length > 1 ? "Choose a profile" : "Unlock Wisp",
    h("p", {}, state.invite ? "Unlock to answer the invitation you opened." : "Your chats are encrypted with your passphrase."),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      setError("unlock-error", "");
      busy(btn, true, selected.passphrase ? "Unlocking…" : "Opening…");
      try {
        await nav.unlock(selected.id, selected.passphrase ? pass.value : "");
      } catch (err) {
        showError("unlock-error", err, "Unlocking");
        busy(btn, false);
        fit();
        pass.select();
      }
    } }, chooser, passField, errorLine("unlock-error"), btn),
    h("p", {}, h("button", { type: "button", class: "link", onclick: showOnboarding }, "Create another profile")));
  fit();
  if (selected.passphrase) pass.focus(); else btn.focus();
}

export function showWiped() {
  screen("wiped", "Your Wisp data is gone",
    h("p", {}, "This browser deleted Wisp's storage (it does that when space runs low or site data is cleared). Wisp did not create a new identity in its place."),
    h("p", {}, "If you exported a backup, import it below. Otherwise your contacts will need to send you new invitations."),
    importSection(),
    h("button", { type: "button", class: "secondary", onclick: () => { localStorage.removeItem(CANARY_KEY); showOnboarding(); } }, "Start again without a backup"));
}
