"use strict";
// eParking dashboard: up to six camera tiles over ONE Socket.IO connection.
// Each streaming tile sends JPEG frames as binary attachments, with at most N frames
// in flight (waiting for their result), so a slow server never builds a backlog here.

const TILE_COUNT = 6;
const STALE_BOX_MS = 1200;      // boxes vanish when no newer result came for this long
const FLIGHT_TIMEOUT_MS = 3000; // a frame without a result after this long no longer counts as in flight
const MAX_SEND_WIDTH = 640;     // frames are scaled down to this width before encoding
const BOX_COLOUR = "rgb(0, 230, 0)";
const RECENT_MAX = 50;

const $ = (sel, root = document) => root.querySelector(sel);
const store = {
  get: (key, fallback) => { try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; } },
  set: (key, value) => localStorage.setItem(key, JSON.stringify(value)),
};

// ---------------------------------------------------------------- settings

const inputs = { fps: $("#fps"), quality: $("#quality"), inflight: $("#inflight"), token: $("#token") };
for (const [name, input] of Object.entries(inputs)) {
  const saved = store.get(`eparking.${name}`, null);
  if (saved !== null) input.value = saved;
  input.addEventListener("change", () => store.set(`eparking.${name}`, input.value));
}
const settings = {
  get fps() { return Math.min(30, Math.max(1, Number(inputs.fps.value) || 10)); },
  get quality() { return Math.min(1, Math.max(0.3, Number(inputs.quality.value) || 0.7)); },
  get inflight() { return Math.min(8, Math.max(1, Number(inputs.inflight.value) || 2)); },
};

// ---------------------------------------------------------------- connection

const socket = io({ auth: (cb) => cb({ token: inputs.token.value }) });
const connection = $("#connection");
let connectionState = "connecting";

function setConnection(state, message) {
  connectionState = state;
  connection.textContent = message ? `${state}: ${message}` : state;
  tiles.forEach((t) => t.refreshStatus());
}

socket.on("connect", () => {
  setConnection("connected");
  tiles.forEach((t) => t.onReconnect());
  if (inputs.token.value) openSession();
});

// the token accepted: trade it for the cookie the plate log's list and crops need
async function openSession() {
  try {
    const response = await fetch("/session", { method: "POST", headers: { Authorization: `Bearer ${inputs.token.value}` } });
    if (response.ok) await loadRecent();
  } catch { /* the live list still fills from plate_event */ }
}
socket.on("disconnect", () => setConnection("reconnecting"));
socket.io.on("reconnect_attempt", () => setConnection("reconnecting"));
socket.on("connect_error", (err) => {
  const data = err && err.data;
  // a refused connection (bad token, server full) says why; a dead server is just unreachable
  setConnection(data && data.code ? "error" : "reconnecting", data && data.message ? data.message : "");
  if (data && data.code) setTimeout(() => socket.connect(), 3000);
});
socket.on("detection_result", (r) => tiles.forEach((t) => t.cameraId === r.camera_id && t.onResult(r)));
socket.on("error", (e) => tiles.forEach((t) => (!e.camera_id || t.cameraId === e.camera_id) && t.onServerError(e)));
socket.on("plate_event", addRecent);
socket.on("gate_decision", (d) => {
  tiles.forEach((t) => t.cameraId === d.camera_id && t.onGateDecision(d));
  markRecent(d);
});

// ---------------------------------------------------------------- tiles

class Tile {
  constructor(index) {
    this.index = index;
    this.el = $("#tile-template").content.firstElementChild.cloneNode(true);
    this.field = (name) => $(`[data-field="${name}"]`, this.el);
    this.video = $("video", this.el);
    this.overlay = this.field("overlay");
    this.capture = document.createElement("canvas");
    this.saved = store.get(`eparking.tile.${index}`, { camera: `cam${index + 1}`, source: null });
    this.field("camera").value = this.saved.camera;
    this.el.dataset.cameraId = this.saved.camera;
    this.field("camera").addEventListener("change", () => { this.el.dataset.cameraId = this.cameraId; this.save(); });
    this.field("source").addEventListener("change", () => this.onSourceChange());
    this.field("file").addEventListener("change", () => this.save());
    $('[data-action="start"]', this.el).addEventListener("click", () => this.start());
    $('[data-action="stop"]', this.el).addEventListener("click", () => this.stop());
    this.reset();
  }

  get cameraId() { return this.field("camera").value.trim() || `cam${this.index + 1}`; }
  get mode() { return this.active ? (this.field("source").value === "watch" ? "watch" : "stream") : "off"; }

  reset() {
    this.active = false;
    this.inFlight = new Map(); // frame_id -> sent at (ms)
    this.seq = 0;
    this.sent = 0;
    this.resultTimes = [];
    this.lastError = null;
  }

  save() { store.set(`eparking.tile.${this.index}`, { camera: this.cameraId, source: this.field("source").value }); }

