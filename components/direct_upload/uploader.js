// PulseVault direct uploader: the browser sends recordings straight to S3 through presigned part URLs.
//
// Streamlit calls the default export on mount and again whenever the Python side sends new data, with
// the same parentElement; one Uploader per parentElement keeps the uploads alive across those calls.
// Talking to Python: setTriggerValue("request", {id, op, ...}) asks; the answer arrives as
// data.responses[id] on a later call. Requests go one at a time (a trigger sent while another rerun is
// under way could be merged away) and are re-sent with the same id if no answer comes: Python answers a
// repeated id from its cache.

const MIB = 1024 * 1024;
// Byte units as the rest of the app writes them (Python's lib/units.py hands them over in data.byteUnits).
let byteUnits = ["B", "KiB", "MiB", "GiB", "TiB"];
let byteStep = 1024;
const HEAD_BYTES = MIB;
const MAX_ATTEMPTS = 6;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const REQUEST_TIMEOUT_MS = 45000;
const URL_MARGIN_MS = 120000;
const RATE_WINDOW_MS = 5000;

const instances = new WeakMap();

export default function (args) {
  let ui = instances.get(args.parentElement);
  if (!ui) {
    ui = new Uploader(args.parentElement);
    instances.set(args.parentElement, ui);
  }
  ui.update(args.data || {}, args.setTriggerValue);
  return () => {
    ui.destroy();
    instances.delete(args.parentElement);
  };
}

class CorsError extends Error {}

class Uploader {
  constructor(root) {
    this.root = root;
    this.data = {};
    this.queue = [];
    this.entries = [];
    this.running = false;
    this.waiting = new Map(); // request id -> {resolve, sent, payload, timer}
    this.sending = Promise.resolve();
    this.build();
  }

