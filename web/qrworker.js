// qrworker.js — reads a QR code from a picture, in its own worker with its
// own small WebAssembly module (qr.wasm, from wasm/qrworker), loaded only
// when someone picks a picture: the reader is not part of the core.
//
// Protocol (see qr.js):
//   page → worker  {id, image: ArrayBuffer}
//   worker → page  {id, link} | {id, code}   code: too_long, invalid, no_qr, internal
"use strict";

const scripts = self.trustedTypes?.createPolicy("wisp", {
  createScriptURL(url) {
    if (/^\.\/[A-Za-z0-9_.-]+\.js$/.test(url)) return url;
    throw new TypeError("Wisp loads only its own scripts");
  },
});
const wasmExec = "./wasm_exec.js";
importScripts(scripts ? scripts.createScriptURL(wasmExec) : wasmExec);

const ready = (async () => {
  const go = new Go();
  const started = new Promise((resolve) => { self.wispQRReady = resolve; });
  const response = await fetch("./qr.wasm");
  if (!response.ok) throw new Error(`qr.wasm: HTTP ${response.status}`);
  const { instance } = await WebAssembly.instantiateStreaming(response, go.importObject);
  go.run(instance);
  await started;
})();

self.onmessage = async (e) => {
  const { id, image } = e.data ?? {};
  try {
    await ready;
    const out = self.wispDecodeQR(new Uint8Array(image));
    self.postMessage({ id, link: out.link, code: out.code });
  } catch {
    self.postMessage({ id, code: "internal" });
  }
};
