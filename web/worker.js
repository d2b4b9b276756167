// worker.js — hosts the Go core (core.wasm) in a dedicated Web Worker.
//
// Protocol with the page (see rpc.js):
//   page → worker  {id, method, params, blob}   params: JSON string or ""; blob: a File to upload, or undefined
//   worker → page  {type: "result", id, result}  result: JSON string, a Uint8Array (file.read, transferred)
//                                                 or a Blob (file.blob, made here from file.read's parts)
//                  {type: "error", id, error: {code, message}}
//                  {type: "event", name, data}   data: JSON string
//                  {type: "ready"} once, {type: "fatal", message} when the core cannot run
//                  {type: "csp", directive, blocked} on a CSP violation inside the worker
"use strict";

// Trusted Types (see scriptURL in dom.js): the worker's CSP admits only
// script URLs of the "wisp" policy, which makes only the bundle's own.
const scripts = self.trustedTypes?.createPolicy("wisp", {
  createScriptURL(url) {
    if (/^\.\/[A-Za-z0-9_.-]+\.js$/.test(url)) return url;
    throw new TypeError("Wisp loads only its own scripts");
  },
});
// The core's download starts first; compiling it is most of a first load.
const coreResponse = fetch("./core.wasm");
const wasmExec = "./wasm_exec.js";
importScripts(scripts ? scripts.createScriptURL(wasmExec) : wasmExec);

let core = null;

// CSP violations inside the worker are invisible to the page's console;
// forward them so the page reports them (and the e2e tests catch them).
self.addEventListener("securitypolicyviolation", (e) =>
  self.postMessage({ type: "csp", directive: e.violatedDirective, blocked: e.blockedURI }));
const queue = [];

function fatal(message) {
  self.postMessage({ type: "fatal", message });
  self.close();
}

const READ_SIZE = 1 << 20; // file.read's part size (api.ReadSize)

/** file.blob {handle, type}: reads an opened file to its end with
 * file.read and builds the Blob here, so the copy into the Blob is made
 * off the page's main thread. Rejects (no Blob) unless the whole file
 * matched its description. */
async function readBlob(params) {
  const { handle, type } = JSON.parse(params);
  // Grown part by part: a Blob made of a Blob refers to it, so the parts
  // are not all held at once.
  let blob = new Blob([], { type: typeof type === "string" ? type : "" });
  for (;;) {
    const part = await core.call("file.read", JSON.stringify({ handle }));
    blob = new Blob([blob, part], { type: blob.type });
    if (part.length < READ_SIZE) return blob;
  }
}

function handle(msg) {
  const { id, method, params, blob } = msg;
  (method === "file.blob" ? readBlob(params) : core.call(method, params, blob)).then(
    (result) => self.postMessage({ type: "result", id, result }, result instanceof Uint8Array ? [result.buffer] : []),
    (err) => self.postMessage({
      type: "error", id,
      error: { code: err?.code ?? "internal", message: err?.message ?? String(err) },
    }),
  );
}

self.onmessage = (e) => {
  if (core) handle(e.data);
  else queue.push(e.data);
};

async function start() {
  const go = new Go();
  const ready = new Promise((resolve) => { self.wispCoreReady = resolve; });
  const response = await coreResponse;
  if (!response.ok) throw new Error(`core.wasm: HTTP ${response.status}`);
  const { instance } = await WebAssembly.instantiateStreaming(response, go.importObject);
  go.run(instance).then(
    () => fatal("the core stopped unexpectedly"),
    (err) => fatal(`the core crashed: ${err?.message ?? err}`),
  );
  core = await ready;
  core.setEventSink((name, data) => self.postMessage({ type: "event", name, data }));
  self.postMessage({ type: "ready" });
  for (const msg of queue.splice(0)) handle(msg);
}

start().catch((err) => fatal(`could not load the core: ${err?.message ?? err}`));
