// Charts of the whole host for the selected host: where CPU time goes, disk I/O (all block
// devices together) and network errors and drops (all interfaces together), drawn with uPlot
// from the readings the page keeps for the host. A chart is hidden while none of those
// readings carries its figures (today's publisher without them, the original publisher).

import { renderHooks, fmt } from "./app.js";
import { currentView, onViewChange } from "./range.js";

// At a range, these charts still show what the page received live: the history store does not
// keep their figures, and the page says so instead of passing them off as the range.
function showNote() {
  document.getElementById("host-charts-note").hidden = currentView().live;
}
onViewChange(showNote);
showNote();

const HEIGHT = 150;
// At least this much time, ending now: one reading is a point in the last minute.
const MIN_WINDOW_SECS = 60;

const state = { host: null, charts: [] };

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function sum(items, field) {
  let total = null;
  for (const item of items) {
    const v = item?.[field];
    if (Number.isFinite(v)) total = (total ?? 0) + v;
  }
  return total;
}

const percentAxis = (v) => `${Number(v).toFixed(0)} %`;

// What each chart draws: its series (label, colour variable) and a reading's values for them,
// or null when the reading does not carry the chart's figures.
const DEFINITIONS = [
  {
    id: "cpu-split",
    title: "CPU time",
    series: [["user", "--accent"], ["system", "--ok"], ["iowait", "--warn"], ["steal", "--bad"], ["irq", "--muted"], ["softirq", "--fg"]],
    percent: true,
    pick(r) {
      const s = r.cpu?.time_split;
      if (!s || typeof s !== "object") return null;
      return ["user", "system", "iowait", "steal", "irq", "softirq"].map((p) => s[`${p}_percent`]);
    },
    axis: percentAxis,
    value: fmt.percent,
  },
  {
    id: "disk-io",
    title: "Disk I/O",
    series: [["read", "--accent"], ["write", "--warn"]],
    pick(r) {
      // No devices is not "no I/O": such a reading draws nothing.
      if (!Array.isArray(r.block_devices) || r.block_devices.length === 0) return null;
      return [sum(r.block_devices, "read_bytes_per_sec"), sum(r.block_devices, "write_bytes_per_sec")];
    },
    axis: fmt.rate,
    value: fmt.rate,
  },
  {
    id: "net-errors",
    title: "Network errors",
    series: [["errors", "--bad"], ["drops", "--warn"]],
    pick(r) {
      if (!Array.isArray(r.networks)) return null;
      const errors = [sum(r.networks, "receive_errors_per_sec"), sum(r.networks, "transmit_errors_per_sec")];
      const drops = [sum(r.networks, "receive_drops_per_sec"), sum(r.networks, "transmit_drops_per_sec")];
      const total = (pair) => (pair.every((v) => v === null) ? null : (pair[0] ?? 0) + (pair[1] ?? 0));
      const values = [total(errors), total(drops)];
      return values.every((v) => v === null) ? null : values;
    },
    axis: (v) => `${fmt.perSec(v)}/s`,
    value: (v) => `${fmt.perSec(v)}/s`,
  },
];

function timeRange(u) {
  const times = (u.data?.[0] || []).filter(Number.isFinite);
  const hi = Math.max(Date.now() / 1000, times.length ? times[times.length - 1] : 0);
  const lo = Math.min(hi - MIN_WINDOW_SECS, times.length ? times[0] : hi);
  return [lo, hi];
}

// From 0 to a round number at or above the highest value; a flat 0 gets a readable 0–4.
function countRange(u, min, max) {
  if (!Number.isFinite(max) || max <= 0) return [0, 4];
  const power = 10 ** Math.floor(Math.log10(max));
  const top = [1, 2, 5, 10].map((m) => m * power).find((t) => t >= max) ?? 10 * power;
  return [0, top];
}

function clock(secs) {
  return new Date(secs * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function lastValue(u, si) {
  const column = u.data[si] || [];
  for (let i = column.length - 1; i >= 0; i--) if (column[i] != null) return column[i];
  return null;
}

function makeChart(def) {
  const target = document.getElementById(`chart-${def.id}`);
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  const opts = {
    width: Math.max(200, target.clientWidth || 300),
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: timeRange }, y: { range: def.percent ? [0, 100] : countRange } },
    axes: [{ ...axis, space: 90, values: (u, splits) => splits.map(clock) }, { ...axis, size: 76, values: (u, vals) => vals.map(def.axis) }],
    series: [
      { label: "Time", value: (u, v, si, idx) => { const t = idx == null ? lastValue(u, 0) : v; return t == null ? "–" : clock(t); } },
      ...def.series.map(([label, colour]) => ({
        label,
        stroke: css(colour),
        width: 1.5,
        value: (u, v, si, idx) => { const x = idx == null ? lastValue(u, si) : v; return x == null ? "–" : def.value(x); },
      })),
    ],
  };
  const plot = new window.uPlot(opts, [[], ...def.series.map(() => [])], target);
  return { def, plot, target };
}

// The chart's text alternative: what it shows and its latest values.
function describe(chart, name, times) {
  const { def, plot } = chart;
  const values = def.series.map(([label], i) => `${label} ${plot.series[i + 1].value(plot, null, i + 1, null)}`);
  return `${def.title} chart of ${name}, ${times.length} readings since ${clock(times[0])}; latest at ${clock(times[times.length - 1])}: ${values.join(", ")}`;
}

function update(host) {
  if (!window.uPlot) return; // the library failed to load: the figures beside still show
  const name = host.latest.host;
  if (state.host !== name) {
    for (const c of state.charts) c.plot.destroy();
    state.charts = [];
    state.host = name;
  }
  // Every panel shown or hidden first, so that each chart is made at its panel's final width.
  const drawn = DEFINITIONS.map((def) => {
    const times = [];
    const columns = def.series.map(() => []);
    for (const r of host.history) {
      const values = def.pick(r);
      if (!values) continue;
      times.push(new Date(r.collected_at).getTime() / 1000);
      values.forEach((v, i) => columns[i].push(Number.isFinite(v) ? v : null));
    }
    document.getElementById(`panel-${def.id}`).hidden = times.length === 0;
    return { def, times, columns };
  });
  for (const { def, times, columns } of drawn) {
    if (times.length === 0) {
      const target = document.getElementById(`chart-${def.id}`);
      target.dataset.points = "0";
      target.setAttribute("aria-label", `${def.title} chart of ${name}: not reported`);
      continue;
    }
    let chart = state.charts.find((c) => c.def === def);
    if (!chart) { chart = makeChart(def); state.charts.push(chart); }
    const fit = Math.max(200, chart.target.clientWidth);
    if (fit !== chart.plot.width) chart.plot.setSize({ width: fit, height: HEIGHT });
    chart.plot.setData([times, ...columns]);
    chart.target.dataset.points = String(times.length);
    chart.target.setAttribute("aria-label", describe(chart, name, times));
  }
}

// A window resized, or a panel shown beside the others: fit each chart to its panel. Only a new
// width counts, and the charts are resized in the next frame: resizing them changes the
// container's height, which would otherwise call this again in the same frame.
let lastWidth = 0;
new ResizeObserver(([entry]) => {
  const width = Math.round(entry.contentRect.width);
  if (width === lastWidth) return;
  lastWidth = width;
  requestAnimationFrame(() => {
    for (const c of state.charts) {
      const fit = Math.max(200, c.target.clientWidth);
      if (fit !== c.plot.width) c.plot.setSize({ width: fit, height: HEIGHT });
    }
  });
}).observe(document.getElementById("host-charts"));

renderHooks.push(update);
