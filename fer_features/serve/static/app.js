// fer-features demo page: Upload, Webcam and FaceMatch tabs over POST /predict. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let CLASSES = [];

// ------------------------------------------------------------------ shared helpers

function setStatus(el, text, state = "idle") {
  el.textContent = text;
  el.dataset.state = state;
}

// POST an image (File or Blob) as the raw body; resolves to the JSON answer or throws with the server's detail.
async function predict(blob) {
  const res = await fetch("/predict", {
    method: "POST",
    headers: { "Content-Type": blob.type || "application/octet-stream" },
    body: blob,
  });
  const body = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
  return body;
}

// Probability bars, highest first; the top one highlighted.
function renderBars(container, probabilities) {
  const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  container.replaceChildren(
    ...entries.map(([name, p], i) => {
      const row = document.createElement("div");
      row.className = "bar" + (i === 0 ? " top" : "");
      row.dataset.emotion = name;
      row.innerHTML = `<span class="name"></span><div class="track"><div class="fill"></div></div><span class="val"></span>`;
      row.querySelector(".name").textContent = name;
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      row.querySelector(".val").textContent = p.toFixed(2);
      return row;
    })
  );
}

// Boxes and "label p" for each face, in the coordinates of the image the server saw.
function drawFaces(ctx, faces, scaleX, scaleY) {
  const lw = Math.max(2, Math.round(ctx.canvas.width / 300));
  ctx.lineWidth = lw;
  ctx.font = `${Math.max(12, Math.round(ctx.canvas.width / 40))}px sans-serif`;
  ctx.textBaseline = "top";
  for (const f of faces) {
    const [l, t, r, b] = f.box;
    const x = l * scaleX, y = t * scaleY, w = (r - l) * scaleX, h = (b - t) * scaleY;
    ctx.strokeStyle = "#ffc800";
    ctx.strokeRect(x, y, w, h);
    const text = `${f.label} ${f.probabilities[f.label].toFixed(2)}`;
    const th = parseInt(ctx.font, 10) + 2 * lw;
    const tw = ctx.measureText(text).width + 2 * lw;
    const ty = y >= th ? y - th : y + h;
    ctx.fillStyle = "#ffc800";
    ctx.fillRect(x, ty, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + lw, ty + lw);
  }
}

// ------------------------------------------------------------------ tabs

function showTab(name) {
  for (const tab of document.querySelectorAll("nav [role=tab]")) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    $(`panel-${tab.dataset.tab}`).hidden = !on;
  }
  if (name !== "webcam") webcam.stop();
  if (name !== "facematch") facematch.stop();
}

// ------------------------------------------------------------------ Upload

async function handleFile(file) {
  const status = $("upload-status");
  if (!file) return;
  setStatus(status, `sending ${file.name} (${Math.round(file.size / 1024)} KiB)…`, "busy");
  $("upload-faces").replaceChildren();
  try {
    const [res, img] = await Promise.all([predict(file), loadImage(file)]);
    const canvas = $("upload-canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    drawFaces(ctx, res.faces, img.naturalWidth / res.width, img.naturalHeight / res.height);
    const n = res.faces.length;
    $("upload-faces").dataset.faces = String(n);
    res.faces.forEach((f, i) => {
      const block = document.createElement("div");
      block.className = "face";
      block.innerHTML = `<h3></h3><div class="bars"></div>`;
      block.querySelector("h3").textContent = `face ${i + 1}: ${f.label}`;
      renderBars(block.querySelector(".bars"), f.probabilities);
      $("upload-faces").append(block);
    });
    const text = n ? `${n} face(s) in ${res.width}x${res.height}` : `no face found in ${res.width}x${res.height}`;
    setStatus(status, `${text}; server time ${res.timing.total_ms.toFixed(0)} ms`, "done");
  } catch (err) {
    setStatus(status, `error: ${err.message}`, "error");
  }
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = URL.createObjectURL(file);
  });
}

