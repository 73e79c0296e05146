// hostpulse dashboard: one WebSocket, a snapshot then a frame per reading.
// Every value from a message reaches the page through textContent, never as HTML.

const MAX_HISTORY = 600;          // readings kept per host in the page
const RECONNECT_MIN_MS = 500;     // first retry after losing the socket
const RECONNECT_MAX_MS = 30000;   // retries never wait longer than this

const KNOWN_HOSTS_EVERY_MS = 60000; // how often the hosts known only from history are asked for

const state = {
  hosts: new Map(),               // host name -> { latest, history[], offline }
  selected: null,
  staleAfterSecs: 10,
  paused: false,
  renderQueued: false,
  // What the next render draws: only the hosts whose readings changed (`dirty`), unless
  // the whole page must be drawn again (`full`: a snapshot, a selection, the hosts known from
  // history, the once-a-second pass over the silent ones).
  dirty: new Set(),
  full: true,
};
// Marks the whole page for the next render.
function redrawAll() { state.full = true; }

// ---------- formatting ----------
export const fmt = {
  bytes(n) {
    if (!Number.isFinite(n)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  },
  rate(n) {
    if (!Number.isFinite(n)) return "–";
    const units = ["B/s", "kB/s", "MB/s", "GB/s"];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  },
  percent(n) { return Number.isFinite(n) ? `${n.toFixed(1)} %` : "–"; },
  // Events per second (errors, drops, operations): two decimals at most, no trailing zeros.
  perSec(n) { return Number.isFinite(n) ? String(Number(n.toFixed(2))) : "–"; },
  // A receive/send pair, as the card's network figure shows it; "–" when neither is known.
  inOut(rx, tx, f) { return Number.isFinite(rx) || Number.isFinite(tx) ? `↓ ${f(rx)} ↑ ${f(tx)}` : "–"; },
  load(l) { return l ? [l.one, l.five, l.fifteen].map((x) => Number(x).toFixed(2)).join(" · ") : "–"; },
  count(n, unit) { return Number.isFinite(n) ? `${n} ${unit}` : null; },
  duration(secs) {
    if (!Number.isFinite(secs)) return "–";
    const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    return `${m} min ${Math.floor(secs % 60)} s`;
  },
  time(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? "–" : t.toLocaleTimeString();
  },
  when(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? "an unknown time" : t.toLocaleString();
  },
};

// ---------- DOM helpers (text only) ----------
export const $ = (id) => document.getElementById(id);
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function setText(id, text) { const n = $(id); if (n.textContent !== text) n.textContent = text; }

// ---------- data ----------
// "Last seen" is this page's clock at arrival, not the host's `collected_at`: a host whose
// clock runs a minute behind is still live while it publishes.
function secondsSinceSeen(host) {
  return Math.max(0, (Date.now() - host.seenAt) / 1000);
}
function isStale(host) { return secondsSinceSeen(host) > state.staleAfterSecs; }
function fullestDisk(reading) {
  return (reading.disks || []).reduce((a, d) => (a && a.usage_percent >= d.usage_percent ? a : d), null);
}
// `null` when the reading carries no network list at all: unknown is not "0 B/s".
export function networkTotals(reading) {
  if (!Array.isArray(reading.networks)) return null;
  return reading.networks.reduce(
    (t, n) => ({ rx: t.rx + n.received_bytes_per_sec, tx: t.tx + n.transmitted_bytes_per_sec }),
    { rx: 0, tx: 0 });
}
// A reading is the same reading when it comes again (snapshot, frame, history request).
const readingKey = (r) => `${r.seq}|${r.collected_at}`;

// How an original publisher's host got its name, in words for the card's tag.
const HOST_FROM = {
  "hostname field": "named by the hostname field in its messages",
  "AMQP header": "named by an AMQP header of its messages",
  "app_id": "named by the app_id of its messages",
  "fingerprint": "sends no host name: named by a fingerprint of its platform, memory and disks",
};
function legacyNote(reading) {
  const from = reading.legacy?.host_from;
  if (typeof from !== "string") return null;
  return HOST_FROM[from] || `named by: ${from}`;
}

// `live`: it arrived just now; otherwise it comes from a snapshot, and when the host was
// last seen is known only from its own clock (never later than now).
function addReading(reading, live) {
  if (!reading || typeof reading.host !== "string") return;
  let host = state.hosts.get(reading.host);
  if (!host) { host = { latest: null, history: [], keys: new Set(), seenAt: 0 }; state.hosts.set(reading.host, host); }
  // A host known from history only that publishes again moves among the live ones.
  if (host.offline) redrawAll();
  host.offline = false;
  const key = readingKey(reading);
  if (host.keys.has(key)) return;
  host.keys.add(key);
  const collected = new Date(reading.collected_at).getTime();
  const seenAt = live ? Date.now() : Math.min(Date.now(), Number.isNaN(collected) ? 0 : collected);
  host.seenAt = Math.max(host.seenAt, seenAt);
  // Back-filled readings arrive late: keep history in time order.
  let i = host.history.length;
  while (i > 0 && new Date(host.history[i - 1].collected_at).getTime() > collected) i--;
  host.history.splice(i, 0, reading);
  if (host.history.length > MAX_HISTORY) host.keys.delete(readingKey(host.history.shift()));
  host.latest = host.history[host.history.length - 1];
  state.dirty.add(reading.host);
  if (state.selected === null) select(reading.host, false);
}

// A snapshot is the consumer's whole set of hosts: hosts it no longer has go (their cards
// too); the ones it has keep the history this page gathered, merged with the snapshot's.
async function applySnapshot(readings) {
  redrawAll();
  const names = new Set(readings.filter((r) => r && typeof r.host === "string").map((r) => r.host));
  for (const [name, host] of [...state.hosts]) if (!names.has(name) && !host.offline) state.hosts.delete(name);
  for (const reading of readings) addReading(reading, false);
  // The selected host (a bookmark's) may be known from history only: it is kept when it is.
  await loadKnownHosts();
  if (state.selected !== null && !state.hosts.has(state.selected)) {
    state.selected = [...state.hosts.keys()].sort((a, b) => a.localeCompare(b))[0] ?? null;
  }
  loadHistory(state.selected);
}

// The snapshot carries a short window per host; the selected host's longer recent history
// comes over HTTP. Any failure (an older consumer's 404, a restart) leaves the page as it is.
async function loadHistory(name) {
  if (name === null) return;
  try {
    const response = await fetch(`/api/hosts/${encodeURIComponent(name)}/readings`, { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const readings = await response.json();
    if (!Array.isArray(readings) || !state.hosts.has(name)) return;
    for (const reading of readings) if (reading?.host === name) addReading(reading, false);
    redrawAll();
    render();
    // Says which host's history was merged, for whoever waits on it (the browser tests).
    $("detail").dataset.historyOf = name;
  } catch {
    // Nothing to do: live frames keep coming, and the next snapshot asks again.
  }
}

// Hosts the consumer knows only from its history store (silent now, or from before it started)
// get a card marked offline; their charts come from history at a range. A consumer without a
// store lists none.
async function loadKnownHosts() {
  let listed;
  try {
    const response = await fetch("/api/hosts?only=offline", { headers: { accept: "application/json" } });
    if (!response.ok) return;
    listed = await response.json();
  } catch {
    return; // the next snapshot or the next minute asks again
  }
  if (!Array.isArray(listed)) return;
  const offline = new Map(listed.filter((h) => h?.offline === true && typeof h.host === "string").map((h) => [h.host, h]));
  for (const [name, host] of [...state.hosts]) if (host.offline && !offline.has(name)) state.hosts.delete(name);
  for (const [name, known] of offline) {
    if (state.hosts.has(name) && !state.hosts.get(name).offline) continue;
    // What the store keeps of it stands in for a reading: its name, facts and last time seen.
    const latest = { host: name, collected_at: known.last_seen, os: known.os, cpu: known.cpu };
    const seen = new Date(known.last_seen).getTime();
    state.hosts.set(name, { latest, history: [], keys: new Set(), seenAt: Number.isNaN(seen) ? 0 : seen, offline: true });
  }
  if (state.selected === null && state.hosts.size > 0) select([...state.hosts.keys()].sort((a, b) => a.localeCompare(b))[0], false);
  redrawAll();
  scheduleRender();
}
setInterval(loadKnownHosts, KNOWN_HOSTS_EVERY_MS);

// ---------- rendering ----------
function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => { state.renderQueued = false; render(); });
}

// A card is an article (its facts in a list) with a button, its name, that selects the host;
// a click anywhere on the card selects it too.
const cards = new Map(); // host -> { root, button, fields }
function cardFor(name) {
  let card = cards.get(name);
  if (card) return card;
  const root = el("article", "card");
  root.dataset.host = name;
  root.addEventListener("click", () => select(name, true));
  const heading = el("h3", "card-head");
  const button = el("button", "name", name);
  button.type = "button";
  button.setAttribute("aria-pressed", "false");
  heading.append(button);
  const stats = el("dl", "stats");
  const fields = {};
  for (const [key, label] of [["cpu", "CPU"], ["mem", "Memory"], ["disk", "Disk"], ["net", "Net"], ["load", "Load"], ["up", "Uptime"]]) {
    const row = el("div");
    fields[key] = el("dd", `stat-${key}`);
    row.append(el("dt", null, label), fields[key]);
    stats.append(row);
  }
  fields.origin = el("p", "origin");
  fields.origin.hidden = true;
  fields.seen = el("p", "seen");
  root.append(heading, fields.origin, stats, fields.seen);
  card = { root, button, fields };
  cards.set(name, card);
  return card;
}

// Sets a node's text only when it differs: an unchanged card costs no DOM work.
function setNodeText(node, text) { if (node.textContent !== text) node.textContent = text; }

function renderCards() {
  // Only the hosts with new readings, while every one of them already has its card.
  if (!state.full && [...state.dirty].every((name) => cards.has(name) || !state.hosts.has(name))) {
    for (const name of state.dirty) if (state.hosts.has(name)) renderCard(name);
    return;
  }
  // Live hosts first, then the offline ones, each by name.
  const names = [...state.hosts.keys()].sort((a, b) =>
    Number(state.hosts.get(a).offline === true) - Number(state.hosts.get(b).offline === true) || a.localeCompare(b));
  const container = $("host-cards");
  $("no-hosts").hidden = names.length > 0;
  setText("host-count", names.length ? `(${names.length})` : "");
  for (const [name, card] of cards) {
    if (!state.hosts.has(name)) { card.root.remove(); cards.delete(name); }
  }
  names.forEach((name, index) => {
    const card = renderCard(name);
    if (container.children[index] !== card.root) container.insertBefore(card.root, container.children[index] || null);
  });
}

// Draws one host's card from its latest reading; returns the card.
function renderCard(name) {
  const host = state.hosts.get(name);
  const { latest } = host;
  const card = cardFor(name);
  const f = card.fields;
  const disk = fullestDisk(latest);
  const net = networkTotals(latest);
  setNodeText(f.cpu, fmt.percent(latest.cpu?.usage_percent));
  setNodeText(f.mem, fmt.percent(latest.memory?.usage_percent));
  setNodeText(f.disk, disk ? fmt.percent(disk.usage_percent) : "–");
  setNodeText(f.net, net ? `↓ ${fmt.rate(net.rx)} ↑ ${fmt.rate(net.tx)}` : "–");
  const note = legacyNote(latest);
  f.origin.hidden = !note;
  if (f.origin.dataset.note !== (note || "")) {
    f.origin.dataset.note = note || "";
    f.origin.replaceChildren(...(note ? [el("span", "tag", "original publisher"), ` ${note}`] : []));
  }
  setNodeText(f.load, latest.cpu?.load_average ? Number(latest.cpu.load_average.one).toFixed(2) : "–");
  setNodeText(f.up, fmt.duration(latest.uptime_secs));
  const silent = !host.offline && isStale(host);
  // A host that declares no publish interval publishes on demand: silence is normal there.
  const onDemand = silent && !Number.isFinite(latest.interval_secs);
  const stale = silent && !onDemand;
  host.shownSilent = silent;
  card.root.classList.toggle("stale", stale);
  card.root.classList.toggle("on-demand", onDemand);
  card.root.classList.toggle("offline", host.offline === true);
  card.root.classList.toggle("selected", name === state.selected);
  const pressed = String(name === state.selected);
  if (card.button.getAttribute("aria-pressed") !== pressed) card.button.setAttribute("aria-pressed", pressed);
  setNodeText(f.seen, host.offline ? `offline · last seen ${fmt.when(latest.collected_at)}`
    : onDemand ? `on demand · last seen ${Math.round(secondsSinceSeen(host))} s ago`
    : stale ? `stale · last seen ${Math.round(secondsSinceSeen(host))} s ago` : "");
  return card;
}

function renderDetail() {
  const host = state.hosts.get(state.selected);
  $("detail").hidden = !host;
  if (!host) return;
  const r = host.latest;
  setText("detail-host", r.host);
  const stale = host.offline || isStale(host);
  const onDemand = !host.offline && stale && !Number.isFinite(r.interval_secs);
  $("detail-stale").hidden = !stale;
  setText("detail-stale", host.offline ? `offline · last seen ${fmt.when(r.collected_at)}`
    : onDemand ? `on demand · last seen ${Math.round(secondsSinceSeen(host))} s ago`
    : stale ? `stale · last seen ${Math.round(secondsSinceSeen(host))} s ago` : "");
  setText("detail-time", host.offline ? "known from history only: pick a range to see its charts"
    : `reading #${r.seq} at ${fmt.time(r.collected_at)}`);
  setText("detail-os", [r.os?.name, r.os?.version].filter(Boolean).join(" ") || "–");
  setText("detail-kernel", r.os?.kernel || "–");
  setText("detail-uptime", fmt.duration(r.uptime_secs));
  setText("detail-cpu-model", r.cpu
    ? [r.cpu.brand || "unknown", fmt.count(r.cpu.core_count, "cores") ?? "– cores", fmt.count(r.cpu.frequency_mhz, "MHz") ?? "– MHz"].join(" · ")
    : "–");
  setText("detail-cpu", fmt.percent(r.cpu?.usage_percent));
  setText("detail-load", fmt.load(r.cpu?.load_average));

  const cores = $("detail-cores");
  const perCore = r.cpu?.per_core_percent || [];
  cores.hidden = perCore.length === 0;
  while (cores.children.length > perCore.length) cores.lastChild.remove();
  perCore.forEach((p, i) => {
    let row = cores.children[i];
    if (!row) {
      row = el("div", "core");
      const meter = el("div", "meter"); meter.append(el("span"));
      row.append(el("span", null, `#${i}`), meter, el("span"));
      cores.append(row);
    }
    row.children[1].firstChild.style.width = `${Math.min(100, Math.max(0, p))}%`;
    row.children[1].classList.toggle("high", p >= 90);
    row.children[2].textContent = fmt.percent(p);
  });

  const m = r.memory || {};
  setText("detail-mem", fmt.percent(m.usage_percent));
  setText("detail-mem-text", `${fmt.bytes(m.used_bytes)} used of ${fmt.bytes(m.total_bytes)} · ${fmt.bytes(m.available_bytes)} available`);
  $("detail-mem-bar").style.width = `${Math.min(100, Math.max(0, m.usage_percent || 0))}%`;
  setText("detail-swap", m.swap_total_bytes ? `${fmt.bytes(m.swap_used_bytes)} of ${fmt.bytes(m.swap_total_bytes)}` : "none");

  fillTable("detail-disks", r.disks || [], (d) => [d.mount_point, d.file_system, fmt.bytes(d.used_bytes), fmt.bytes(d.available_bytes), fmt.bytes(d.total_bytes), fmt.bytes(d.reserved_bytes), fmt.percent(d.usage_percent)]);
  $("detail-net-unknown").hidden = Array.isArray(r.networks);
  fillTable("detail-net", r.networks || [], (n) => [n.interface, fmt.rate(n.received_bytes_per_sec), fmt.rate(n.transmitted_bytes_per_sec), fmt.bytes(n.total_received_bytes), fmt.bytes(n.total_transmitted_bytes),
    fmt.inOut(n.receive_errors_per_sec, n.transmit_errors_per_sec, fmt.perSec), fmt.inOut(n.receive_drops_per_sec, n.transmit_drops_per_sec, fmt.perSec)]);

  if (!state.paused) setText("raw-json", JSON.stringify(r, null, 2));
  for (const hook of renderHooks) hook(host);
}

// Each cell carries its column's name, shown beside the value when a phone stacks the table.
export function fillTable(id, rows, cells) {
  const table = $(id);
  const headers = [...table.tHead.rows[0].cells].map((c) => c.textContent);
  const body = table.tBodies[0];
  while (body.rows.length > rows.length) body.deleteRow(-1);
  rows.forEach((row, i) => {
    const tr = body.rows[i] || body.insertRow();
    const values = cells(row);
    while (tr.cells.length < values.length) tr.insertCell().dataset.label = headers[tr.cells.length - 1] ?? "";
    values.forEach((v, j) => { if (tr.cells[j].textContent !== v) tr.cells[j].textContent = v; });
  });
}

// Later parts of the page (charts) register here to draw the selected host.
export const renderHooks = [];
// ... and here (alerts) to draw on the whole page after every render.
export const pageHooks = [];

function render() {
  renderCards();
  // The detail (and its charts) only when its host changed, or everything is drawn again.
  if (state.full || state.dirty.has(state.selected)) renderDetail();
  for (const hook of pageHooks) hook();
  state.full = false;
  state.dirty.clear();
}

// Whether the page holds readings of `name` (a card and a detail to open).
export function hasHost(name) { return state.hosts.has(name); }

// ---------- selection (kept in the URL, so it can be bookmarked) ----------
function select(name, remember) {
  state.selected = name;
  redrawAll();
  if (remember) {
    // The rest of the hash (the charts' range, see range.js) stays as it is.
    const params = new URLSearchParams(location.hash.slice(1));
    params.set("host", name);
    history.replaceState(null, "", `#${params}`);
  }
  if (remember) loadHistory(name);
  scheduleRender();
}
// Opens a host's detail, as a click on its card does.
export function selectHost(name) { select(name, true); }
function selectionFromUrl() {
  const host = new URLSearchParams(location.hash.slice(1)).get("host");
  if (host !== null) state.selected = host;
}

// ---------- connection ----------
function setBadge(id, text, kind) {
  const badge = $(id);
  badge.textContent = text;
  badge.className = `badge badge-${kind}`;
}
function showBroker(broker) {
  if (!broker) return;
  setBadge("broker-badge", broker.connected ? "broker: connected" : "broker: disconnected", broker.connected ? "up" : "down");
  $("broker-badge").title = broker.last_error ? `last error: ${broker.last_error}` : "the consumer's connection to RabbitMQ";
}

// Later parts of the page (alerts) see every frame here, before the page is drawn. The last
// snapshot is handed at once to a hook added after it came (modules load one by one).
const frameHooks = [];
let lastSnapshot = null;
export function onFrame(hook) {
  frameHooks.push(hook);
  if (lastSnapshot) hook(lastSnapshot);
}

let attempt = 0;
let countdown = null;
function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => { attempt = 0; setBadge("conn-badge", "live", "up"); setText("conn-retry", ""); });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "snapshot") {
      if (Number.isFinite(frame.stale_after_secs)) state.staleAfterSecs = frame.stale_after_secs;
      applySnapshot(Array.isArray(frame.readings) ? frame.readings : []);
      showBroker(frame.broker);
      lastSnapshot = frame;
    } else if (frame.type === "reading") {
      addReading(frame.data, true);
    } else if (frame.type === "status") {
      showBroker(frame.broker);
    }
    for (const hook of frameHooks) hook(frame);
    scheduleRender();
  });
  let opened = false;
  socket.addEventListener("open", () => { opened = true; });
  socket.addEventListener("close", (event) => {
    // 1008: the server ended this page's login (expired, logged out); log in again.
    if (event.code === 1008) { location.assign("/login"); return; }
    if (opened) { scheduleReconnect(); return; }
    // Refused before it opened: the login may be gone (a restarted consumer forgets them).
    fetch("/api/hosts", { cache: "no-store" })
      .then((answer) => { if (answer.status === 401) location.assign("/login"); else scheduleReconnect(); })
      .catch(() => scheduleReconnect());
  });
}

