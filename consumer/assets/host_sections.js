// The whole host in the detail view, as figures: where CPU time goes, the memory split and swap
// activity, temperatures and block devices. Each figure a reading does not carry shows "–", and
// a section with nothing to show is hidden behind a short note, never shown as 0.
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

function render(host) {
  const r = host.latest;
  renderCpuSplit(r);
  renderMemory(r);
  renderTemperatures(r);
  renderBlockDevices(r);
}

renderHooks.push(render);
