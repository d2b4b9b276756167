// sw.js — Wisp's service worker. It caches the app shell and nothing else.
//
// The shell is index.html plus the content-hashed files it reaches (scripts,
// styles, the wasm core, icons). The bundle tool (server/bundle) writes their
// names into SHELL and a hash of the whole bundle into VERSION when it builds
// a release; the cache is named after VERSION.
//
//   navigation to the app   network first; offline, the cached index.html
//   a file of SHELL         cache first (a hashed name never changes content)
//   anything else           network only, never stored: config.json, other
//                           paths, non-GET and cross-origin requests
//
// Messages, contacts and keys never pass through here: they live encrypted
// in IndexedDB, and relays are reached by WebSocket, which is not a fetch.
//
// Updates: navigations try the network first, so a new release's index.html
// (and through it its new hashed files) is used as soon as it is deployed.
// The browser also re-fetches this file on navigation (the host serves it
// with no-cache); the new bundle's VERSION differs, so the new sw.js installs
// into a new cache, activates at once (skipWaiting is safe: every cached file
// is immutable) and deletes the older caches. An offline start then gets the
// new shell.
//
// Development (wisp-host -dev serves web/ as it is): the placeholders stay,
// VERSION is not a hash, and this worker caches nothing, answers nothing and
// deletes any shell cache a release build left on this origin.
"use strict";

const SHELL = [/*BUNDLE_SHELL*/];
const VERSION = "/*BUNDLE_VERSION*/";

const RELEASE = /^[0-9a-f]{16}$/.test(VERSION);
const PREFIX = "wisp-shell-";
const CACHE = PREFIX + VERSION;
const ROOT = new URL("./", self.location).href;
const INDEX = new URL("./index.html", self.location).href;
const SHELL_URLS = new Set(SHELL.map((p) => new URL(p, self.location).href));

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    if (RELEASE) {
      // All or nothing: if one file fails, this version is not installed
      // and the previous one (if any) stays in charge.
      const cache = await caches.open(CACHE);
      await cache.addAll([INDEX, ...SHELL_URLS]);
    }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// Without a fetch handler (development) the browser sends no request
// through this worker at all.
if (RELEASE) self.addEventListener("fetch", onFetch);

// onFetch answers navigations to the app and shell files; for anything else
// it does not call respondWith, so the browser fetches it as if there were no
// worker.
function onFetch(event) {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.search !== "") return;
  url.hash = "";
  if (request.mode === "navigate") {
    if (url.href === ROOT || url.href === INDEX) event.respondWith(networkThenIndex(request));
    return;
  }
  if (SHELL_URLS.has(url.href)) event.respondWith(cacheThenNetwork(request, url.href));
}

// networkThenIndex loads the page from the host and falls back to the
// cached index.html only when the network fails (offline), never on an HTTP
// error, which the host's answer shows better.
async function networkThenIndex(request) {
  try {
    return await fetch(request);
  } catch (err) {
    const cached = await (await caches.open(CACHE)).match(INDEX);
    if (cached) return cached;
    throw err;
  }
}

// cacheThenNetwork answers a shell file from the cache, or from the network
// without storing it (the cache is filled only at install, all at once).
async function cacheThenNetwork(request, href) {
  // ignoreVary: the body of a hashed file is the same whatever the encoding.
  const cached = await (await caches.open(CACHE)).match(href, { ignoreVary: true });
  return cached ?? fetch(request);
}
