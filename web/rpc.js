// rpc.js — the page's side of the core RPC.
//
// CoreClient wraps the Web Worker that runs the Go core (worker.js):
//   const core = new CoreClient(new Worker("./worker.js", { name: "wisp-core" }));
//   const info = await core.call("version");
//   core.addEventListener("core-event", (e) => console.log(e.detail.name, e.detail.data));
//   core.addEventListener("fatal", (e) => showCrash(e.detail.message));
// Calls made before the core is ready are queued by the worker.

/** An error from the core, with a stable machine-readable code. */
export class CoreError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CoreError";
    this.code = code;
  }
}

export class CoreClient extends EventTarget {
  #worker;
  #next = 1;
  #pending = new Map();
  #dead = null;

  constructor(worker) {
    super();
    this.#worker = worker;
    worker.addEventListener("message", (e) => this.#onMessage(e.data));
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      this.#fail(e.message ? `the core worker failed: ${e.message}` : "the core worker failed to load");
    });
    worker.addEventListener("messageerror", () => this.#fail("the core sent a message that could not be read"));
  }

  /** Why the core stopped, or null while it runs. */
  get stopped() {
    return this.#dead;
  }

  /**
   * Calls method with params (a JSON-serialisable value) and, for file
   * uploads, a Blob the core reads in slices; resolves with the result.
   */
  call(method, params = null, blob = undefined) {
    if (this.#dead) return Promise.reject(new CoreError("core_stopped", this.#dead));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#worker.postMessage({ id, method, params: params === null ? "" : JSON.stringify(params), blob });
    });
  }

  #onMessage(msg) {
    switch (msg?.type) {
      case "result": {
        const p = this.#take(msg.id);
        if (p) p.resolve(typeof msg.result !== "string" ? msg.result : msg.result === "" ? null : JSON.parse(msg.result));
        break;
      }
      case "error": {
        const p = this.#take(msg.id);
        // The method in the message helps reading the console; the page
        // shows people errors.js's sentence for the code, never this text.
        if (p) p.reject(new CoreError(msg.error.code, `${p.method}: ${msg.error.message}`));
        break;
      }
      case "event":
        this.dispatchEvent(new CustomEvent("core-event", { detail: { name: msg.name, data: JSON.parse(msg.data) } }));
        break;
      case "ready":
        this.dispatchEvent(new Event("ready"));
        break;
      case "csp":
        console.error(`CSP violation in the core worker: ${msg.directive} ${msg.blocked}`);
        break;
      case "fatal":
        this.#fail(msg.message);
        break;
    }
  }

  #take(id) {
    const p = this.#pending.get(id);
    this.#pending.delete(id);
    return p;
  }

  #fail(message) {
    if (this.#dead) return;
    this.#dead = message;
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(new CoreError("core_stopped", message));
    this.#pending.clear();
    this.dispatchEvent(new CustomEvent("fatal", { detail: { message } }));
  }
}
