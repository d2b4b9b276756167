// state.js — what the page knows, shared by every screen module. The core
// owns the real state; this is the page's copy of what it shows.
export const state = {
  core: null,
  version: null,
  limits: { max_text_bytes: 8000 },
  profiles: [],
  profile: null,        // ProfileInfo of the unlocked profile
  contacts: new Map(),  // id → Contact
  current: null,        // open conversation's contact id
  messages: new Map(),  // id → Message[] (oldest first, loaded pages)
  complete: new Set(),  // contact ids whose history is fully loaded
  gen: new Map(),       // contact id → how many times its conversation was opened
  relaysDown: new Set(),
  delays: new Map(),    // contact id → why messages to it wait ("" when they do not)
  invite: null,         // an invitation link opened in this tab, not yet used
  releaseLock: null,
  persisted: null,
};

/** Messages per page of history. */
export const PAGE = 50;

// The invitation a newcomer opened survives a reload of this tab before
// the profile exists: it is kept in sessionStorage (this tab only, never
// sent to the host) until it is used or dismissed.
const INVITE_KEY = "wisp.invite";

export function keepInvite(link) {
  state.invite = link;
  try {
    if (link) sessionStorage.setItem(INVITE_KEY, link);
    else sessionStorage.removeItem(INVITE_KEY);
  } catch { /* storage disabled: memory only */ }
}

export function restoreInvite() {
  try { state.invite ??= sessionStorage.getItem(INVITE_KEY); } catch { /* none */ }
  return state.invite;
}

// The conversation open before a reload is reopened after it (an id, in
// sessionStorage: this tab only).
const OPEN_KEY = "wisp.open";
export function rememberOpen(id) {
  try {
    if (id) sessionStorage.setItem(OPEN_KEY, id);
    else sessionStorage.removeItem(OPEN_KEY);
  } catch { /* none */ }
}
export function lastOpen() {
  try { return sessionStorage.getItem(OPEN_KEY); } catch { return null; }
}

// The canary: which profiles this browser had, kept outside IndexedDB, so
// storage the browser wiped is told apart from a first visit.
export const CANARY_KEY = "wisp.canary";

export function canary() {
  try { return JSON.parse(localStorage.getItem(CANARY_KEY) ?? "null"); } catch { return null; }
}

export function setCanary() {
  try {
    localStorage.setItem(CANARY_KEY, JSON.stringify({ profiles: state.profiles.map((p) => p.id), at: Date.now() }));
  } catch { /* storage disabled: nothing to compare later */ }
}
