// sw-register.js — registers the app-shell service worker (sw.js).
//
//   import { registerServiceWorker } from "./sw-register.js";
//   registerServiceWorker(); // once, after the core is ready
//
// Registering after the core has loaded lets the worker's install fill its
// cache from the browser's HTTP cache instead of downloading core.wasm twice.
// The worker caches only the immutable app shell (see sw.js), never messages.
//
// Updates: page loads try the network first, so a new release is used as
// soon as it is deployed; the browser also checks sw.js on every navigation,
// and a new release's worker installs, activates at once and replaces the
// old cache, so the next offline start gets the new shell. Nothing needs to
// be done by the page.

import { scriptURL } from "./dom.js";

// registerServiceWorker registers ./sw.js for the app's directory when the
// browser supports service workers and the page is a secure origin (https,
// or loopback for development). It resolves to the registration, or to null
// when there is none; a failure is reported with console.warn and never
// rejects, since the app works without the worker.
export async function registerServiceWorker() {
  const container = globalThis.navigator?.serviceWorker;
  if (!container || !servable(globalThis.location)) return null;
  try {
    return await container.register(scriptURL("./sw.js"), { scope: "./", type: "classic", updateViaCache: "none" });
  } catch (err) {
    console.warn(`Wisp works, but cannot be used offline: the service worker did not register (${err?.message ?? err}).`);
    return null;
  }
}

// servable reports whether a page at loc may register a service worker:
// https, or http on this machine.
function servable(loc) {
  if (!loc) return false;
  if (loc.protocol === "https:") return true;
  return loc.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(loc.hostname);
}
