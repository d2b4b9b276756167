// dom.js — small DOM helpers. No framework: elements are built with h().
//
//   h("button", { type: "button", onclick: go }, "Send")
//   h("p", { class: "meta" }, "text", h("strong", {}, "bold"))
// Attributes starting with "on" become event listeners; `class`, `for`,
// `aria-*`, `data-*` and the rest are set as attributes; `hidden`,
// `disabled`, `checked` and `value` are set as properties. Text is always
// inserted as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "disabled" || k === "checked" || k === "value" || k === "multiple") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

// Trusted Types: the CSP (require-trusted-types-for 'script'; trusted-types
// wisp) admits script URLs made by the "wisp" policy only, and it makes
// only the bundle's own scripts, next to the page: "./worker.js",
// "./sw.js". Browsers without Trusted Types take the plain string.
const scripts = globalThis.trustedTypes?.createPolicy("wisp", {
  createScriptURL(url) {
    if (/^\.\/[A-Za-z0-9_.-]+\.js$/.test(url)) return url;
    throw new TypeError("Wisp loads only its own scripts");
  },
});

/** A script URL for new Worker or serviceWorker.register. */
export const scriptURL = (url) => (scripts ? scripts.createScriptURL(url) : url);

/** Replaces the children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let toastTimer = 0;
/** Shows a short, polite notification. */
export function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

export function formatTime(iso) {
  return iso ? timeFmt.format(new Date(iso)) : "";
}

export function formatDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return dayFmt.format(d);
}

/** Base64 (from Go's []byte JSON) to an object URL of the given type. */
export function blobURL(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return URL.createObjectURL(new Blob([bytes], { type }));
}

/** Bytes of a Blob as base64, for Go's []byte JSON. */
export async function blobBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Resizes an image file to a square JPEG of size px, under maxBytes. */
export async function resizeAvatar(file, size = 96, maxBytes = 8000) {
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext("2d");
  const s = Math.min(bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, (bitmap.width - s) / 2, (bitmap.height - s) / 2, s, s, 0, 0, size, size);
  for (const q of [0.85, 0.7, 0.5, 0.3]) {
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: q });
    if (blob.size <= maxBytes) return blob;
  }
  throw new Error("the picture could not be made small enough");
}

/** Shows a full-page screen (before a profile is open) in <main>. */
export function screen(id, title, ...children) {
  const s = h("section", { id, class: "screen", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), ...children);
  mount($("#main"), s);
  return s;
}

/** A person's or profile's picture, or the initial of its name. */
export function avatarOf(p, size = 36) {
  const name = p?.name || "";
  return p?.avatar ? h("img", { class: "avatar", src: `data:image/jpeg;base64,${p.avatar}`, alt: "", width: size, height: size })
    : h("span", { class: "avatar initial", "aria-hidden": "true" }, name ? name.slice(0, 1) : "?");
}
