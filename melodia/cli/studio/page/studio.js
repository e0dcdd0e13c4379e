// melodia studio: the page's behaviour. No framework, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["seconds", "bars", "form", "span", "tracks", "candidates", "seed", "temperature",
  "sampler", "randomness", "style", "tempo", "lineup", "key", "density", "harmony", "num",
  "repeat", "drum_grid", "memory", "keep", "feel", "lead"];
// far apart in hue and lightness; drums have their own grey
const COLOURS = ["#4dabf7", "#ff922b", "#f06595", "#ffe066", "#9775fa", "#51cf66", "#e8590c",
  "#22b8cf", "#d6336c", "#94d82d"];
const DRUM_COLOUR = "#dee2e6";
// General MIDI percussion (key numbers 35..81), for the drum lanes
const KIT = { 35: "Kick 2", 36: "Kick", 37: "Side stick", 38: "Snare", 39: "Clap", 40: "Snare 2",
  41: "Low floor tom", 42: "Closed hi-hat", 43: "High floor tom", 44: "Pedal hi-hat", 45: "Low tom",
  46: "Open hi-hat", 47: "Low-mid tom", 48: "Hi-mid tom", 49: "Crash", 50: "High tom", 51: "Ride",
  52: "China", 53: "Ride bell", 54: "Tambourine", 55: "Splash", 56: "Cowbell", 57: "Crash 2",
  58: "Vibraslap", 59: "Ride 2", 60: "Hi bongo", 61: "Low bongo", 62: "Mute hi conga",
  63: "Open hi conga", 64: "Low conga", 65: "High timbale", 66: "Low timbale", 67: "High agogo",
  68: "Low agogo", 69: "Cabasa", 70: "Maracas", 71: "Short whistle", 72: "Long whistle",
  73: "Short guiro", 74: "Long guiro", 75: "Claves", 76: "Hi wood block", 77: "Low wood block",
  78: "Mute cuica", 79: "Open cuica", 80: "Mute triangle", 81: "Open triangle" };
const RULER = 18, MARKS = 16, LANE = 13, PITCHED = 300;
let view = null;  // the result shown: its job and what the roll needs to draw it
let zoom = 1;
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
  const inBars = $("bars").value.trim() !== "" || $("form").value.trim() !== "";
  for (const label of document.querySelectorAll("label[data-for]")) {
    const wanted = label.dataset.for.split(" ").includes(command)
      && !(label.hasAttribute("data-band") && !band) && !(label.hasAttribute("data-piano") && band)
      && !(label.hasAttribute("data-free") && inBars)
      && !(label.hasAttribute("data-noform") && $("form").value.trim() !== "");
    label.hidden = !wanted;
  }
  $("drop-role").textContent = command === "generate" ? "(a primer to continue, optional)"
    : command === "accompany" ? "(the song the band plays with)"
    : command === "restyle" ? "(the song whose melody the new band plays)" : "(the song to fill in)";
  $("go").textContent = { generate: "Generate", accompany: "Accompany", infill: "Fill in",
    restyle: "Restyle" }[command];
}

function commandChanged() {
  const command = $("command").value;
  // a band plays along: accompany and restyle need a band model
  if ((command === "accompany" || command === "restyle") && $("model").value === "piano"
      && [...$("model").options].some((o) => o.value === "band")) $("model").value = "band";
  // a file dropped for one command is not silently the next one's primer or song
  if (upload && upload.command !== command) forget();
  show();
}

function forget() {
  upload = null;
  $("file").value = "";
  $("file-info").textContent = "Drop a .mid here or choose one.";
}

