// smoke.mjs — drives one headless Firefox tab for the Go test TestFirefox
// (web/e2e/firefox_test.go), which holds the steps and every label: this
// script knows nothing of Wisp's pages.
//
//   node web/e2e/firefox/smoke.mjs <firefox-executable> <downloads-dir>
//
// It reads one JSON command a line on stdin and answers each with one
// JSON line on stdout: {"ok": true, "value": …} or {"ok": false,
// "error": "…"}. The first line it writes, once Firefox runs, is
// {"ok": true, "value": "<browser version>"}. Progress and the page's
// console go to stderr. Elements are found by accessible role and name
// (WebDriver BiDi's accessibility locator, through puppeteer-core's
// ::-p-aria selector), never by CSS.
//
// Commands ({"op": …, "timeout": ms} and):
//   goto {url}                       open url and wait for its load event
//   fill {name, role, text, enter}   type text into the field (role
//                                    "textbox" unless given), then Enter
//   click {name, role}               click the enabled element (role "button")
//   wait {name, role}                wait for the element to be shown
//   value {name, role, contains}     the field's value, once it contains contains
//   line {within, role, text}        wait for a line reading exactly text in the
//                                    element named within (the page if "")
//   upload {name, role, path}        click the element, answer the file dialog
//   shot {path}                      save a screenshot of the whole page
//   errors {}                        console errors, uncaught exceptions and
//                                    CSP violations so far, as strings
//   quit {}                          close Firefox and exit
// Closing stdin also closes Firefox.
import puppeteer from "puppeteer-core";
import { createInterface } from "node:readline";

const [executablePath, downloads] = process.argv.slice(2);
if (!executablePath || !downloads) {
  console.error("usage: node smoke.mjs <firefox-executable> <downloads-dir>");
  process.exit(2);
}

const log = (...a) => console.error("[firefox]", ...a);

// The same probe as the Chromium tabs (cspProbe in harness_test.go).
const cspProbe = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`;

// Records the page's calls to the core worker (rpc.js) and the worker's
// answers, only so that a failure can say which call never came back.
const rpcProbe = `(() => {
  const calls = window.__wispCalls = new Map();
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (msg, ...rest) {
    if (msg && msg.method) calls.set(msg.id, { method: msg.method, at: Math.round(performance.now()) });
    if (!this.__wispTraced) {
      this.__wispTraced = true;
      this.addEventListener("message", (e) => { if (e.data?.type === "result" || e.data?.type === "error") calls.delete(e.data.id); });
    }
    return post.call(this, msg, ...rest);
  };
})();`;

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
  extraPrefsFirefox: {
    // "Save" writes to downloads without asking.
    "browser.download.folderList": 2,
    "browser.download.dir": downloads,
    "browser.download.useDownloadDir": true,
    "browser.download.always_ask_before_handling_new_types": false,
    "browser.download.start_downloads_in_tmp_dir": false,
  },
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
await page.evaluateOnNewDocument(cspProbe);
await page.evaluateOnNewDocument(rpcProbe);
const errors = [];
page.on("console", (m) => {
  log(`console.${m.type()}: ${m.text()}`);
  if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) errors.push(`console.${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => {
  log(`uncaught: ${e?.message ?? e}`);
  errors.push(`uncaught: ${e?.message ?? e}`);
});

/** The ::-p-aria selector of the element with this accessible name and role. */
function aria(name, role) {
  if (/["\]]/.test(name) || /["\]]/.test(role)) throw new Error(`cannot select the name ${JSON.stringify(name)}: it has " or ]`);
  return `::-p-aria([name="${name}"][role="${role}"])`;
}