function setupUpload() {
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => handleFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    handleFile(e.dataTransfer.files[0]);
  });
}

// ------------------------------------------------------------------ camera and the frame loop

let cameraPromise = null;
function camera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return Promise.reject(new Error("this page needs https or localhost for the camera"));
  }
  cameraPromise = cameraPromise || navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  cameraPromise.catch(() => { cameraPromise = null; });
  return cameraPromise;
}

function releaseCamera() {
  if (!cameraPromise) return;
  cameraPromise.then((s) => s.getTracks().forEach((t) => t.stop())).catch(() => {});
  cameraPromise = null;
}

// A JPEG of the current video frame, at most 480 px wide.
function grabFrame(video) {
  const scale = Math.min(1, 480 / video.videoWidth);
  const c = document.createElement("canvas");
  c.width = Math.round(video.videoWidth * scale);
  c.height = Math.round(video.videoHeight * scale);
  c.getContext("2d").drawImage(video, 0, 0, c.width, c.height);
  return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.85));
}

// Sends frames of `video` to /predict at most `rate()` times a second (one request in flight);
// calls onResult(res) for each answer, and draws the boxes on `overlay`.
class FrameLoop {
  constructor(video, overlay, rate, onResult, onError) {
    Object.assign(this, { video, overlay, rate, onResult, onError });
    this.running = false;
    this.times = [];
  }
  async start() {
    const stream = await camera();
    this.video.srcObject = stream;
    await this.video.play().catch(() => {});
    while (!this.video.videoWidth) await new Promise((r) => setTimeout(r, 50));
    this.running = true;
    this.tick();
  }
  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }
  async tick() {
    if (!this.running) return;
    const started = performance.now();
    try {
      const blob = await grabFrame(this.video);
      const res = await predict(blob);
      if (!this.running) return;
      this.times.push(performance.now());
      this.times = this.times.filter((t) => t > performance.now() - 3000);
      const ov = this.overlay;
      ov.width = res.width;
      ov.height = res.height;
      const ctx = ov.getContext("2d");
      ctx.clearRect(0, 0, ov.width, ov.height);
      drawFaces(ctx, res.faces, 1, 1);
      this.onResult(res, this.fps());
    } catch (err) {
      this.onError(err);
    }
    const wait = Math.max(0, 1000 / this.rate() - (performance.now() - started));
    this.timer = setTimeout(() => this.tick(), wait);
  }
  // Answers per second over the last 3 s.
  fps() {
    if (this.times.length < 2) return 0;
    return (this.times.length - 1) / ((this.times[this.times.length - 1] - this.times[0]) / 1000);
  }
}

// ------------------------------------------------------------------ Webcam

const webcam = {
  loop: null,
  frames: 0,
  async start() {
    const status = $("webcam-status");
    $("webcam-start").disabled = true;
    setStatus(status, "starting the camera…", "busy");
    this.frames = 0;
    this.loop = new FrameLoop(
      $("webcam-video"),
      $("webcam-overlay"),
      () => Math.min(10, Math.max(1, Number($("webcam-rate").value) || 4)),
      (res, fps) => {
        this.frames += 1;
        const face = res.faces[0];
        $("webcam-label").textContent = face ? face.label : "no face";
        $("webcam-label").dataset.frames = String(this.frames);
        if (face) renderBars($("webcam-bars"), face.probabilities);
        $("webcam-fps").textContent = `${fps.toFixed(1)} frames/s · server ${res.timing.total_ms.toFixed(0)} ms · ${res.faces.length} face(s)`;
        setStatus(status, "live", "live");
      },
      (err) => setStatus(status, `error: ${err.message}`, "error")
    );
    try {
      await this.loop.start();
      $("webcam-stop").disabled = false;
    } catch (err) {
      setStatus(status, `camera unavailable: ${err.message}`, "error");
      $("webcam-start").disabled = false;
    }
  },
  stop() {
    if (!this.loop) return;
    this.loop.stop();
    this.loop = null;
    releaseCamera();
    $("webcam-start").disabled = false;
    $("webcam-stop").disabled = true;
    setStatus($("webcam-status"), "stopped", "idle");
  },
};