  build() {
    const box = document.createElement("div");
    box.className = "pv-du";
    box.innerHTML = `
      <label class="pv-drop" data-testid="pv-direct-drop">
        <input type="file" multiple data-testid="pv-direct-input" />
        <span class="pv-drop-title">Drop large recordings here, or click to choose</span>
        <span class="pv-drop-hint"></span>
      </label>
      <div class="pv-blocked" hidden></div>
      <ul class="pv-files" data-testid="pv-direct-files"></ul>`;
    this.root.appendChild(box);
    this.box = box;
    this.input = box.querySelector("input");
    this.drop = box.querySelector(".pv-drop");
    this.list = box.querySelector(".pv-files");
    this.input.addEventListener("change", () => {
      this.add(Array.from(this.input.files || []));
      this.input.value = "";
    });
    this.drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      this.drop.classList.add("pv-over");
    });
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("pv-over"));
    this.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      this.drop.classList.remove("pv-over");
      this.add(Array.from(e.dataTransfer ? e.dataTransfer.files : []));
    });
  }

  update(data, setTriggerValue) {
    this.data = data;
    this.setTriggerValue = setTriggerValue;
    if (Array.isArray(data.byteUnits) && data.byteStep > 1) [byteUnits, byteStep] = [data.byteUnits, data.byteStep];
    const hint = this.box.querySelector(".pv-drop-hint");
    hint.textContent = data.hint || "";
    if (data.accept) this.input.accept = data.accept;
    const blocked = this.box.querySelector(".pv-blocked");
    blocked.hidden = !data.blocked;
    blocked.textContent = data.blocked || "";
    this.drop.classList.toggle("pv-disabled", Boolean(data.blocked));
    this.input.disabled = Boolean(data.blocked);
    for (const [id, response] of Object.entries(data.responses || {})) {
      const pending = this.waiting.get(id);
      if (pending) {
        clearTimeout(pending.timer);
        this.waiting.delete(id);
        pending.resolve(response);
      }
    }
  }

  destroy() {
    for (const entry of this.entries) entry.stopAll();
    for (const pending of this.waiting.values()) clearTimeout(pending.timer);
    this.waiting.clear();
  }

  // --- talking to Python ---------------------------------------------------------------------------

  request(op, payload, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const id = `${op}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const message = { id, op, ...payload };
    const answer = new Promise((resolve) => {
      const pending = { resolve, timer: null };
      const send = () => {
        this.setTriggerValue("request", message);
        if (timeoutMs) pending.timer = setTimeout(send, timeoutMs); // same id: answered from Python's cache
      };
      pending.send = send;
      this.waiting.set(id, pending);
    });
    // One request in flight at a time: the next is sent once this one is answered.
    const turn = this.sending.then(() => {
      this.waiting.get(id)?.send();
      return answer;
    });
    this.sending = turn.catch(() => {});
    return turn;
  }

  // --- the queue -----------------------------------------------------------------------------------

  add(files) {
    if (this.data.blocked) return;
    for (const file of files) {
      const entry = new Entry(this, file);
      this.entries.push(entry);
      this.list.appendChild(entry.row);
      this.queue.push(entry);
    }
    this.pump();
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const entry = this.queue.shift();
        if (entry.state === "cancelled") continue;
        await entry.run();
      }
    } finally {
      this.running = false;
    }
  }
}

class Entry {
  constructor(uploader, file) {
    this.up = uploader;
    this.file = file;
    this.state = "waiting";
    this.controllers = new Set();
    this.etags = new Map();
    this.urls = new Map(); // part number -> {url, expires}
    this.inFlight = new Map(); // part number -> bytes sent so far
    this.samples = [];
    this.row = document.createElement("li");
    this.row.className = "pv-file";
    this.row.dataset.testid = "pv-direct-file";
    this.row.innerHTML = `
      <div class="pv-file-head"><span class="pv-name"></span><span class="pv-status" data-testid="pv-direct-status"></span></div>
      <progress max="1" value="0"></progress>
      <div class="pv-file-foot"><span class="pv-detail" data-testid="pv-direct-detail"></span>
        <span class="pv-buttons">
          <button type="button" class="pv-pause">Pause</button>
          <button type="button" class="pv-resume" hidden>Resume</button>
          <button type="button" class="pv-cancel">Cancel</button>
        </span></div>`;
    this.row.querySelector(".pv-name").textContent = `${file.name} · ${bytes(file.size)}`;
    this.bar = this.row.querySelector("progress");
    this.statusEl = this.row.querySelector(".pv-status");
    this.detailEl = this.row.querySelector(".pv-detail");
    this.pauseBtn = this.row.querySelector(".pv-pause");
    this.resumeBtn = this.row.querySelector(".pv-resume");
    this.cancelBtn = this.row.querySelector(".pv-cancel");
    this.pauseBtn.addEventListener("click", () => this.pause());
    this.resumeBtn.addEventListener("click", () => this.resume());
    this.cancelBtn.addEventListener("click", () => this.cancel());
    this.show("Waiting");
  }

  show(status, detail) {
    this.statusEl.textContent = status;
    this.row.dataset.state = this.state;
    if (detail !== undefined) this.detailEl.textContent = detail;
    const active = this.state === "uploading";
    this.pauseBtn.hidden = !active;
    this.resumeBtn.hidden = this.state !== "paused";
    this.cancelBtn.hidden = !["waiting", "hashing", "uploading", "paused", "failed"].includes(this.state);
  }

  identity() {
    return { name: this.file.name, size: this.file.size, lastModified: this.file.lastModified,
             headHash: this.headHash, type: this.file.type };
  }

  async run() {
    try {
      this.state = "hashing";
      this.show("Reading the start of the file…", "");
      this.headHash = await headHash(this.file);
      if (this.state === "cancelled") return;
      this.state = "starting";
      this.show("Asking the server for an upload…");
      const r = await this.up.request("start", { file: this.identity() });
      if (!r.ok) return this.fail(r.error);
      this.handle = r.handle;
      this.partSize = r.partSize;
      this.partCount = r.partCount;
      this.doneParts = new Set(r.done || []);
      this.doneBytes = (r.done || []).reduce((sum, n) => sum + this.partBytes(n), 0);
      this.resumedBytes = this.doneBytes;
      this.row.dataset.resumedParts = String(this.doneParts.size);
      this.takeUrls(r.urls, r.expiresIn);
      if (this.state === "cancelled") return this.cancel(); // cancelled while the server was opening it
      if (!r.uploaded) {
        if (r.resumed && this.doneParts.size) {
          this.show("Resuming", `${this.doneParts.size} of ${this.partCount} parts already in the bucket`);
        }
        await this.sendParts();
        if (this.state !== "uploading") return; // paused or cancelled: resume() carries on
      }
      await this.complete();
    } catch (err) {
      if (this.state === "paused" || this.state === "cancelled") return;
      this.fail(err instanceof CorsError ? err.message : `The upload stopped: ${err.message || err}`);
    }
  }

  partBytes(n) {
    return Math.max(0, Math.min(this.partSize, this.file.size - (n - 1) * this.partSize));
  }

  takeUrls(urls, expiresIn) {
    const expires = Date.now() + (expiresIn || 3600) * 1000 - URL_MARGIN_MS;
    for (const [n, url] of Object.entries(urls || {})) this.urls.set(Number(n), { url, expires });
  }

  async urlFor(n) {
    const known = this.urls.get(n);
    if (known && known.expires > Date.now()) return known.url;
    if (!this.signing) {
      // Sign a batch: this part and the next missing ones without a fresh URL.
      const wanted = [n];
      for (let m = 1; m <= this.partCount && wanted.length < (this.up.data.signBatch || 64); m++) {
        const u = this.urls.get(m);
        if (m !== n && !this.doneParts.has(m) && !this.etags.has(m) && !(u && u.expires > Date.now())) wanted.push(m);
      }
      this.signing = this.up.request("sign", { handle: this.handle, file: this.identity(), parts: wanted })
        .finally(() => { this.signing = null; });
    }
    const r = await this.signing;
    if (!r.ok) throw new Error(r.error);
    this.takeUrls(r.urls, r.expiresIn);
    const fresh = this.urls.get(n);
    if (!fresh) return this.urlFor(n);
    return fresh.url;
  }

  async sendParts() {
    this.state = "uploading";
    this.started = this.started || Date.now();
    this.show("Uploading");
    const todo = [];
    for (let n = 1; n <= this.partCount; n++) if (!this.doneParts.has(n) && !this.etags.has(n)) todo.push(n);
    const workers = Math.max(1, Math.min(this.up.data.concurrency || 4, todo.length));
    const next = () => todo.shift();
    this.tick = setInterval(() => this.progress(), 500);
    try {
      await Promise.all(Array.from({ length: workers }, async () => {
        for (let n = next(); n !== undefined && this.state === "uploading"; n = next()) {
          const etag = await this.putPart(n);
          this.etags.set(n, etag);
          this.doneBytes += this.partBytes(n);
          this.inFlight.delete(n);
        }
      }));
    } finally {
      clearInterval(this.tick);
      this.progress();
    }
  }

  async putPart(n) {
    let lastError = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (this.state !== "uploading") throw new Error("stopped");
      if (attempt) await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
      const url = await this.urlFor(n);
      const start = (n - 1) * this.partSize;
      const result = await this.xhrPut(n, url, this.file.slice(start, start + this.partBytes(n)));
      if (result.ok) {
        if (!result.etag) {
          throw new CorsError("The bucket accepted a part but its CORS rule hides the ETag header. Add "
            + "\"ExposeHeaders\": [\"ETag\"] to the bucket's CORS rule (README: Bucket CORS).");
        }
        return result.etag;
      }
      if (result.aborted) throw new Error("stopped");
      this.inFlight.delete(n);
      if (result.status === 0) {
        lastError = new CorsError(corsMessage(url));
        continue; // network drop or CORS refusal: the same in the browser; retry, then report
      }
      if (result.status === 403) this.urls.delete(n); // the link may have expired: sign again
      else if (![408, 429, 500, 502, 503, 504].includes(result.status)) {
        throw new Error(`the bucket refused part ${n} (HTTP ${result.status})`);
      }
      lastError = new Error(`part ${n} failed (HTTP ${result.status})`);
    }
    throw lastError;
  }

  xhrPut(n, url, blob) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const controller = { abort: () => xhr.abort() };
      this.controllers.add(controller);
      const done = (value) => {
        this.controllers.delete(controller);
        resolve(value);
      };
      xhr.open("PUT", url);
      xhr.upload.onprogress = (e) => this.inFlight.set(n, e.loaded);
      xhr.onload = () => done({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status,
                                etag: (xhr.getResponseHeader("ETag") || "").replaceAll('"', "") });
      xhr.onerror = () => done({ ok: false, status: 0 });
      xhr.ontimeout = () => done({ ok: false, status: 0 });
      xhr.onabort = () => done({ ok: false, aborted: true });
      xhr.send(blob);
    });
  }

  progress() {
    if (!this.partCount || this.state !== "uploading") return; // paused: no speed or time left to show
    let sending = 0;
    for (const b of this.inFlight.values()) sending += b;
    const sent = this.doneBytes + sending;
    const now = Date.now();
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > RATE_WINDOW_MS) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const rate = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
    const left = rate > 0 ? (this.file.size - sent) / rate : null;
    this.bar.value = this.file.size ? sent / this.file.size : 1;
    const parts = `${this.doneParts.size + this.etags.size} of ${this.partCount} parts`;
    const tail = rate > 0 ? ` · ${bytes(rate)}/s · ${duration(left)} left` : "";
    this.detailEl.textContent = `${bytes(sent)} of ${bytes(this.file.size)} · ${parts}${tail}`;
    this.row.dataset.sent = String(sent);
  }

  async complete() {
    this.state = "finishing";
    this.bar.removeAttribute("value"); // indeterminate while the server works
    // S3 reports nothing while it joins the parts: say what it joins and for how long it has been at it.
    const started = Date.now();
    const joining = `joining ${this.partCount} parts (${bytes(this.file.size)})`;
    this.show("Assembling in the bucket…", joining);
    const ticker = setInterval(() => {
      this.detailEl.textContent = `${joining} · ${duration((Date.now() - started) / 1000)} so far`;
    }, 1000);
    const parts = Array.from(this.etags.entries());
    const r = await this.up.request("complete", { handle: this.handle, file: this.identity(), parts },
                                    { timeoutMs: 0 });
    clearInterval(ticker);
    if (!r.ok) {
      this.bar.value = 0;
      return this.fail(r.error);
    }
    this.state = "done";
    this.bar.value = 1;
    this.show("In the bucket", r.message || ""); // the page's card below checks and stores it
  }

  fail(message) {
    this.state = "failed";
    this.stopAll();
    this.show("Failed", message || "Unknown error");
  }

  stopAll() {
    for (const c of Array.from(this.controllers)) c.abort();
    this.controllers.clear();
    this.inFlight.clear();
  }

  pause() {
    if (this.state !== "uploading") return;
    this.state = "paused";
    this.stopAll(); // parts in flight are sent again on resume
    // Only what was sent stays: a speed and a time left mean nothing while nothing is sent.
    this.show("Paused", this.detailEl.textContent.split(" · ").filter((p) => !/\/s$| left$/.test(p)).join(" · "));
  }

  resume() {
    if (this.state !== "paused") return;
    this.up.queue.unshift(this);
    this.state = "resuming";
    this.show("Resuming…");
    this.run = this.continueRun;
    this.up.pump();
  }

  async continueRun() {
    try {
      await this.sendParts();
      if (this.state === "uploading") await this.complete();
    } catch (err) {
      if (this.state === "paused" || this.state === "cancelled") return;
      this.fail(err instanceof CorsError ? err.message : `The upload stopped: ${err.message || err}`);
    }
  }

  async cancel() {
    const started = Boolean(this.handle);
    this.state = "cancelled";
    this.stopAll();
    this.show("Cancelling…", "");
    if (started) {
      const r = await this.up.request("abort", { handle: this.handle, file: this.identity() });
      this.show(r.ok ? "Cancelled" : "Cancel failed", r.ok ? "Nothing of it is kept in the bucket." : r.error);
    } else {
      this.show("Cancelled", "");
    }
  }
}

// --- helpers -----------------------------------------------------------------------------------------

async function headHash(file) {
  const buffer = await file.slice(0, HEAD_BYTES).arrayBuffer();
  if (globalThis.crypto && crypto.subtle) {
    const digest = await crypto.subtle.digest("SHA-256", buffer);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  // crypto.subtle exists only in secure contexts (https or localhost); the fingerprint needs no secrecy.
  return fnv1a64(new Uint8Array(buffer));
}

function fnv1a64(bytesArr) {
  let h1 = 0x811c9dc5, h2 = 0xcbf29ce4;
  for (let i = 0; i < bytesArr.length; i++) {
    h1 = Math.imul(h1 ^ bytesArr[i], 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ bytesArr[i] ^ (i & 0xff), 0x01000193) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

function corsMessage(url) {
  let bucket = "the bucket";
  try { bucket = new URL(url).origin; } catch (e) { /* keep the generic name */ }
  return `The browser could not send to ${bucket}: the network dropped, or the bucket's CORS rule does not `
    + `allow this page (${location.origin}). Fix: add ${location.origin} to the bucket's CORS rule `
    + "(AllowedOrigins, methods PUT/GET/HEAD, ExposeHeaders ETag — README: Bucket CORS) and to "
    + "[app] app_origins, then choose the file again to resume.";
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function bytes(n) {
  let value = n, i = 0;
  while (value >= byteStep && i < byteUnits.length - 1) { value /= byteStep; i++; }
  return i ? `${value.toFixed(1)} ${byteUnits[i]}` : `${Math.round(value)} ${byteUnits[0]}`;
}

function duration(seconds) {
  if (seconds === null || !isFinite(seconds)) return "—";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}
