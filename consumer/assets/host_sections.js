// The whole host in the detail view, as figures: where CPU time goes, the memory split and swap
// activity, temperatures, block devices, pressure stalls and containers. Each figure a reading
// does not carry shows "–", and a section with nothing to show is hidden behind a short note,
// never shown as 0.
// Values reach the page as text only (textContent, through app.js's fillTable).

import { renderHooks, fmt, fillTable, $ } from "./app.js";

function setText(id, text) { const n = $(id); if (n.textContent !== text) n.textContent = text; }

const SPLIT = ["user", "system", "iowait", "steal", "irq", "softirq", "idle"];

function renderCpuSplit(r) {
  const split = r.cpu?.time_split;
  const known = split !== null && typeof split === "object";
  $("cpu-split").hidden = !known;
  $("cpu-split-none").hidden = known;
  for (const part of SPLIT) setText(`split-${part}`, known ? fmt.percent(split[`${part}_percent`]) : "–");
}

function renderMemory(r) {
  const m = r.memory || {};
  setText("mem-used", fmt.bytes(m.used_bytes));
  setText("mem-cached", fmt.bytes(m.cached_buffers_bytes));
  setText("mem-available", fmt.bytes(m.available_bytes));
  setText("swap-in", fmt.rate(m.swap_in_bytes_per_sec));
  setText("swap-out", fmt.rate(m.swap_out_bytes_per_sec));
}

function celsius(n) { return Number.isFinite(n) ? `${n.toFixed(1)} °C` : "–"; }

function renderTemperatures(r) {
  const sensors = Array.isArray(r.temperatures) ? r.temperatures.filter((t) => t && typeof t === "object") : [];
  $("detail-temps").hidden = sensors.length === 0;
  $("detail-temps-none").hidden = sensors.length > 0;
  fillTable("detail-temps", sensors, (t) => [String(t.label ?? "–"), celsius(t.celsius)]);
}

function renderBlockDevices(r) {
  const devices = Array.isArray(r.block_devices) ? r.block_devices.filter((d) => d && typeof d === "object") : null;
  $("detail-block").hidden = !devices || devices.length === 0;
  const none = $("detail-block-none");
  none.hidden = devices !== null && devices.length > 0;
  const note = devices ? "This host reports no whole block devices." : "This host does not report its block devices.";
  if (none.textContent !== note) none.textContent = note;
  fillTable("detail-block", devices || [], (d) => [
    String(d.name ?? "–"),
    fmt.rate(d.read_bytes_per_sec),
    fmt.rate(d.write_bytes_per_sec),
    fmt.perSec(d.reads_per_sec),
    fmt.perSec(d.writes_per_sec),
    fmt.percent(d.busy_percent),
  ]);
}

// Pressure stall information: the share of the last 10 s in which some task (or every task at
// once, "full") waited for a CPU, memory or I/O. The CPU has no host-wide "full".
function renderPressure(r) {
  const p = r.pressure;
  const known = p !== null && typeof p === "object";
  $("pressure").hidden = !known;
  $("pressure-none").hidden = known;
  for (const [resource, line] of [["cpu", "some"], ["memory", "some"], ["memory", "full"], ["io", "some"], ["io", "full"]]) {
    const stall = known ? p[resource] : null;
    setText(`psi-${resource}-${line}`, stall ? fmt.percent(stall[`${line}_avg10_percent`]) : "–");
  }
}

// The host's containers by name, as its engine lists them (stopped ones too).
function renderContainers(r) {
  const list = Array.isArray(r.containers) ? r.containers.filter((c) => c && typeof c === "object") : null;
  $("detail-containers").hidden = !list || list.length === 0;
  const none = $("detail-containers-none");
  none.hidden = list !== null && list.length > 0;
  const note = list ? "No containers on this host." : "This host reports no container engine.";
  if (none.textContent !== note) none.textContent = note;
  const running = (list || []).filter((c) => c.state === "running").length;
  setText("containers-counts", list && list.length ? `${running} running / ${list.length}` : "");
  fillTable("detail-containers", list || [], (c) => [
    String(c.name ?? "–"),
    String(c.image ?? "–"),
    c.health ? `${c.state ?? "–"} (${c.health})` : String(c.state ?? "–"),
    Number.isFinite(c.restart_count) ? String(c.restart_count) : "–",
    fmt.percent(c.cpu_percent),
    fmt.bytes(c.memory_used_bytes),
    fmt.bytes(c.memory_limit_bytes),
  ]);
}

function render(host) {
  const r = host.latest;
  renderCpuSplit(r);
  renderMemory(r);
  renderTemperatures(r);
  renderBlockDevices(r);
  renderPressure(r);
  renderContainers(r);
}

renderHooks.push(render);
