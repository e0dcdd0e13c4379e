// melodia studio: the page's behaviour. No framework, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["seconds", "bars", "form", "span", "tracks", "candidates", "seed", "temperature",
  "sampler", "randomness", "style", "tempo", "lineup", "key", "density"];
const COLOURS = ["#ff6b6b", "#4dabf7", "#ffd43b", "#69db7c", "#da77f2", "#ffa94d", "#38d9a9",
  "#f783ac", "#a9e34b", "#74c0fc"];
let options = null;
let upload = null;
let current = null;
let roll = null;
let midiAccess = null;

function say(text, ok = false) {
  $("message").textContent = text || "";
  $("message").className = ok ? "ok" : "";
}

const TOKEN = (document.querySelector('meta[name="melodia-token"]') || {}).content || "";

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}), "X-Melodia-Token": TOKEN };
  const response = await fetch(path, { ...init, headers, credentials: "same-origin" });
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

function show() {
  const command = $("command").value;
  const band = $("model").value !== "piano";
  for (const label of document.querySelectorAll("label[data-for]")) {
    const wanted = label.dataset.for.split(" ").includes(command)
      && !(label.hasAttribute("data-band") && !band) && !(label.hasAttribute("data-piano") && band);
    label.hidden = !wanted;
  }
  $("drop-role").textContent = command === "generate" ? "(a primer to continue, optional)"
    : command === "accompany" ? "(the song the band plays with)" : "(the song to fill in)";
  $("go").textContent = command === "generate" ? "Generate" : command === "accompany" ? "Accompany" : "Fill in";
}

function settings() {
  const command = $("command").value;
  const out = {};
  for (const name of FIELDS) {
    const element = $(name);
    const label = element.closest("label");
    if (label && label.hidden) continue;
    const value = element.value.trim();
    if (value !== "") out[name] = value;
  }
  if (command !== "generate") { delete out.key; delete out.density; }
  if (out.bars || out.form) delete out.seconds;  // a length in bars (or sections) instead
  if (out.sampler === "probability") delete out.sampler;  // the default: a shorter line
  return out;
}

