// errors.js — every error code of the core, as a sentence for a person.
// The core answers a failed call with a stable code (wasm/api, wasm/rpc;
// "core_stopped" comes from rpc.js); its own message is English written
// for developers and never reaches the page.
//
//   toast(say(err, "Sending the message"));
//   const { text, retry } = explain(err, "Creating the link");
//   say(err, "Saving", { invalid: "The name has characters Wisp cannot keep." });
//
// what names the action, for the sentences that depend on it and for the
// fallback. overrides replace a code's sentence where the action knows
// better (a wrong passphrase means something else when importing).

/** Sentences by code: text, and retry when trying again can help. */
export const SENTENCES = {
  // wasm/rpc
  unknown_method: { text: "This page and Wisp's core do not match (the app was updated). Reload the page." },
  bad_request: { text: "This page and Wisp's core do not match (the app was updated). Reload the page." },
  internal: { text: "Something went wrong inside Wisp. Try again; if it keeps failing, reload the page.", retry: true },
  canceled: { text: "It was cancelled." },
  // rpc.js
  core_stopped: { text: "Wisp's core stopped. Reload the page: your messages and keys are safe." },
  // wasm/api
  wrong_passphrase: { text: "Wrong passphrase. Nothing was changed; try again." },
  invitation_used: { text: "This invitation was already used. Ask for a new one." },
  not_wisp_link: { text: "That is not a Wisp invitation link." },
  link_corrupted: { text: "The invitation link is corrupted: it was cut or changed. Ask for it again." },
  link_version: { text: "This link needs a newer version of Wisp. Reload the page to update, or ask for a new link." },
  link_relay: { text: "The link names a relay address that is not valid. Ask for a new link." },
  relay_local: { text: "That relay is on a private network or on someone's own computer, which Wisp does not connect to from a page on the internet. Use a relay on the internet." },
  too_long: { text: "That is too long. Make it shorter and try again." },
  invalid: { text: "Something in it was not accepted. Check it and try again." },
  no_relay: { text: "Wisp needs a relay to receive messages on. Add one in Settings." },
  no_contact: { text: "That contact is no longer in your list." },
  no_profile: { text: "That profile is no longer in this browser. Reload the page." },
  locked: { text: "Wisp is locked. Unlock it and try again." },
  not_ready: { text: "The connection is not ready yet. Wait until it says connected, then try again.", retry: true },
  relay_unreachable: { text: "The relay could not be reached. Check your internet connection and try again.", retry: true },
  relay_busy: { text: "The relay is busy just now. Wait a minute and try again.", retry: true },
  relay_full: { text: "The relay is out of space. Try again later, or choose another relay in Settings.", retry: true },
  file_corrupted: { text: "The file arrived damaged: it does not match what was sent. Ask for it again." },
  file_expired: { text: "The file is no longer on the relay (files are kept for a limited time). Ask for it again." },
  not_same_file: { text: "That is not the same file that was being sent. Pick the original file." },
  file_unreadable: { text: "The browser can no longer read that file (it was moved or changed). Pick it again." },
  group_full: { text: "The group has the most members it can have (100). Remove someone before inviting more." },
  not_allowed: { text: "Your role does not allow this. Ask an owner or an admin." },
  no_group: { text: "This group is no longer on this device." },
  no_member: { text: "That person is no longer a member of this group." },
  group_closed: { text: "You are no longer a member of this group, so nothing can be sent or changed in it." },
  contact_left: { text: "Your contact left: they deleted this conversation, so nothing more can be sent to them." },
  no_qr: { text: "No QR code was found in that picture. Try a sharper picture, or paste the link instead." },
  // wasm/api, the contact address (address.js)
  not_wisp_address: { text: "That is not a Wisp contact address." },
  address_corrupted: { text: "The contact address is corrupted: it was cut or changed. Ask for it again." },
  address_version: { text: "This contact address needs a newer version of Wisp. Reload the page to update, or ask for another address." },
  address_relay: { text: "The contact address names a relay address that is not valid. Ask for a new address." },
  address_gone: { text: "This contact address no longer works: its owner deleted or replaced it. Ask them for their new one." },
  own_address: { text: "That is your own contact address. Give it to others so they can ask to connect with you." },
  no_address: { text: "You have no contact address. Create one first." },
  address_exists: { text: "You already have a contact address. Delete it or make a new one instead." },
  no_request: { text: "That request is no longer waiting: it was answered, dropped or withdrawn." },
};

/**
 * The sentence for err (a CoreError or any Error) and whether a Retry
 * makes sense. Unknown codes, and errors with no code, get a general
 * sentence naming the action, never the error's own message.
 */
export function explain(err, what = "That", overrides = {}) {
  const code = err?.code;
  if (code && overrides[code]) return { text: overrides[code], retry: !!SENTENCES[code]?.retry, code };
  const s = code ? SENTENCES[code] : undefined;
  if (s) return { text: s.text, retry: !!s.retry, code };
  return { text: `${what} did not work. Try again; if it keeps failing, reload the page.`, retry: true, code };
}

/** The sentence for err. */
export function say(err, what, overrides) {
  return explain(err, what, overrides).text;
}
