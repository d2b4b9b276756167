// confirm.js — a modal yes/no question, instead of window.confirm (which
// blocks the page and cannot be styled or labelled).
//
//   if (await confirmDialog({ title: "Leave Team?", text: "…", confirm: "Leave" })) …
import { h } from "./dom.js";

let seq = 0;

/**
 * Asks a question in a modal dialog. Resolves true when the person
 * presses the confirm button, false on Cancel or Escape. Focus starts on
 * Cancel (the safe answer) and goes back where it was.
 */
export function confirmDialog({ title, text, confirm, danger = true }) {
  return new Promise((resolve) => {
    const n = ++seq;
    const back = document.activeElement;
    const done = (answer) => {
      if (!dialog.open) return;
      dialog.close();
      dialog.remove();
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      resolve(answer);
    };
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => done(false) }, "Cancel");
    const ok = h("button", { type: "button", class: danger ? "danger solid" : null, onclick: () => done(true) }, confirm);
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": `confirm-title-${n}`, "aria-describedby": `confirm-text-${n}`,
      oncancel: (e) => { e.preventDefault(); done(false); } },
    h("h2", { id: `confirm-title-${n}` }, title),
    h("p", { id: `confirm-text-${n}` }, text),
    h("div", { class: "row end" }, cancel, ok));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
