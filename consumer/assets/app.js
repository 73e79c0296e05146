// hostpulse dashboard: one WebSocket, a snapshot then a frame per reading.
// Every value from a message reaches the page through textContent, never as HTML.

const MAX_HISTORY = 600;          // readings kept per host in the page
const RECONNECT_MIN_MS = 500;     // first retry after losing the socket
const RECONNECT_MAX_MS = 30000;   // retries never wait longer than this

const state = {
  hosts: new Map(),               // host name -> { latest, history[] }
  selected: null,
  staleAfterSecs: 10,
  paused: false,
  renderQueued: false,
};

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
  load(l) { return l ? [l.one, l.five, l.fifteen].map((x) => Number(x).toFixed(2)).join(" · ") : "–"; },
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
};

// ---------- DOM helpers (text only) ----------
const $ = (id) => document.getElementById(id);
function el(tag, className, text) {
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
function networkTotals(reading) {
  return (reading.networks || []).reduce(
    (t, n) => ({ rx: t.rx + n.received_bytes_per_sec, tx: t.tx + n.transmitted_bytes_per_sec }),
    { rx: 0, tx: 0 });
}

// `live`: it arrived just now; otherwise it comes from a snapshot, and when the host was
// last seen is known only from its own clock (never later than now).
function addReading(reading, live) {
  if (!reading || typeof reading.host !== "string") return;
  let host = state.hosts.get(reading.host);
  if (!host) { host = { latest: null, history: [], seenAt: 0 }; state.hosts.set(reading.host, host); }
  const collected = new Date(reading.collected_at).getTime();
  const seenAt = live ? Date.now() : Math.min(Date.now(), Number.isNaN(collected) ? 0 : collected);
  host.seenAt = Math.max(host.seenAt, seenAt);
  // Back-filled readings arrive late: keep history in time order.
  let i = host.history.length;
  while (i > 0 && new Date(host.history[i - 1].collected_at).getTime() > collected) i--;
  host.history.splice(i, 0, reading);
  if (host.history.length > MAX_HISTORY) host.history.shift();
  host.latest = host.history[host.history.length - 1];
  if (state.selected === null) select(reading.host, false);
}

// ---------- rendering ----------
function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => { state.renderQueued = false; render(); });
}

const cards = new Map(); // host -> { root, fields }
function cardFor(name) {
  let card = cards.get(name);
  if (card) return card;
  const root = el("button", "card");
  root.type = "button";
  root.dataset.host = name;
  root.addEventListener("click", () => select(name, true));
  const title = el("div", "name", name);
  const stats = el("dl", "stats");
  const fields = {};
  for (const [key, label] of [["cpu", "CPU"], ["mem", "Memory"], ["disk", "Disk"], ["net", "Net"], ["load", "Load"], ["up", "Uptime"]]) {
    stats.append(el("dt", null, label));
    fields[key] = el("dd", `stat-${key}`);
    stats.append(fields[key]);
  }
  fields.seen = el("div", "seen");
  root.append(title, stats, fields.seen);
  card = { root, fields };
  cards.set(name, card);
  return card;
}

function renderCards() {
  const names = [...state.hosts.keys()].sort((a, b) => a.localeCompare(b));
  const container = $("host-cards");
  $("no-hosts").hidden = names.length > 0;
  setText("host-count", names.length ? `(${names.length})` : "");
  names.forEach((name, index) => {
    const { latest } = state.hosts.get(name);
    const card = cardFor(name);
    const f = card.fields;
    const disk = fullestDisk(latest);
    const net = networkTotals(latest);
    f.cpu.textContent = fmt.percent(latest.cpu?.usage_percent);
    f.mem.textContent = fmt.percent(latest.memory?.usage_percent);
    f.disk.textContent = disk ? fmt.percent(disk.usage_percent) : "–";
    f.net.textContent = `↓ ${fmt.rate(net.rx)} ↑ ${fmt.rate(net.tx)}`;
    f.load.textContent = latest.cpu?.load_average ? Number(latest.cpu.load_average.one).toFixed(2) : "–";
    f.up.textContent = fmt.duration(latest.uptime_secs);
    const host = state.hosts.get(name);
    const stale = isStale(host);
    card.root.classList.toggle("stale", stale);
    card.root.classList.toggle("selected", name === state.selected);
    f.seen.textContent = stale ? `stale · last seen ${Math.round(secondsSinceSeen(host))} s ago` : "";
    if (container.children[index] !== card.root) container.insertBefore(card.root, container.children[index] || null);
  });
}

