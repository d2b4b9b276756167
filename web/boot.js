// boot.js — starts the core before the rest of the page has loaded.
//
// index.html loads this module on its own, with async, ahead of app.js:
// it needs only rpc.js and dom.js, so the core worker is created while the
// page's other modules are still downloading, and core.wasm downloads and
// compiles meanwhile (the longest part of a first load). It also starts
// fetching the host's preset relays. app.js takes both from here:
//
//   const { core, relays } = started();   // throws what stopped the worker
//
// The CoreClient is made here too, at once, so nothing the worker says
// before app.js listens is lost: a failure is kept in core.stopped.
import { CoreClient } from "./rpc.js";
import { scriptURL } from "./dom.js";

let core = null;
let failure = null;
try {
  core = new CoreClient(new Worker(scriptURL("./worker.js"), { name: "wisp-core" }));
} catch (err) {
  failure = err;
}

const relays = fetchPresetRelays();

/** The host's preset relays (config.json), or [] when it has none. */
async function fetchPresetRelays() {
  try {
    const res = await fetch("./config.json", { cache: "no-cache" });
    if (!res.ok) return [];
    const cfg = await res.json();
    return Array.isArray(cfg.relays) ? cfg.relays : [];
  } catch {
    return [];
  }
}

/** The core started at load and a promise of the preset relays; throws the
 * error that kept the browser from starting the worker. */
export function started() {
  if (failure) throw failure;
  return { core, relays };
}
