// The admin dashboard: the apps of a devnet, live from /v1/events.
// The token is asked once and kept in sessionStorage (this tab only). It is sent as an
// Authorization header on every request, the event stream included: EventSource cannot send
// headers, and a token in a URL ends up in logs, so the stream is read with fetch().
"use strict";

const TOKEN_KEY = "rollup-admin-token";
const POINTS = 300; // samples kept per chart (about five minutes)
const LOG_LINES = 100;
const LOGGED = new Set(["action", "batch", "verifier", "restart", "state", "error", "removed"]);

const cards = new Map(); // app name -> {el, charts, series}
let token = sessionStorage.getItem(TOKEN_KEY);
let lastEventId = null;
let streamAbort = null;

const $ = (id) => document.getElementById(id);

function fmt(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

// ---------------------------------------------------------------- API

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401) {
    signOut("That token was refused.");
    throw new Error("unauthorized");
  }
  return response;
}

async function problemText(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16)).join("");
}

// ---------------------------------------------------------------- login

function showLogin(message = "") {
  $("main").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  if (streamAbort) streamAbort.abort();
  setLive("off", "offline");
  showLogin(message);
}

async function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("signout").hidden = false;
  if (typeof uPlot === "undefined") {
    notice("Charts are unavailable: /vendor/uPlot.iife.min.js did not load (run scripts/setup.sh).");
  }
  try {
    await listApps();
  } catch (error) {
    if (error.message !== "unauthorized") notice(`Cannot list the apps: ${error.message}`);
    if (!token) return;
  }
  stream();
}

async function listApps() {
  let cursor = null;
  do {
    const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const response = await api(`/v1/apps${query}`);
    if (!response.ok) throw new Error(await problemText(response));
    const page = await response.json();
    for (const app of page.items) updateApp(app, false);
    cursor = page.next_cursor;
  } while (cursor);
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ---------------------------------------------------------------- the event stream

function setLive(state, text) {
  $("live").dataset.live = state;
  $("live").textContent = text;
}

async function stream() {
  let retry = 2000;
  while (token) {
    streamAbort = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
    try {
      const response = await api("/v1/events", { headers, signal: streamAbort.signal });
      if (!response.ok) throw new Error(await problemText(response));
      setLive("on", "live");
      retry = await readEvents(response.body, retry);
      setLive("wait", "reconnecting");
    } catch (error) {
      if (!token) return;
      setLive("wait", `reconnecting (${error.message})`);
    }
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

async function readEvents(body, retry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return retry;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (frame.retry) retry = frame.retry;
      if (frame.id !== null) lastEventId = frame.id;
      if (frame.data !== null) onEvent(frame.event, JSON.parse(frame.data));
    }
  }
}

function parseFrame(text) {
  const frame = { id: null, event: "message", data: null, retry: null };
  for (const line of text.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data = frame.data === null ? value : `${frame.data}\n${value}`;
    else if (field === "retry" && /^\d+$/.test(value)) frame.retry = Number(value);
  }
  return frame;
}

function onEvent(type, data) {
  if (type === "snapshot" || type === "reset") {
    for (const app of data.apps) updateApp(app, true);
    if (type === "reset") logEvent("reset", { name: "*" }, "missed events: state reloaded");
    return;
  }
  if (type === "app") {
    updateApp(data, true);
    return;
  }
  if (type === "removed") removeApp(data.name);
  if (type === "action" && cards.has(data.name)) {
    const entry = cards.get(data.name);
    entry.actedAt = Math.max(entry.actedAt || 0, data.time_ms);
    entry.actionsSeen = (entry.actionsSeen || 0) + 1;
    entry.pendingUntil = 0;
  }
  if (LOGGED.has(type)) logEvent(type, data, describe(type, data));
}

function describe(type, data) {
  switch (type) {
    case "batch":
      return `batch posted; safe head ${fmt(data.safe)}, ${fmt(data.backlog)} blocks behind`;
    case "verifier":
      return `verifier ${data.status}${data.message ? `: ${data.message}` : ""}`;
    case "restart":
      return `node restarted (${data.restarts} restarts)`;
    case "state":
      return `${data.was} → ${data.state}`;
    case "error":
      return data.line;
    case "removed":
      return "left the devnet";
    case "action":
      return `${data.action} (through this API)`;
    default:
      return JSON.stringify(data);
  }
}

function logEvent(type, data, text) {
  const item = document.createElement("li");
  item.dataset.type = type;
  for (const [cls, content] of [
    ["time", new Date().toLocaleTimeString()],
    ["kind", type],
    ["app", data.name],
    ["text", text],
  ]) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = content;
    item.append(span);
  }
  const list = $("events");
  list.prepend(item);
  while (list.children.length > LOG_LINES) list.lastChild.remove();
}

