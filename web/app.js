// app.js — the Wisp page. Starts the core worker and shows its state.
import { CoreClient } from "./rpc.js";

const STARTUP_TIMEOUT_MS = 60_000;

const $ = (id) => document.getElementById(id);

function show(id) {
  for (const s of document.querySelectorAll("main > .screen")) s.hidden = s.id !== id;
}

function showError(message) {
  $("error-message").textContent = message;
  show("error");
  $("reload").focus();
}

async function main() {
  $("reload").addEventListener("click", () => location.reload());
  let worker;
  try {
    worker = new Worker("./worker.js", { name: "wisp-core" });
  } catch (err) {
    showError(`This browser could not start a Web Worker (${err.message}).`);
    return;
  }
  const core = new CoreClient(worker);
  core.addEventListener("fatal", (e) => showError(`The Wisp core stopped: ${e.detail.message}.`));
  $("status").textContent = "Starting the encrypted core…";

  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("the core did not answer within a minute")), STARTUP_TIMEOUT_MS));
  try {
    const info = await Promise.race([core.call("version"), timeout]);
    $("core-version").textContent = `${info.version} (${info.go}${info.revision ? ", " + info.revision.slice(0, 12) : ""})`;
    $("status").textContent = "ready";
    document.documentElement.dataset.state = "ready";
    performance.mark("wisp-ready");
    show("ready");
  } catch (err) {
    document.documentElement.dataset.state = "error";
    if ($("error").hidden) showError(`The Wisp core did not start: ${err.message}.`);
  }
}

main();