async function sendFile(file) {
  say("");
  if (options && file.size > options.max_upload) {
    say(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; the studio takes MIDI files up to ${options.max_upload / 1048576} MiB`);
    return;
  }
  $("file-info").textContent = `reading ${file.name}...`;
  try {
    upload = await api("/api/upload", { method: "POST", body: file,
      headers: { "X-Filename": encodeURIComponent(file.name).slice(0, 200),
        "Content-Type": "application/octet-stream" } });
    upload.name = file.name;
    $("file-info").textContent = `${file.name}: ${upload.notes} notes, ${upload.seconds} s`;
  } catch (error) {
    upload = null;
    $("file-info").textContent = "no file";
    say(error.message);
  }
}

async function submit(event) {
  event.preventDefault();
  say("");
  const body = { command: $("command").value, model: $("model").value, settings: settings(),
    upload: upload ? upload.id : null };
  let job;
  try {
    job = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
  } catch (error) { say(error.message); return; }
  current = job.id;
  $("progress").value = 0;
  $("go").disabled = true;
  $("cancel").disabled = false;
  poll(job.id);
}

async function poll(id) {
  let job;
  try { job = await api(`/api/jobs/${id}`); } catch (error) { say(error.message); return finish(); }
  const asked = job.settings.form ? null : parseFloat(job.settings.seconds || "0");
  $("progress").value = asked ? Math.min(job.seconds_done / asked, 1) : (job.state === "done" ? 1 : 0);
  if (!asked && job.state === "running") $("progress").removeAttribute("value");
  $("progress-text").textContent = job.state === "queued"
    ? `queued: ${job.ahead ? `${job.ahead} job${job.ahead > 1 ? "s" : ""} ahead` : "next"}`
    : `${job.state}: ${job.events} events, ${job.seconds_done} s of music`;
  if (job.state === "queued" || job.state === "running") { setTimeout(() => poll(id), 150); return; }
  finish();
  if (job.state === "done") { $("progress").value = 1; await showResult(job); say(job.message || `done in ${job.elapsed} s`, !job.message); }
  else {
    if (job.partial && job.midi) await showResult(job);  // what was made before the stop
    say(job.message || job.state);
  }
  history();
}

function finish() {
  $("go").disabled = false;
  $("cancel").disabled = true;
}

async function showResult(job) {
  $("result").hidden = false;
  $("line").textContent = job.line;
  $("download-mid").href = job.midi;
  $("download-wav").hidden = !job.audio;
  if (job.audio) $("download-wav").href = job.audio;
  roll = await api(`/api/jobs/${job.id}/roll`);
  draw(0);
  const audio = $("audio");
  if (job.audio) {
    audio.src = job.audio;
    audio.play().catch(() => {});
  } else audio.removeAttribute("src");
}

function draw(at) {
  const canvas = $("roll");
  const g = canvas.getContext("2d");
  g.fillStyle = "#111";
  g.fillRect(0, 0, canvas.width, canvas.height);
  if (!roll) return;
  let low = 127, high = 0;
  for (const t of roll.tracks) for (const n of t.notes) { low = Math.min(low, n[2]); high = Math.max(high, n[2]); }
  if (low > high) { low = 48; high = 72; }
  const span = Math.max(roll.end_s, 0.1), rows = high - low + 1;
  const h = canvas.height / rows;
  $("legend").replaceChildren();
  roll.tracks.forEach((t, i) => {
    const colour = COLOURS[i % COLOURS.length];
    g.fillStyle = colour;
    for (const n of t.notes) {
      const x = (n[0] / span) * canvas.width;
      const w = Math.max(((n[1] - n[0]) / span) * canvas.width, 1.5);
      g.fillRect(x, canvas.height - (n[2] - low + 1) * h, w, Math.max(h - 0.5, 1));
    }
    const item = document.createElement("li");
    item.textContent = t.name;
    item.style.setProperty("--c", colour);
    $("legend").append(item);
  });
  g.fillStyle = "#fff";
  g.fillRect((at / span) * canvas.width, 0, 2, canvas.height);
}

function playhead() {
  const audio = $("audio");
  if (roll && !audio.paused) draw(audio.currentTime);
  requestAnimationFrame(playhead);
}

async function history() {
  let jobs;
  try { jobs = await api("/api/history"); } catch (error) { return; }
  const list = $("history");
  list.replaceChildren();
  for (const job of jobs) {
    const item = document.createElement("li");
    const line = document.createElement("code");
    line.textContent = job.line;
    item.append(`${job.id} ${job.state}${job.partial ? " (partial)" : ""} `, line, " ");
    if (job.midi) {
      const play = document.createElement("button");
      play.type = "button"; play.textContent = "Show and play"; play.className = "replay";
      play.addEventListener("click", () => showResult(job));
      item.append(play, " ");
    }
    for (const [kind, href] of [["MIDI", job.midi], ["WAV", job.audio]]) {
      if (!href) continue;
      const link = document.createElement("a");
      link.href = href; link.textContent = kind; link.download = "";
      item.append(link, " ");
    }
    list.append(item);
  }
}

async function setupMidi() {
  if (!navigator.requestMIDIAccess) return;
  try { midiAccess = await navigator.requestMIDIAccess(); } catch (e) { return; }
  const select = $("midi-out");
  for (const output of midiAccess.outputs.values()) {
    const option = document.createElement("option");
    option.value = output.id; option.textContent = output.name;
    select.append(option);
  }
  $("webmidi").hidden = select.options.length === 0;
}

function playMidi() {
  if (!midiAccess || !roll) return;
  const output = midiAccess.outputs.get($("midi-out").value);
  if (!output) return;
  const start = performance.now() + 100;
  let melodic = 0;
  roll.tracks.forEach((t) => {
    const channel = t.drum ? 9 : (melodic++ % 15 >= 9 ? (melodic % 15) + 1 : melodic % 15);
    if (!t.drum) output.send([0xc0 | channel, t.program & 127], start - 50);
    for (const n of t.notes) {
      output.send([0x90 | channel, n[2], n[3]], start + n[0] * 1000);
      output.send([0x80 | channel, n[2], 0], start + n[1] * 1000);
    }
  });
}

async function init() {
  $("knobs").addEventListener("submit", submit);
  $("cancel").addEventListener("click", async () => {
    if (current) { try { await api(`/api/jobs/${current}/cancel`, { method: "POST" }); } catch (e) { say(e.message); } }
  });
  $("command").addEventListener("change", show);
  $("model").addEventListener("change", show);
  $("file").addEventListener("change", () => { if ($("file").files[0]) sendFile($("file").files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) sendFile(e.dataTransfer.files[0]);
  });
  $("midi-play").addEventListener("click", playMidi);
  try { options = await api("/api/options"); } catch (error) { say(error.message); return; }
  for (const name of options.models) {
    const option = document.createElement("option");
    option.value = name; option.textContent = name;
    $("model").append(option);
  }
  for (const style of options.styles) {
    const option = document.createElement("option");
    option.value = style; option.textContent = style;
    $("style").append(option);
  }
  show();
  history();
  setupMidi();
  requestAnimationFrame(playhead);
}

document.addEventListener("DOMContentLoaded", init);