// ---------------------------------------------------------------- the app cards

function card(name) {
  let entry = cards.get(name);
  if (entry) return entry;
  const el = $("app-card").content.firstElementChild.cloneNode(true);
  el.dataset.app = name;
  for (const button of el.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(name, button.dataset.action));
  }
  $("apps").append(el);
  entry = { el, series: { t: [], tps: [], mean: [], p99: [] }, charts: null };
  cards.set(name, entry);
  return entry;
}

function removeApp(name) {
  const entry = cards.get(name);
  if (!entry) return;
  if (entry.charts) for (const chart of Object.values(entry.charts)) chart.destroy();
  entry.el.remove();
  cards.delete(name);
}

function field(entry, name) {
  return entry.el.querySelector(`[data-field="${name}"]`);
}

function updateApp(app, sampled) {
  const entry = card(app.name);
  const set = (name, text) => (field(entry, name).textContent = text);
  set("name", app.name);
  set("meta", `chain ${app.chain_id} · ${app.vm} · ${app.rpc_url}`);
  set("head", fmt(app.heads.unsafe));
  set("safe", `${fmt(app.heads.safe)} / ${fmt(app.heads.finalized)}`);
  const lag = app.da_backlog_blocks;
  set("da", lag === null ? "–" : `${fmt(lag)} block${lag === 1 ? "" : "s"}`);
  field(entry, "da").className = app.da_backlog_blocks > 20 ? "warn" : "";
  set("tps", fmt(app.tx_per_second, 1));
  set("latency", app.latency_ms ? `${fmt(app.latency_ms.p99, 1)} ms` : "–");
  set("pool", app.mempool ? `${app.mempool.pending} + ${app.mempool.queued}` : "–");
  updateVerifier(field(entry, "verifier"), app.verifier);
  set("restarts", fmt(app.restarts));
  field(entry, "restarts").className = app.restarts > 0 ? "warn" : "";
  set("bus", busText(app.metrics));
  const error = field(entry, "error");
  error.hidden = !app.last_error;
  error.textContent = app.last_error || "";
  if (!sampled || !stale(entry, app)) setState(entry, app.state);
  if (sampled && app.time_ms) addPoint(entry, app);
}

function updateVerifier(el, verifier) {
  el.textContent = verifier ? verifier.status : "none";
  el.title = verifier && verifier.message ? verifier.message : "";
  const status = verifier ? verifier.status : "";
  el.className = status === "diverged" || status === "error" ? "bad" : status === "ok" ? "good" : "";
}

function busText(metrics) {
  if (!metrics || !metrics.bus) return "no bus";
  const bus = metrics.bus;
  const parts = ["sent", "acknowledged", "received", "executed", "refused"]
    .filter((state) => bus[state] !== undefined)
    .map((state) => `${state} ${fmt(bus[state])}`);
  parts.push(`unacked ${fmt(metrics.bus_unacknowledged)}`, `inbox ${fmt(metrics.bus_inbox)}`);
  return parts.join(" · ");
}

// A sample begun before this page's last action may not show it (a pause the sampler missed):
// its state waits for a newer one, or for the action's own event (at most ACTION_WAIT_MS).
const ACTION_WAIT_MS = 5000;

