// qr.js — the page's side of the QR picture reader (qrworker.js). The
// worker starts on the first picture and stays for the next ones.
//
//   const link = await readQR(file); // rejects with an Error whose code errors.js words
import { scriptURL } from "./dom.js";

let worker = null;
let next = 1;
const pending = new Map();

function start() {
  worker = new Worker(scriptURL("./qrworker.js"), { name: "wisp-qr" });
  worker.onmessage = (e) => {
    const p = pending.get(e.data?.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.link) p.resolve(e.data.link);
    else p.reject(Object.assign(new Error("the picture could not be read"), { code: e.data.code ?? "internal" }));
  };
  worker.onerror = () => {
    for (const p of pending.values()) p.reject(Object.assign(new Error("the QR reader failed"), { code: "internal" }));
    pending.clear();
    worker = null;
  };
}

/** The text of the QR code in a picture file (PNG, JPEG or GIF). */
export async function readQR(file) {
  if (file.size > 8 << 20) throw Object.assign(new Error("the picture is too large"), { code: "too_long" });
  const image = await file.arrayBuffer();
  if (!worker) start();
  const id = next++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, image }, [image]);
  });
}
