// msgparts.js — pieces every kind of message shows: its time (short, with
// the full date and time on hover and focus), its status, and keeping the
// view at the bottom while pictures load.
import { h, $, formatTime } from "./dom.js";
import { groupStatusText } from "./groups.js";

export function statusText(m) {
  if (m.recipients) return groupStatusText(m);
  return { pending: "Sending…", sent: "Sent", delivered: "Delivered", failed: "Failed" }[m.status] ?? "";
}

const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
export const fullTime = (iso) => (iso ? fullFmt.format(new Date(iso)) : "");

/** The time of a message: short, with the full date and time on hover and focus. */
export function timeEl(iso) {
  return h("time", { datetime: iso, title: fullTime(iso), "data-full": fullTime(iso) }, formatTime(iso));
}

/** Whether the list is scrolled to (near) its bottom. */
export const atBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 60;

/** Keeps the view at the bottom when a picture that was there finishes loading. */
export function stickOnLoad(img) {
  const list = $("#messages");
  if (!list) return;
  const bottom = atBottom(list);
  img.addEventListener("load", () => { if (bottom) list.scrollTop = list.scrollHeight; }, { once: true });
}