  setSources(devices) {
    const select = this.field("source");
    const options = devices.map((d, i) => [d.deviceId, d.label || `Webcam ${i + 1}`]);
    options.push(["file", "Video file…"], ["watch", "Watch remote camera"]);
    select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
    const wanted = this.saved.source;
    select.value = options.some(([v]) => v === wanted) ? wanted : options[0][0];
  }

  onSourceChange() {
    if (this.field("source").value === "file") this.field("file").click();
    this.save();
  }

  async start() {
    if (this.active) return;
    this.reset();
    this.active = true;
    this.setButtons();
    const source = this.field("source").value;
    try {
      if (source === "watch") {
        this.video.removeAttribute("src");
        socket.emit("subscribe", { camera_id: this.cameraId });
      } else {
        await this.openVideo(source);
        this.timer = setInterval(() => this.sendFrame(), 1000 / settings.fps);
      }
    } catch (err) {
      this.stop();
      this.lastError = `cannot open source: ${err.message || err}`;
    }
    this.refreshStatus();
  }

  async openVideo(source) {
    if (source === "file") {
      const file = this.field("file").files[0];
      if (!file) throw new Error("choose a video file first");
      this.video.srcObject = null;
      this.video.src = URL.createObjectURL(file);
    } else {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: source } } });
      this.video.srcObject = this.stream;
    }
    await this.video.play();
  }

  stop() {
    clearInterval(this.timer);
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    if (this.mode === "watch") socket.emit("unsubscribe", { camera_id: this.cameraId });
    this.video.pause();
    this.active = false;
    this.clearOverlay();
    this.setButtons();
    this.refreshStatus();
  }

  onReconnect() {
    this.inFlight.clear(); // results of frames sent before the drop will never come
    if (this.mode === "watch") socket.emit("subscribe", { camera_id: this.cameraId });
  }

  setButtons() {
    $('[data-action="start"]', this.el).disabled = this.active;
    $('[data-action="stop"]', this.el).disabled = !this.active;
    this.field("source").disabled = this.active;
    this.field("camera").disabled = this.active;
  }

  refreshStatus() {
    const status = this.field("status");
    let text = "stopped";
    if (this.lastError) text = `error: ${this.lastError}`;
    else if (this.active) text = connectionState === "connected" ? (this.mode === "watch" ? "connected (watching)" : "connected") : connectionState;
    status.textContent = text;
    status.className = text.startsWith("error") ? "error" : text.startsWith("reconnecting") ? "reconnecting" : "";
  }

  sendFrame() {
    if (!socket.connected || this.video.readyState < 2) return;
    const now = performance.now();
    for (const [id, at] of this.inFlight) if (now - at > FLIGHT_TIMEOUT_MS) this.inFlight.delete(id);
    if (this.inFlight.size >= settings.inflight) return; // flow control: wait for results
    const scale = Math.min(1, MAX_SEND_WIDTH / this.video.videoWidth);
    this.capture.width = Math.round(this.video.videoWidth * scale);
    this.capture.height = Math.round(this.video.videoHeight * scale);
    this.capture.getContext("2d").drawImage(this.video, 0, 0, this.capture.width, this.capture.height);
    const frameId = ++this.seq;
    this.inFlight.set(frameId, now);
    this.capture.toBlob(async (blob) => {
      if (!blob || !this.active) { this.inFlight.delete(frameId); return; }
      const frame = await blob.arrayBuffer();
      this.sent += 1;
      this.field("frames").textContent = this.sent;
      socket.emit("video_frame", { camera_id: this.cameraId, frame, frame_id: frameId, ts: Date.now() }, (ack) => {
        if (ack && !ack.ok) {
          this.inFlight.delete(frameId);
          if (ack.error.code !== "rate_limited") this.onServerError(ack.error);
        }
      });
    }, "image/jpeg", settings.quality);
  }

  onResult(r) {
    if (!this.active) return;
    const now = performance.now();
    if (this.mode === "stream" && this.inFlight.has(r.frame_id)) {
      this.field("latency").textContent = `${Math.round(now - this.inFlight.get(r.frame_id))} ms`;
    } else if (this.mode === "watch" && typeof r.ts === "number") {
      this.field("latency").textContent = `${Math.max(0, Math.round(Date.now() - r.ts))} ms`;
    }
    // frames older than this one were dropped by the server: no result will come for them
    for (const id of this.inFlight.keys()) if (id <= r.frame_id) this.inFlight.delete(id);
    this.lastError = null;
    this.refreshStatus();
    this.resultTimes.push(now);
    this.resultTimes = this.resultTimes.filter((t) => now - t <= 2000);
    this.field("fps").textContent = (this.resultTimes.length / 2).toFixed(1);
    if (this.mode === "watch") this.field("frames").textContent = r.stats.frames;
    this.field("detections").textContent = r.stats.detections;
    this.field("dropped").textContent = r.stats.dropped;
    const best = r.detection;
    if (best) {
      this.field("plate").textContent = best.text || best.raw_text || "?";
      this.field("confidence").textContent = best.confidence.toFixed(2);
    }
    this.draw(r);
  }

  // the camera's rules decided on a vehicle (config.yaml gate:): OPEN / DENIED at a gate, ALERT... when watching
  onGateDecision(d) {
    if (!this.active) return;
    const gate = this.field("gate");
    const how = d.match ? ` · ${d.match.list}${d.match.kind === "exact" ? "" : ` (${d.match.detail})`}` : "";
    gate.textContent = `${d.decision.toUpperCase()} ${d.plate}${how}`;
    gate.className = `decision-${d.decision}`;
  }

  onServerError(e) {
    if (!this.active || e.code === "rate_limited") return;
    // a stopping server is the connection's state, not this camera's: it goes, then comes back
    if (e.code === "draining") return setConnection("reconnecting", e.message);
    this.lastError = e.message || e.code;
    this.refreshStatus();
  }

  draw(r) {
    const canvas = this.overlay;
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.clientWidth, ch = canvas.clientHeight;
    canvas.width = Math.round(cw * dpr);
    canvas.height = Math.round(ch * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const [fw, fh] = r.frame_size;
    const scale = Math.min(cw / fw, ch / fh); // the video is shown with object-fit: contain
    const ox = (cw - fw * scale) / 2, oy = (ch - fh * scale) / 2;
    ctx.lineWidth = 3;
    ctx.font = "bold 14px system-ui, sans-serif";
    for (const d of r.detections) {
      const [x1, y1, x2, y2] = d.bbox.map((v, i) => (i % 2 ? oy : ox) + v * scale);
      ctx.strokeStyle = BOX_COLOUR;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = `${d.text || "?"} ${d.confidence.toFixed(2)}`;
      const tw = ctx.measureText(label).width + 8;
      const ty = y1 >= 20 ? y1 - 20 : y2;
      ctx.fillStyle = BOX_COLOUR;
      ctx.fillRect(x1, ty, tw, 20);
      ctx.fillStyle = "#000";
      ctx.fillText(label, x1 + 4, ty + 15);
    }
    clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => this.clearOverlay(), STALE_BOX_MS);
  }

  clearOverlay() {
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
  }
}

