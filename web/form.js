// form.js — helpers for the forms of every screen: labelled fields,
// error lines and busy buttons.
import { h, $ } from "./dom.js";
import { explain } from "./errors.js";

/** A labelled field around input (given an id if it has none), with an optional hint. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" },
    h("label", { for: id }, label), input, hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

/** An error line for a form, hidden while empty; announced when set. */
export function errorLine(id) {
  return h("p", { id, class: "form-error", role: "alert", hidden: true });
}

export function setError(id, text) {
  const el = $(`#${id}`);
  if (!el) return;
  el.textContent = text ?? "";
  el.hidden = !text;
}

export function busy(button, on, label) {
  button.disabled = on;
  if (label) button.textContent = label;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

/**
 * Shows err on the error line id as a sentence for a person (errors.js),
 * with a Retry button that calls retry when trying again can help.
 */
export function showError(id, err, what, { retry, overrides } = {}) {
  const el = $(`#${id}`);
  if (!el) return;
  const e = explain(err, what, overrides);
  el.replaceChildren(e.text);
  if (retry && e.retry) {
    el.append(" ", h("button", { type: "button", class: "link", onclick: () => { setError(id, ""); retry(); } }, "Retry"));
  }
  el.hidden = false;
}
