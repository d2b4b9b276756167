// encryption.js — a contact's end-to-end encryption as people see it: the
// "Encryption" section of a contact's details, with "Fix connection" when
// the contact's messages no longer decrypt, and the re-synchronisation
// after a profile was restored from a backup.
import { h, toast } from "./dom.js";
import { errorLine, showError, busy } from "./form.js";
import { state } from "./state.js";

const FIX_OVERRIDES = {
  invalid: "Your contact is re-synchronising with you right now. Try again in a moment.",
  not_ready: "This contact is not connected yet, so there is nothing to fix.",
};

const STATUS = {
  ok: "Messages with this contact are end-to-end encrypted.",
  resyncing: "Re-synchronising encryption… Messages you send now go out when your contact's app answers.",
  broken: "Messages from this contact can no longer be decrypted. Fix connection agrees on new keys with them; nothing you wrote is lost.",
};

/**
 * The "Encryption" section of a contact's details. rerender is called
 * after a fix starts (and by the page on encryption events).
 */
export async function encryptionSection(id, rerender) {
  let e;
  try { e = await state.core.call("contact.encryption", { id }); } catch { return null; }
  const text = e.state === "failed" ? e.reason : (STATUS[e.state] ?? STATUS.ok);
  const button = h("button", { type: "button", disabled: e.state === "resyncing" }, "Fix connection");
  button.addEventListener("click", async () => {
    busy(button, true, "Fixing…");
    try {
      await state.core.call("contact.fix_connection", { id });
      toast("Re-synchronising encryption…");
      rerender();
    } catch (err) {
      busy(button, false);
      showError("fix-connection-error", err, "Fixing the connection", { overrides: FIX_OVERRIDES, retry: () => button.click() });
    }
  });
  return h("section", { "aria-labelledby": "encryption-title" },
    h("h3", { id: "encryption-title" }, "Encryption"),
    h("p", { id: "encryption-now", role: "status" }, text),
    e.state === "ok" ? h("p", { class: "hint" }, "Use Fix connection only if their messages stop arriving or cannot be read: it agrees on new keys, and the security code changes.") : null,
    errorLine("fix-connection-error"),
    button);
}