// ---------------------------------------------------------------- recent plates

function addRecent(ev) {
  const list = $("#recent");
  const item = document.createElement("li");
  const img = document.createElement("img");
  img.alt = `plate ${ev.text}`;
  if (ev.crop || ev.crop_url) img.src = ev.crop || ev.crop_url;
  const info = document.createElement("div");
  const when = new Date((ev.last_seen || ev.first_seen) * 1000).toLocaleTimeString();
  info.innerHTML = '<div class="text"></div><div class="meta"></div>';
  info.firstChild.textContent = ev.text;
  info.lastChild.textContent = `${when} · ${ev.camera_id} · ${Number(ev.confidence).toFixed(2)}`;
  item.dataset.trackId = `${ev.camera_id}/${ev.track_id}`;
  if (ev.id) item.dataset.eventId = ev.id;
  item.append(img, info);
  const existing = ev.track_id !== undefined && list.querySelector(`[data-track-id="${CSS.escape(item.dataset.trackId)}"]`);
  if (existing) existing.replaceWith(item); else list.prepend(item);
  while (list.children.length > RECENT_MAX) list.lastChild.remove();
}

// a gate's decision on a vehicle in the list: OPEN, DENIED... beside its plate
function markRecent(d) {
  const item = $("#recent").querySelector(`[data-event-id="${CSS.escape(d.event_id)}"]`);
  if (!item) return;
  const badge = item.querySelector(".decision") || document.createElement("span");
  badge.className = `decision decision-${d.decision}`;
  badge.textContent = d.decision.toUpperCase();
  item.querySelector(".text").append(" ", badge);
}

async function loadRecent() {
  try {
    const response = await fetch("/events?limit=20");
    if (!response.ok) return;
    const { events } = await response.json();
    events.reverse().forEach(addRecent); // oldest first: the newest ends on top
  } catch { /* the live list still fills from plate_event */ }
}

// ---------------------------------------------------------------- start-up

const tiles = [];

async function videoDevices() {
  if (!navigator.mediaDevices) return [];
  let devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  if (devices.length && !devices[0].label) {
    // labels and stable ids come only after permission is granted once
    try {
      const probe = await navigator.mediaDevices.getUserMedia({ video: true });
      probe.getTracks().forEach((t) => t.stop());
      devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    } catch { /* denied: the tiles can still play files or watch */ }
  }
  return devices;
}

(async function init() {
  const container = $("#tiles");
  for (let i = 0; i < TILE_COUNT; i++) {
    const tile = new Tile(i);
    tiles.push(tile);
    container.append(tile.el);
  }
  const devices = await videoDevices();
  tiles.forEach((t) => { t.setSources(devices); t.refreshStatus(); });
  await loadRecent();
  document.body.dataset.ready = "true";
})();