function scheduleReconnect() {
  // Exponential backoff with jitter, so many pages do not return all at once.
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt);
  const delay = Math.round(base / 2 + Math.random() * base / 2);
  attempt++;
  const due = Date.now() + delay;
  clearInterval(countdown);
  // The badge (a live region) says "reconnecting" once; only the text beside it counts down.
  if ($("conn-badge").textContent !== "reconnecting") setBadge("conn-badge", "reconnecting", "wait");
  const tick = () => {
    const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    setText("conn-retry", `retry in ${left} s`);
  };
  tick();
  countdown = setInterval(tick, 250);
  setTimeout(() => { clearInterval(countdown); setText("conn-retry", "connecting…"); connect(); }, delay);
}

// ---------- controls ----------
$("raw-pause").addEventListener("click", (e) => {
  state.paused = !state.paused;
  e.target.textContent = state.paused ? "Resume" : "Pause";
  state.dirty.add(state.selected);
  scheduleRender();
});
$("raw-copy").addEventListener("click", async (e) => {
  try { await navigator.clipboard.writeText($("raw-json").textContent); e.target.textContent = "Copied"; }
  catch { e.target.textContent = "Copy failed"; }
  setTimeout(() => { e.target.textContent = "Copy"; }, 1500);
});
window.addEventListener("hashchange", () => { selectionFromUrl(); redrawAll(); scheduleRender(); });

// Stale marks and "last seen" move even when nothing arrives: once a second, the cards of
// the hosts that are silent or were shown silent, and the selected host's detail.
setInterval(() => {
  for (const [name, host] of state.hosts) {
    if (host.shownSilent || (!host.offline && isStale(host))) state.dirty.add(name);
  }
  if (state.selected !== null) state.dirty.add(state.selected);
  scheduleRender();
}, 1000);

selectionFromUrl();
connect();