function stale(entry, app) {
  if (entry.pendingUntil && Date.now() < entry.pendingUntil) return true;
  return app.time_ms < (entry.actedAt || 0);
}

function setState(entry, state) {
  const badge = field(entry, "state");
  badge.textContent = state;
  badge.dataset.state = state;
  updateButtons(entry, state);
}

function updateButtons(entry, state) {
  const button = (action) => entry.el.querySelector(`button[data-action="${action}"]`);
  if (entry.busy) return;
  button("pause").disabled = state !== "running";
  button("resume").disabled = state !== "paused";
  button("restart").disabled = state === "stopped";
}

async function act(name, action) {
  const entry = card(name);
  if (action === "restart" && !confirm(`Restart the node of ${name}?`)) return;
  const path = action === "restart" ? `restart` : `sequencer/${action}`;
  const message = field(entry, "message");
  const seen = entry.actionsSeen || 0;
  entry.busy = true;
  for (const button of entry.el.querySelectorAll("button")) button.disabled = true;
  message.textContent = `${action}…`;
  try {
    const response = await api(`/v1/apps/${encodeURIComponent(name)}/${path}`, {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey() },
    });
    if (response.status === 403) throw new Error("the read token cannot do that");
    if (!response.ok) throw new Error(await problemText(response));
    const body = await response.json();
    message.textContent = `${action}: done`;
    entry.busy = false;
    if ((entry.actionsSeen || 0) === seen) entry.pendingUntil = Date.now() + ACTION_WAIT_MS;
    if ("paused" in body) setState(entry, body.paused ? "paused" : "running");
    else updateApp(body, false);
  } catch (error) {
    message.textContent = `${action} failed: ${error.message}`;
    entry.busy = false;
    updateButtons(entry, field(entry, "state").dataset.state);
  }
}

// ---------------------------------------------------------------- charts (uPlot)

function addPoint(entry, app) {
  const s = entry.series;
  s.t.push(app.time_ms / 1000);
  s.tps.push(app.tx_per_second);
  s.mean.push(app.latency_ms ? app.latency_ms.mean : null);
  s.p99.push(app.latency_ms ? app.latency_ms.p99 : null);
  for (const key of Object.keys(s)) if (s[key].length > POINTS) s[key].shift();
  if (typeof uPlot === "undefined") return;
  if (!entry.charts) entry.charts = makeCharts(entry);
  entry.charts.tps.setData([s.t, s.tps]);
  entry.charts.latency.setData([s.t, s.mean, s.p99]);
}

function makeCharts(entry) {
  const host = (name) => entry.el.querySelector(`[data-chart="${name}"]`);
  const width = () => Math.max(host("tps").clientWidth, 200);
  const clock = (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString());
  const axes = [
    { stroke: "#8b98a8", grid: { stroke: "#263241" }, ticks: { stroke: "#263241" }, values: clock },
    { stroke: "#8b98a8", grid: { stroke: "#263241" }, ticks: { stroke: "#263241" }, size: 50 },
  ];
  const options = (series) => ({
    width: width(),
    height: 140,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.2, 1)] } },
    axes,
    series: [{}, ...series],
  });
  const s = entry.series;
  const charts = {
    tps: new uPlot(
      options([{ label: "tx/s", stroke: "#4aa8ff", fill: "rgba(74,168,255,0.15)", width: 2 }]),
      [s.t, s.tps],
      host("tps"),
    ),
    latency: new uPlot(
      options([
        { label: "mean", stroke: "#3fb950", width: 2, spanGaps: true },
        { label: "p99", stroke: "#d29922", width: 2, spanGaps: true },
      ]),
      [s.t, s.mean, s.p99],
      host("latency"),
    ),
  };
  new ResizeObserver(() => {
    for (const chart of Object.values(charts)) chart.setSize({ width: width(), height: 140 });
  }).observe(host("tps"));
  return charts;
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  $("signout").addEventListener("click", () => signOut());
  if (token) start();
  else showLogin();
});