function renderDetail() {
  const host = state.hosts.get(state.selected);
  $("detail").hidden = !host;
  if (!host) return;
  const r = host.latest;
  setText("detail-host", r.host);
  const stale = isStale(host);
  $("detail-stale").hidden = !stale;
  setText("detail-stale", stale ? `stale · last seen ${Math.round(secondsSinceSeen(host))} s ago` : "");
  setText("detail-time", `reading #${r.seq} at ${fmt.time(r.collected_at)}`);
  setText("detail-os", [r.os?.name, r.os?.version].filter(Boolean).join(" ") || "–");
  setText("detail-kernel", r.os?.kernel || "–");
  setText("detail-uptime", fmt.duration(r.uptime_secs));
  setText("detail-cpu-model", r.cpu ? `${r.cpu.brand || "unknown"} · ${r.cpu.core_count} cores · ${r.cpu.frequency_mhz} MHz` : "–");
  setText("detail-cpu", fmt.percent(r.cpu?.usage_percent));
  setText("detail-load", fmt.load(r.cpu?.load_average));

  const cores = $("detail-cores");
  const perCore = r.cpu?.per_core_percent || [];
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

  fillTable("detail-disks", r.disks || [], (d) => [d.mount_point, d.file_system, fmt.bytes(d.used_bytes), fmt.bytes(d.available_bytes), fmt.bytes(d.total_bytes), fmt.percent(d.usage_percent)]);
  fillTable("detail-net", r.networks || [], (n) => [n.interface, fmt.rate(n.received_bytes_per_sec), fmt.rate(n.transmitted_bytes_per_sec), fmt.bytes(n.total_received_bytes), fmt.bytes(n.total_transmitted_bytes)]);

  if (!state.paused) setText("raw-json", JSON.stringify(r, null, 2));
  for (const hook of renderHooks) hook(host);
}

function fillTable(id, rows, cells) {
  const body = $(id).tBodies[0];
  while (body.rows.length > rows.length) body.deleteRow(-1);
  rows.forEach((row, i) => {
    const tr = body.rows[i] || body.insertRow();
    const values = cells(row);
    while (tr.cells.length < values.length) tr.insertCell();
    values.forEach((v, j) => { if (tr.cells[j].textContent !== v) tr.cells[j].textContent = v; });
  });
}

// Later parts of the page (charts) register here to draw the selected host.
export const renderHooks = [];

function render() {
  renderCards();
  renderDetail();
}

// ---------- selection (kept in the URL, so it can be bookmarked) ----------
function select(name, remember) {
  state.selected = name;
  if (remember) history.replaceState(null, "", `#host=${encodeURIComponent(name)}`);
  scheduleRender();
}
function selectionFromUrl() {
  const match = /^#host=(.*)$/.exec(location.hash);
  if (match) { try { state.selected = decodeURIComponent(match[1]); } catch { state.selected = null; } }
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

let attempt = 0;
let countdown = null;
function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => { attempt = 0; setBadge("conn-badge", "live", "up"); });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "snapshot") {
      state.hosts.clear();
      if (Number.isFinite(frame.stale_after_secs)) state.staleAfterSecs = frame.stale_after_secs;
      for (const reading of frame.readings || []) addReading(reading, false);
      showBroker(frame.broker);
    } else if (frame.type === "reading") {
      addReading(frame.data, true);
    } else if (frame.type === "status") {
      showBroker(frame.broker);
    }
    scheduleRender();
  });
  socket.addEventListener("close", () => scheduleReconnect());
}

function scheduleReconnect() {
  // Exponential backoff with jitter, so many pages do not return all at once.
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt);
  const delay = Math.round(base / 2 + Math.random() * base / 2);
  attempt++;
  const due = Date.now() + delay;
  clearInterval(countdown);
  const tick = () => {
    const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    setBadge("conn-badge", `reconnecting in ${left} s`, "wait");
  };
  tick();
  countdown = setInterval(tick, 250);
  setTimeout(() => { clearInterval(countdown); setBadge("conn-badge", "connecting…", "wait"); connect(); }, delay);
}

// ---------- controls ----------
$("raw-pause").addEventListener("click", (e) => {
  state.paused = !state.paused;
  e.target.textContent = state.paused ? "Resume" : "Pause";
  scheduleRender();
});
$("raw-copy").addEventListener("click", async (e) => {
  try { await navigator.clipboard.writeText($("raw-json").textContent); e.target.textContent = "Copied"; }
  catch { e.target.textContent = "Copy failed"; }
  setTimeout(() => { e.target.textContent = "Copy"; }, 1500);
});
window.addEventListener("hashchange", () => { selectionFromUrl(); scheduleRender(); });

// Stale marks and "last seen" move even when nothing arrives.
setInterval(scheduleRender, 1000);

selectionFromUrl();
connect();