function settings() {
  const command = $("command").value;
  const out = {};
  for (const name of FIELDS) {
    const element = $(name);
    const label = element.closest("label");
    if (label && label.hidden) continue;
    if (element.type === "checkbox") { if (element.checked) out[name] = true; continue; }
    const value = element.value.trim();
    if (value !== "") out[name] = value;
  }
  if (command !== "generate") { delete out.key; delete out.density; }
  if (command !== "accompany" && command !== "restyle") delete out.harmony;
  if (out.feel === "auto") delete out.feel;  // the default: a shorter line
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
    upload.command = $("command").value;
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
  if (job.progress !== null && job.progress !== undefined) $("progress").value = job.progress;
  else if (job.state === "running") $("progress").removeAttribute("value");
  else $("progress").value = 0;
  const percent = job.progress !== null && job.progress !== undefined ? ` (${Math.round(job.progress * 100)}%)` : "";
  $("progress-text").textContent = job.state === "queued"
    ? `queued: ${job.ahead ? `${job.ahead} job${job.ahead > 1 ? "s" : ""} ahead` : "next"}`
    : `${job.state}: ${job.events} events, ${job.seconds_done} s of music${percent}`;
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

async function showResult(job, take = 1) {
  const files = job.takes.length ? job.takes[take - 1] : job;
  $("result").hidden = false;
  $("line").textContent = job.line;
  $("download-mid").href = files.midi;
  $("download-wav").hidden = !files.audio;
  if (files.audio) $("download-wav").href = files.audio;
  roll = await api(`/api/jobs/${job.id}/roll?take=${take}`);
  view = { job, take, metered: metered(job, roll) };
  describe(job);
  await takes(job, take);
  zoom = 1;
  draw(0);
  const audio = $("audio");
  if (files.audio) {
    audio.src = files.audio;
    audio.play().catch(() => {});
  } else audio.removeAttribute("src");
}

async function takes(job, shown) {
  // variations side by side: a small roll each, to hear, compare and keep one
  const box = $("takes");
  box.hidden = job.takes.length < 2;
  if (box.hidden) return box.replaceChildren();
  if (box.dataset.job === job.id) {
    box.querySelectorAll(".take").forEach((card, i) => card.classList.toggle("shown", i + 1 === shown));
    return;
  }
  box.dataset.job = job.id;
  const cards = await Promise.all(job.takes.map(async (files, i) => {
    const card = document.createElement("div");
    card.className = `take${i + 1 === shown ? " shown" : ""}`;
    const canvas = document.createElement("canvas");
    canvas.width = 240; canvas.height = 60;
    mini(canvas, await api(`/api/jobs/${job.id}/roll?take=${i + 1}`));
    const play = document.createElement("button");
    play.type = "button"; play.textContent = `Play variation ${i + 1}`;
    play.addEventListener("click", () => showResult(job, i + 1));
    const keep = document.createElement("a");
    keep.href = files.midi; keep.download = ""; keep.textContent = `Keep variation ${i + 1} (MIDI)`;
    card.append(canvas, play, keep);
    return card;
  }));
  box.replaceChildren(...cards);
}

function mini(canvas, notes) {
  const g = canvas.getContext("2d");
  g.fillStyle = "#111"; g.fillRect(0, 0, canvas.width, canvas.height);
  const span = Math.max(notes.end_s, 0.1);
  notes.tracks.forEach((t, i) => {
    g.fillStyle = t.drum ? DRUM_COLOUR : COLOURS[i % COLOURS.length];
    for (const n of t.notes) {
      const y = canvas.height - ((t.drum ? 20 : n[2]) / 128) * canvas.height;
      g.fillRect((n[0] / span) * canvas.width, y, Math.max(((n[1] - n[0]) / span) * canvas.width, 1), 2);
    }
  });
}

function metered(job, roll) {
  // free-time piano is drawn in seconds; a band, a form, a song's bars in bars and beats
  return roll.tracks.some((t) => t.drum) || job.command !== "generate" || !!job.settings.form
    || !!job.settings.bars || job.settings.model !== "piano";
}

function describe(job) {
  const info = job.info || {}, rows = [];
  if (info.band) rows.push(`Band: ${info.band.style || "no style"} at ${Math.round(info.band.qpm)} BPM, ${info.band.lineup.join(", ")}`);
  for (const s of info.sections || []) {
    const how = s.new ? "new" : s.anew.length ? `${s.letter} again, bar${s.anew.length > 1 ? "s" : ""} ${s.anew.join(", ")} played anew` : `${s.letter} again, as it was`;
    rows.push(`Section ${s.letter}: bars ${s.first_bar}-${s.first_bar + s.bars - 1}, ${how}`);
  }
  if (info.restyle) rows.push(`Kept ${info.restyle.melody.join(", ")} (${info.restyle.feel} feel: ${info.restyle.moved} notes moved)`);
  if (info.infill) rows.push(`Filled bars ${info.infill.bars} of ${info.infill.tracks}: candidate ${info.infill.chosen} of ${info.infill.candidates} (seams ${info.infill.seams})`);
  if (job.partial) rows.push(`Partial: ${job.message}`);
  $("info").replaceChildren(...rows.map((text) => { const li = document.createElement("li"); li.textContent = text; return li; }));
}

function layout() {
  const drums = [...new Set(roll.tracks.filter((t) => t.drum).flatMap((t) => t.notes.map((n) => n[2])))].sort((a, b) => b - a);
  let low = 127, high = 0;
  for (const t of roll.tracks) if (!t.drum) for (const n of t.notes) { low = Math.min(low, n[2]); high = Math.max(high, n[2]); }
  const pitched = low <= high;
  if (!pitched) { low = 48; high = 72; }
  const span = Math.max(roll.end_s, 0.1);
  const box = $("roll-box").clientWidth || 960;
  const width = Math.min(Math.round(box * zoom), 30000);
  const pitchedHeight = pitched || !drums.length ? PITCHED : 0;
  return { drums, low, high, span, width, pitchedHeight, top: RULER + MARKS,
    height: RULER + MARKS + pitchedHeight + drums.length * LANE };
}

function draw(at) {
  const canvas = $("roll");
  if (!roll) return;
  const L = layout();
  if (canvas.width !== L.width || canvas.height !== L.height) {
    canvas.width = L.width; canvas.height = L.height;
    canvas.style.width = `${L.width}px`; canvas.style.height = `${L.height}px`;
  }
  const g = canvas.getContext("2d");
  const x = (t) => (t / L.span) * L.width;
  g.fillStyle = "#111";
  g.fillRect(0, 0, L.width, L.height);
  ruler(g, L, x);
  marks(g, L, x);
  const rows = L.high - L.low + 1, h = L.pitchedHeight / rows;
  $("legend").replaceChildren();
  let melodic = 0;
  roll.tracks.forEach((t) => {
    const colour = t.drum ? DRUM_COLOUR : COLOURS[melodic++ % COLOURS.length];
    g.fillStyle = colour;
    for (const n of t.notes) {
      const w = Math.max(x(n[1] - n[0]), t.drum ? 3 : 1.5);
      const y = t.drum ? L.top + L.pitchedHeight + L.drums.indexOf(n[2]) * LANE + 2
        : L.top + L.pitchedHeight - (n[2] - L.low + 1) * h;
      g.fillRect(x(n[0]), y, t.drum ? Math.min(w, 6) : w, t.drum ? LANE - 4 : Math.max(h - 0.5, 1));
    }
    const item = document.createElement("li");
    item.textContent = t.name;
    item.style.setProperty("--c", colour);
    $("legend").append(item);
  });
  g.font = "10px system-ui, sans-serif";
  L.drums.forEach((pitch, i) => {  // the lanes, named by kit piece
    const y = L.top + L.pitchedHeight + i * LANE;
    g.fillStyle = "rgba(255,255,255,0.06)";
    if (i % 2 === 0) g.fillRect(0, y, L.width, LANE);
    g.fillStyle = "#adb5bd";
    g.fillText(KIT[pitch] || `Drum ${pitch}`, 4 + $("roll-box").scrollLeft, y + LANE - 3);
  });
  g.fillStyle = "#fff";
  g.fillRect(x(at), 0, 2, L.height);
}

function ruler(g, L, x) {
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#222";
  g.fillRect(0, 0, L.width, RULER);
  const lines = [];
  if (view && view.metered && roll.bars && roll.bars.length > 1) {
    const every = Math.max(1, Math.ceil(40 / (x(roll.bars[1] - roll.bars[0]) || 1)));
    roll.bars.forEach((start, i) => {
      const next = roll.bars[i + 1] ?? start + (start - (roll.bars[i - 1] ?? 0));
      const beats = roll.beats[i] || 4;
      for (let b = 1; b < beats; b++) lines.push([start + (next - start) * b / beats, "rgba(255,255,255,0.07)", null]);
      lines.push([start, "rgba(255,255,255,0.25)", i % every === 0 ? `${i + 1}` : null]);
    });
  } else {
    const step = [1, 2, 5, 10, 15, 30, 60].find((s) => x(s) >= 50) || 120;
    for (let t = 0; t <= L.span; t += step) lines.push([t, "rgba(255,255,255,0.2)", `${t}s`]);
  }
  for (const [t, colour, label] of lines) {
    g.fillStyle = colour;
    g.fillRect(x(t), RULER, 1, L.height - RULER);
    if (label !== null) { g.fillStyle = "#ced4da"; g.fillText(label, x(t) + 2, RULER - 5); }
  }
}

function marks(g, L, x) {
  const info = (view && view.job.info) || {};
  const spans = [];
  for (const s of info.sections || []) {
    spans.push([s.start_s, s.end_s, s.new ? "rgba(77,171,247,0.13)" : "rgba(81,207,102,0.13)", s.letter]);
    for (const bar of s.anew) {  // bars a returning section played anew
      const i = s.first_bar + bar - 2;
      if (roll.bars && roll.bars[i] !== undefined) spans.push([roll.bars[i], roll.bars[i + 1] ?? s.end_s, "rgba(255,146,43,0.22)", "anew"]);
    }
  }
  if (info.infill) spans.push([info.infill.start_s, info.infill.end_s, "rgba(255,146,43,0.22)", `filled (${info.infill.chosen}/${info.infill.candidates})`]);
  g.font = "11px system-ui, sans-serif";
  for (const [t0, t1, colour, label] of spans) {
    g.fillStyle = colour;
    g.fillRect(x(t0), RULER, Math.max(x(t1) - x(t0), 1), L.height - RULER);
    g.fillStyle = "#f1f3f5";
    g.fillText(label, x(t0) + 3, RULER + MARKS - 4);
  }
}

function setZoom(factor) {
  const box = $("roll-box"), audio = $("audio");
  zoom = factor === 0 ? 1 : Math.min(Math.max(zoom * factor, 1), 64);
  draw(audio.currentTime || 0);
  if (roll) box.scrollLeft = (audio.currentTime / Math.max(roll.end_s, 0.1)) * $("roll").width - box.clientWidth / 3;
}

function playhead() {
  const audio = $("audio"), box = $("roll-box");
  if (roll && !audio.paused) {
    draw(audio.currentTime);
    const at = (audio.currentTime / Math.max(roll.end_s, 0.1)) * $("roll").width;
    if (at < box.scrollLeft || at > box.scrollLeft + box.clientWidth * 0.9) box.scrollLeft = at - box.clientWidth * 0.1;
  }
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
    if (job.message && job.state !== "done") {  // why it failed or stopped
      const why = document.createElement("span");
      why.className = "why"; why.textContent = job.message;
      item.append(why, " ");
    }
    if (job.midi) {
      const play = document.createElement("button");
      play.type = "button"; play.textContent = "Show and play"; play.className = "replay";
      play.addEventListener("click", () => showResult(job, 1));
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
  $("command").addEventListener("change", commandChanged);
  $("model").addEventListener("change", show);
  for (const id of ["bars", "form"]) for (const kind of ["input", "change"]) $(id).addEventListener(kind, show);
  $("zoom-in").addEventListener("click", () => setZoom(2));
  $("zoom-out").addEventListener("click", () => setZoom(0.5));
  $("zoom-fit").addEventListener("click", () => setZoom(0));
  $("roll-box").addEventListener("scroll", () => { if (roll) draw($("audio").currentTime || 0); });
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