/** Waits for the shown element named name with role, and returns it. */
async function find(name, role, timeout, enabled = false) {
  const deadline = Date.now() + timeout;
  for (;;) {
    for (const el of await page.$$(aria(name, role))) {
      const ok = await el.evaluate((e, enabled) => {
        const shown = e.checkVisibility?.() ?? e.getClientRects().length > 0;
        // Behind an open modal dialog, nothing can be reached.
        const modal = document.querySelector("dialog:modal");
        return shown && (!modal || modal.contains(e)) && !(enabled && (e.disabled || e.getAttribute("aria-disabled") === "true"));
      }, enabled).catch(() => false);
      if (ok) return el;
      await el.dispose().catch(() => {});
    }
    if (Date.now() > deadline) throw new Error(`no ${enabled ? "enabled " : ""}${role} named "${name}" was shown within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Clicks el with the mouse, as a person would, after scrolling it to the middle. */
async function press(el) {
  await el.evaluate((e) => e.scrollIntoView({ block: "center", inline: "center" }));
  await el.click();
}

const ops = {
  async goto({ url, timeout }) {
    await page.goto(url, { waitUntil: "load", timeout });
  },
  async fill({ name, role = "textbox", text, enter, timeout }) {
    const el = await find(name, role, timeout, true);
    await press(el);
    await el.evaluate((e) => { e.value = ""; });
    await el.type(text);
    if (enter) await page.keyboard.press("Enter");
  },
  async click({ name, role = "button", timeout }) {
    await press(await find(name, role, timeout, true));
  },
  async wait({ name, role, timeout }) {
    await find(name, role, timeout);
  },
  async value({ name, role = "textbox", contains = "", timeout }) {
    const el = await find(name, role, timeout);
    const handle = await page.waitForFunction((e, s) => e.value.includes(s) && e.value, { timeout, polling: 50 }, el, contains);
    return handle.jsonValue();
  },
  async line({ within = "", role = "", text, timeout }) {
    const deadline = Date.now() + timeout;
    const scope = within ? await find(within, role, timeout) : await page.$("body");
    await page.waitForFunction((e, t) => e.innerText.split("\n").some((l) => l.trim() === t),
      { timeout: Math.max(1, deadline - Date.now()), polling: 50 }, scope, text).catch((err) => {
      throw new Error(`"${text}" was not shown${within ? ` in ${role} "${within}"` : ""}: ${err.message}`);
    });
  },
  async upload({ name, role = "button", path, timeout }) {
    const el = await find(name, role, timeout, true);
    const [chooser] = await Promise.all([page.waitForFileChooser({ timeout }), press(el)]);
    await chooser.accept([path]);
  },
  async shot({ path }) {
    await page.screenshot({ path, fullPage: true });
  },
  async errors() {
    const csp = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
    return [...errors, ...csp.map((v) => `CSP violation: ${v}`)];
  },
  async quit() {
    await browser.close();
    process.exit(0);
  },
};

/** What the page shows and which core calls are unanswered, for an error. */
async function diagnose() {
  try {
    return await page.evaluate(() => {
      const now = performance.now();
      const pending = [...(window.__wispCalls?.values() ?? [])].map((c) => `${c.method} (${Math.round(now - c.at)} ms)`);
      return `\nunanswered core calls: ${pending.join(", ") || "none"}\nthe page shows:\n${document.body.innerText}`;
    });
  } catch (err) {
    return `\n(the page could not be read: ${err?.message ?? err})`;
  }
}

const reply = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
reply({ ok: true, value: await browser.version() });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const op = ops[cmd.op];
    if (!op) throw new Error(`unknown command ${cmd.op}`);
    const started = Date.now();
    const value = await op({ timeout: 30_000, ...cmd });
    log(`${cmd.op} ${cmd.name ?? cmd.text ?? cmd.url ?? cmd.path ?? ""} (${Date.now() - started} ms)`);
    reply({ ok: true, value: value ?? null });
  } catch (err) {
    const error = String(err?.message ?? err) + await diagnose();
    log(`${cmd?.op ?? "?"} failed: ${error}`);
    reply({ ok: false, error });
  }
}
await browser.close();
