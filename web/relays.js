// relays.js — relays as people see them: a relay by its host name, where
// a contact's messages reach us ("Change receiving relay" in a contact's
// details) and how many chats each relay carries (Settings, including a
// removed relay whose chats are being moved off it).
import { h, toast } from "./dom.js";
import { field, errorLine, showError, busy } from "./form.js";
import { state } from "./state.js";

/** A relay address shown by its host; the key hash is folded away. */
export function relayHost(addr) {
  const at = addr.lastIndexOf("@");
  return at >= 0 ? addr.slice(at + 1) : addr;
}

const CHANGE_OVERRIDES = {
  invalid: "The relay could not be changed now: the contact must be connected, and a change already under way must finish first.",
};

/**
 * The "Receiving relay" section of a contact's details. rerender is
 * called after a change starts (and by the page on rotation events).
 */
export async function receivingRelaySection(id, rerender) {
  let q;
  try { q = await state.core.call("contact.queue", { id }); } catch { return null; }
  const relays = state.profile?.relays ?? [];
  const pick = h("select", { id: "receive-relay" },
    relays.map((r) => h("option", { value: r, selected: r === q.relay }, relayHost(r))));
  const button = h("button", { type: "submit", disabled: !!q.next_relay }, "Change receiving relay");
  return h("section", { "aria-labelledby": "receiving-title" },
    h("h3", { id: "receiving-title" }, "Receiving relay"),
    h("p", { id: "receiving-now", role: "status" }, q.next_relay
      ? `Moving to ${relayHost(q.next_relay)}… It finishes when their app is next online.`
      : `Their messages reach you on ${relayHost(q.relay)}.`),
    h("p", { class: "hint" }, "Changing it gives this chat a new address on the relay you pick (also on the same one), so the old one can no longer be linked to you. Nothing is lost while it moves."),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      busy(button, true, "Changing…");
      try {
        await state.core.call("contact.change_relay", { id, relay: pick.value });
        toast("Changing receiving relay…");
        rerender();
      } catch (err) {
        busy(button, false);
        showError("receive-relay-error", err, "Changing the receiving relay", { overrides: CHANGE_OVERRIDES, retry: () => button.click() });
      }
    } }, relays.length ? field("Relay", pick) : null, errorLine("receive-relay-error"), button));
}

/** chats[relay] → { chats, leaving } from relays.usage, for Settings. */
export async function relayUsage() {
  const out = new Map();
  try {
    for (const u of await state.core.call("relays.usage")) out.set(u.relay, u);
  } catch { /* locked meanwhile */ }
  return out;
}

/** A relay that was removed but still carries chats being moved off it. */
export function leavingItem(u) {
  return h("li", { class: "leaving" },
    h("span", { class: "relay-host" }, relayHost(u.relay)),
    h("span", { class: "meta", role: "status" }, ` removed: moving ${u.chats} chat${u.chats === 1 ? "" : "s"} to your other relays…`),
    h("progress", { "aria-label": `Moving chats off ${relayHost(u.relay)}` }));
}