// ------------------------------------------------------------------ FaceMatch

const ROUNDS = 5;
const facematch = {
  loop: null,
  rounds: 0,
  total: 0,
  target: null,
  reset() {
    this.stop();
    this.rounds = 0;
    this.total = 0;
    $("fm-total").textContent = "0";
    $("fm-rounds").textContent = "0";
    $("fm-score").textContent = "–";
    delete $("fm-score").dataset.score;
    $("fm-history").replaceChildren();
    $("fm-start").textContent = "Start round";
    setStatus($("fm-status"), "new game", "idle");
  },
  pickTarget() {
    const choices = CLASSES.filter((c) => c !== this.target);
    this.target = choices[Math.floor(Math.random() * choices.length)];
    $("fm-target").textContent = this.target;
    return this.target;
  },
  async start() {
    if (this.rounds >= ROUNDS) this.reset();
    const status = $("fm-status");
    const seconds = Math.min(10, Math.max(1, Number($("fm-seconds").value) || 3));
    const target = this.pickTarget();
    const samples = [];
    $("fm-start").disabled = true;
    setStatus(status, `starting the camera…`, "busy");
    this.loop = new FrameLoop(
      $("fm-video"),
      $("fm-overlay"),
      () => 5,
      (res) => {
        const p = res.faces.length ? res.faces[0].probabilities[target] : 0;
        samples.push(p);
        $("fm-meter").style.width = `${(100 * p).toFixed(0)}%`;
      },
      (err) => setStatus(status, `error: ${err.message}`, "error")
    );
    try {
      await this.loop.start();
    } catch (err) {
      setStatus(status, `camera unavailable: ${err.message}`, "error");
      $("fm-start").disabled = false;
      this.loop = null;
      return;
    }
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end && this.loop) {
      setStatus(status, `show ${target}! ${((end - performance.now()) / 1000).toFixed(1)} s left`, "playing");
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!this.loop) return; // stopped by a tab change
    this.loop.stop();
    this.loop = null;
    const score = samples.length ? Math.round((100 * samples.reduce((a, b) => a + b, 0)) / samples.length) : 0;
    this.rounds += 1;
    this.total += score;
    $("fm-score").textContent = String(score);
    $("fm-score").dataset.score = String(score);
    $("fm-total").textContent = String(this.total);
    $("fm-rounds").textContent = String(this.rounds);
    const li = document.createElement("li");
    li.textContent = `${target}: ${score} (${samples.length} frames)`;
    $("fm-history").append(li);
    const over = this.rounds >= ROUNDS;
    setStatus(status, over ? `game over: ${this.total} of ${100 * ROUNDS}` : `round ${this.rounds}: ${score} points for ${target}`, "scored");
    $("fm-start").textContent = over ? "New game" : "Next round";
    $("fm-start").disabled = false;
  },
  stop() {
    if (this.loop) {
      this.loop.stop();
      this.loop = null;
      releaseCamera();
      $("fm-start").disabled = false;
      setStatus($("fm-status"), "round stopped", "idle");
    }
  },
};

// ------------------------------------------------------------------ start-up

async function init() {
  for (const tab of document.querySelectorAll("nav [role=tab]")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  setupUpload();
  $("webcam-start").addEventListener("click", () => webcam.start());
  $("webcam-stop").addEventListener("click", () => webcam.stop());
  $("fm-start").addEventListener("click", () => facematch.start());
  $("fm-reset").addEventListener("click", () => facematch.reset());
  try {
    const health = await (await fetch("/health")).json();
    CLASSES = health.classes;
    const what = health.features ? `${health.features} → ${health.classifier}` : "model";
    $("model-info").textContent = `${what} · ${health.classes.length} emotions`;
  } catch (err) {
    $("model-info").textContent = "server unreachable";
  }
  document.body.dataset.ready = "true";
}

init();
