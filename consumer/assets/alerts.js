// Alerts on the dashboard: a badge on each host card with active alerts, the alerts panel
// (firing now, recently resolved) and the selected host's active alerts in its detail.
// Filled from the snapshot's `alerts: {active, recent}`, then moved by `alert` frames.
// While a host is down, its other alerts are held: shown under its down alert, marked "held"
// and with the value they had, not as current (the consumer's rule, kept the same here).
// Every value from the server reaches the page through textContent, never as HTML.

import { onFrame, pageHooks, renderHooks, hasHost, selectHost, fmt, $, el } from "./app.js";

const RECENT_KEPT = 200;   // resolved alerts held, as many as the consumer keeps
const RECENT_SHOWN = 20;   // ... and shown in the panel, newest first

const alerts = {
  active: new Map(),       // host, rule, item -> the alert's latest event
  recent: [],              // resolved events, newest first
  version: 0,              // moves with every change, so the panel is redrawn only then
};
let drawn = { version: -1, hosts: "" };
let byHost = new Map();    // host -> its active events, worst first
let downHosts = new Set(); // hosts with an active host-down alert


// ---------- data ----------
const isEvent = (e) => e && typeof e.host === "string" && typeof e.rule === "string";
const keyOf = (e) => JSON.stringify([e.host, e.rule, e.item ?? ""]);
const SEVERITY_ORDER = { critical: 0, warning: 1 };
const rank = (e) => SEVERITY_ORDER[e.severity] ?? 2;
function worstFirst(a, b) {
  return rank(a) - rank(b) || a.host.localeCompare(b.host) || a.rule.localeCompare(b.rule)
    || String(a.item ?? "").localeCompare(String(b.item ?? ""));
}

function applySnapshot(part) {
  alerts.active.clear();
  const active = Array.isArray(part?.active) ? part.active : [];
  for (const e of active) if (isEvent(e)) alerts.active.set(keyOf(e), e);
  alerts.recent = (Array.isArray(part?.recent) ? part.recent : []).filter(isEvent).slice(0, RECENT_KEPT);
  changed();
}

function applyEvent(e) {
  if (!isEvent(e)) return;
  if (e.kind === "resolved") {
    alerts.active.delete(keyOf(e));
    alerts.recent.unshift(e);
    if (alerts.recent.length > RECENT_KEPT) alerts.recent.length = RECENT_KEPT;
  } else {
    alerts.active.set(keyOf(e), e);
  }
  changed();
}

const isDown = (e) => e.metric === "silent_intervals";
const isHeld = (e) => !isDown(e) && downHosts.has(e.host);

function changed() {
  alerts.version++;
  downHosts = new Set([...alerts.active.values()].filter(isDown).map((e) => e.host));
  byHost = new Map();
  for (const e of [...alerts.active.values()].sort(worstFirst)) {
    if (!byHost.has(e.host)) byHost.set(e.host, []);
    byHost.get(e.host).push(e);
  }
}

onFrame((frame) => {
  // An older consumer's snapshot has no alerts: it shows none.
  if (frame.type === "snapshot") applySnapshot(frame.alerts);
  else if (frame.type === "alert") applyEvent(frame.event);
});

// ---------- formatting ----------
const severityText = (s) => (s === "critical" || s === "warning" ? s : "unknown");

// The judged value in the unit of what the rule measures.
function formatValue(metric, v) {
  if (!Number.isFinite(v)) return "–";
  switch (metric) {
    case "silent_intervals": return `silent ${v.toFixed(0)} intervals`;
    case "load_per_core": return `${v.toFixed(2)} per core`;
    case "disk_full_in_hours": return `full in ${v.toFixed(1)} h`;
    case "temperature_celsius": return `${v.toFixed(1)} °C`;
    case "network_receive_bytes_per_second":
    case "network_transmit_bytes_per_second": return fmt.rate(v);
    default: return metric?.endsWith("_percent") ? fmt.percent(v) : v.toFixed(1);
  }
}

// A time of today as a clock time; an older one with its date.
function timeElement(iso) {
  const node = el("time");
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) { node.textContent = "–"; return node; }
  node.dateTime = t.toISOString();
  node.textContent = t.toDateString() === new Date().toDateString() ? t.toLocaleTimeString() : t.toLocaleString();
  return node;
}

function severityBadge(severity) {
  const s = severityText(severity);
  return el("span", `sev sev-${s}`, s);
}

// ---------- the panel ----------
// A host the page holds is a button that opens its detail; one it does not (no reading yet,
// or forgotten) is plain text.
function hostCell(name) {
  if (!hasHost(name)) return el("span", "alert-host", name);
  const button = el("button", "alert-host", name);
  button.type = "button";
  button.addEventListener("click", () => {
    selectHost(name);
    // After the page's render, queued in this same frame.
    requestAnimationFrame(() => $("detail").scrollIntoView({ block: "start" }));
  });
  return button;
}

