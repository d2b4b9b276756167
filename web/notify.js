// notify.js — telling a person about new messages when they are not
// looking: opt-in browser notifications (asked only from a button in
// Settings), "New message" unless they allow sender and text, none for the
// chat they are looking at; the unread total in the tab title ("(3) Wisp")
// and on the app's badge where the browser has one.
import { h, toast } from "./dom.js";
import { state } from "./state.js";
import { nav } from "./nav.js";

const ON_KEY = "wisp.notify";          // "1" when the person turned notifications on
const CONTENT_KEY = "wisp.notify.content"; // "1" to show sender and text
const TITLE = "Wisp";

const pref = (k) => { try { return localStorage.getItem(k) === "1"; } catch { return false; } };
const setPref = (k, on) => { try { if (on) localStorage.setItem(k, "1"); else localStorage.removeItem(k); } catch { /* not kept */ } };

const supported = () => typeof Notification !== "undefined";
export const notificationsOn = () => supported() && pref(ON_KEY) && Notification.permission === "granted";

/** Tells about an incoming message, if the person wants to know and is not looking at its chat. */
export function onIncoming(m, c) {
  if (!notificationsOn()) return;
  if (document.visibilityState === "visible" && document.hasFocus() && state.current === m.contact) return;
  const content = pref(CONTENT_KEY);
  const title = content ? (m.author_name ? `${m.author_name} in ${c?.name ?? "a group"}` : (c?.name ?? "Wisp")) : "New message";
  const body = content ? (m.file ? `Sent a file: ${m.file.name}` : m.text.slice(0, 200)) : "Open Wisp to read it.";
  try {
    const n = new Notification(title, { body, tag: content ? `wisp-${m.contact}` : "wisp", silent: false });
    n.onclick = () => {
      window.focus();
      n.close();
      nav.openConversation(m.contact);
    };
  } catch {
    // Some browsers (Android) show notifications only through the service worker.
    navigator.serviceWorker?.ready.then((r) => r.showNotification(title, { body, tag: "wisp" })).catch(() => {});
  }
}

/** Puts the unread total in the tab title and on the app badge. */
export function updateUnreadTotal() {
  let n = 0;
  for (const c of state.contacts.values()) n += c.unread > 0 ? c.unread : 0;
  document.title = n > 0 ? `(${n}) ${TITLE}` : TITLE;
  try {
    if (n > 0) navigator.setAppBadge?.(n)?.catch?.(() => {});
    else navigator.clearAppBadge?.()?.catch?.(() => {});
  } catch { /* no badge */ }
}

function statusLine() {
  if (!supported()) return "This browser cannot show notifications.";
  if (Notification.permission === "denied") return "Notifications are blocked for this site in the browser's settings. Allow them there to turn them on.";
  if (notificationsOn()) return "On: you are told about new messages while Wisp is in another tab or window.";
  return "Off.";
}

/** The Notifications section of Settings. */
export function notificationSettings() {
  const status = h("p", { id: "notify-status", role: "status" }, statusLine());
  const content = h("input", { type: "checkbox", id: "notify-content", checked: pref(CONTENT_KEY), onchange: () => {
    setPref(CONTENT_KEY, content.checked);
    toast(content.checked ? "Notifications show who wrote and what." : "Notifications say only \"New message\".");
  } });
  const toggle = h("button", { type: "button", class: "secondary", id: "notify-toggle", disabled: !supported() || Notification.permission === "denied",
    onclick: async () => {
      if (notificationsOn()) {
        setPref(ON_KEY, false);
      } else {
        let p = Notification.permission;
        if (p === "default") {
          try { p = await Notification.requestPermission(); } catch { p = "denied"; }
        }
        setPref(ON_KEY, p === "granted");
        if (p !== "granted") toast("The browser did not allow notifications.");
      }
      status.textContent = statusLine();
      toggle.textContent = notificationsOn() ? "Turn notifications off" : "Turn notifications on";
      toggle.disabled = !supported() || Notification.permission === "denied";
    } }, notificationsOn() ? "Turn notifications off" : "Turn notifications on");
  return h("section", { "aria-labelledby": "notify-title" },
    h("h3", { id: "notify-title" }, "Notifications"),
    status, toggle,
    h("label", { class: "choice" }, content, " Show who wrote and what (otherwise only \"New message\")"),
    h("p", { class: "hint" }, "Notifications come only while Wisp is open in a tab: nothing is sent through anyone's push server."));
}