// Rows are keyed by alert and by what they show, so a redraw keeps the ones that did not
// change (and the focus of a button in them).
function fillRows(id, events, cells) {
  const body = $(id).tBodies[0];
  const headers = [...$(id).tHead.rows[0].cells].map((c) => c.textContent);
  const old = new Map([...body.rows].map((tr) => [tr.dataset.key, tr]));
  const rows = events.map((e) => {
    const signature = JSON.stringify([keyOf(e), e.kind, e.severity, e.value, e.peak, e.started_at, e.at, hasHost(e.host), isHeld(e), e.reason ?? null]);
    let tr = old.get(signature);
    if (tr) { old.delete(signature); return tr; }
    tr = document.createElement("tr");
    tr.dataset.key = signature;
    tr.dataset.host = e.host;
    if (e.kind !== "resolved") tr.dataset.state = isHeld(e) ? "held" : "firing";
    if (isHeld(e)) tr.className = "alert-held";
    cells(e).forEach((content, i) => {
      const td = tr.insertCell();
      td.dataset.label = headers[i] ?? "";
      td.append(content);
    });
    return tr;
  });
  for (const tr of old.values()) tr.remove();
  rows.forEach((tr, i) => { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
}

// Held alerts go right under their host's down alert.
function panelOrder() {
  const all = [...alerts.active.values()].sort(worstFirst);
  const out = [];
  for (const e of all) {
    if (isHeld(e)) continue;
    out.push(e);
    if (isDown(e)) out.push(...all.filter((h) => h.host === e.host && isHeld(h)));
  }
  return out;
}

function heldBadge(severity) {
  return el("span", "sev sev-held", `held · ${severityText(severity)}`);
}

function renderPanel() {
  const active = panelOrder();
  const held = active.filter(isHeld).length;
  const firing = active.length - held;
  $("alerts-none").hidden = active.length > 0;
  $("alerts-firing-wrap").hidden = active.length === 0;
  $("alert-count").textContent = !active.length ? ""
    : held ? `(${firing} firing, ${held} held: host down)` : `(${firing} firing)`;
  fillRows("alerts-firing", active, (e) => isHeld(e) ? [
    hostCell(e.host), `↳ ${e.rule}`, e.item ?? "–", heldBadge(e.severity), timeElement(e.started_at),
    `was ${formatValue(e.metric, e.value)}`, formatValue(e.metric, e.peak),
  ] : [
    hostCell(e.host), e.rule, e.item ?? "–", severityBadge(e.severity), timeElement(e.started_at),
    formatValue(e.metric, e.value), formatValue(e.metric, e.peak),
  ]);

  const recent = alerts.recent.slice(0, RECENT_SHOWN);
  $("alerts-recent-box").hidden = recent.length === 0;
  $("alerts-recent-count").textContent = alerts.recent.length > recent.length
    ? `(latest ${recent.length} of ${alerts.recent.length})` : `(${recent.length})`;
  fillRows("alerts-recent", recent, (e) => [
    hostCell(e.host), e.rule, e.item ?? "–", severityBadge(e.severity), timeElement(e.started_at),
    endCell(e), formatValue(e.metric, e.peak),
  ]);
}

// The end of a resolved alert, with why when it was not its value.
function endCell(e) {
  const cell = el("span");
  cell.append(timeElement(e.at));
  if (e.reason === "no_data") cell.append(el("span", "alert-reason", " · no data (host silent)"));
  return cell;
}

// ---------- the cards ----------
// The badge says the count and the worst severity in words; the colour only repeats it. It
// describes the card's button, so a screen reader on the host's name hears it too.
let badges = 0;
function renderBadges() {
  for (const card of document.querySelectorAll("#host-cards .card")) {
    const events = byHost.get(card.dataset.host) || [];
    let badge = card.querySelector(".alert-badge");
    const button = card.querySelector(".name");
    if (events.length === 0) {
      if (badge) { badge.remove(); button?.removeAttribute("aria-describedby"); }
      continue;
    }
    if (!badge) {
      badge = el("p", "alert-badge");
      badge.id = `alert-badge-${++badges}`;
      card.querySelector(".card-head").after(badge);
      button?.setAttribute("aria-describedby", badge.id);
    }
    const current = events.filter((e) => !isHeld(e));
    const held = events.length - current.length;
    const worst = severityText((current[0] ?? events[0]).severity);
    const count = current.length;
    const text = `${worst} · ${count} ${count === 1 ? "alert" : "alerts"}${held ? ` · ${held} held` : ""}`;
    if (badge.textContent !== text) badge.textContent = text;
    badge.className = `alert-badge sev sev-${worst}`;
    badge.title = events.map((e) => (e.item ? `${e.rule} ${e.item}` : e.rule)).join(", ");
  }
}

// ---------- the detail ----------
function renderDetailAlerts(host) {
  const events = byHost.get(host.latest?.host) || [];
  $("detail-alerts").hidden = events.length === 0;
  const list = $("detail-alerts-list");
  const signature = JSON.stringify(events.map((e) => [keyOf(e), e.severity, e.value, e.peak, e.started_at, isHeld(e)]));
  if (list.dataset.signature === signature) return;
  list.dataset.signature = signature;
  list.replaceChildren(...events.map((e) => {
    const item = el("li");
    if (isHeld(e)) item.className = "alert-held";
    item.append(
      isHeld(e) ? heldBadge(e.severity) : severityBadge(e.severity),
      ` ${e.item ? `${e.rule} ${e.item}` : e.rule}: ${formatValue(e.metric, e.value)} since `,
      timeElement(e.started_at),
      ` (peak ${formatValue(e.metric, e.peak)})`,
    );
    return item;
  }));
}

pageHooks.push(() => {
  // Host names matter too: a host's first reading turns its name into a button.
  const hosts = [...byHost.keys(), ...alerts.recent.slice(0, RECENT_SHOWN).map((e) => e.host)]
    .map((h) => (hasHost(h) ? "1" : "0")).join("");
  if (drawn.version !== alerts.version || drawn.hosts !== hosts) {
    drawn = { version: alerts.version, hosts };
    renderPanel();
  }
  renderBadges();
});
renderHooks.push(renderDetailAlerts);
