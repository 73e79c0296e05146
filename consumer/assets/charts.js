// Live charts for the selected host: CPU %, memory %, network rx/tx, drawn with uPlot
// (vendored, see vendor/uplot). They are filled from the snapshot history as soon as the page
// opens, then move with every reading.

import { renderHooks, fmt, networkTotals } from "./app.js";

const charts = { host: null, list: [] };
// Charts always show at least this much time, ending now: one reading is a point in the last
// minute, not a lone x value that uPlot would spread over years.
const MIN_WINDOW_SECS = 60;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// The x range: at least the last MIN_WINDOW_SECS, ending now (or at the newest reading, if a
// host's clock runs ahead). Taken from the data, not from uPlot's proposal, which for a single
// point is years wide.
function timeRange(u) {
  const now = Date.now() / 1000;
  const times = (u.data?.[0] || []).filter(Number.isFinite);
  const hi = Math.max(now, times.length ? times[times.length - 1] : now);
  const lo = Math.min(hi - MIN_WINDOW_SECS, times.length ? times[0] : hi);
  return [lo, hi];
}

// A step of 1, 2, 2.5 or 5 times a power of ten, so that four steps cover `max`.
function niceStep(max) {
  const raw = Math.max(max, 4) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  return power * ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10);
}
// The network chart's y range ends on a tick at or above the highest value: a spike is never
// drawn above the top label.
function rateRange(u, min, max) {
  const top = Number.isFinite(max) && max > 0 ? max : 0;
  if (top === 0) return [0, 4]; // all idle: a readable 0–4 B/s axis
  const step = niceStep(top);
  return [0, step * Math.max(1, Math.ceil(top / step))];
}
function rateSplits(u, axisIdx, min, max) {
  const step = niceStep(max);
  const splits = [];
  for (let v = 0; v <= max + step / 1e6 && splits.length < 12; v += step) splits.push(v);
  return splits;
}

function clock(secs, withSeconds) {
  return new Date(secs * 1000).toLocaleTimeString([], withSeconds
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" });
}

// The latest non-empty value of series `si`, for the legend while nothing is hovered.
function latest(u, si) {
  const column = u.data[si] || [];
  for (let i = column.length - 1; i >= 0; i--) if (column[i] != null) return column[i];
  return null;
}

function makeChart(target, title, series, yRange, ySplits, formatAxis, formatValue) {
  const width = Math.max(200, target.clientWidth || 300);
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  const xAxis = {
    ...axis,
    space: 90, // room for a whole clock time between ticks
    // The drawn labels are kept on the element, so what a person sees can be checked.
    values: (u, splits) => {
      const span = u.scales.x.max - u.scales.x.min;
      target.dataset.xTicks = splits.join(" ");
      return splits.map((s) => clock(s, span < 600));
    },
  };
  const opts = {
    width,
    height: 150,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: timeRange }, y: { range: yRange } },
    axes: [xAxis, { ...axis, size: 76, ...(ySplits ? { splits: ySplits } : {}), values: (u, vals) => { target.dataset.yTicks = vals.join(" "); return vals.map(formatAxis); } }],
    series: [
      { label: "Time", value: (u, v, si, idx) => { const t = idx == null ? latest(u, 0) : v; return t == null ? "–" : clock(t, true); } },
      ...series.map((s) => ({
        ...s,
        width: 1.5,
        value: (u, v, si, idx) => { const x = idx == null ? latest(u, si) : v; return x == null ? "–" : formatValue(x); },
      })),
    ],
  };
  const plot = new window.uPlot(opts, [[], ...series.map(() => [])], target);
  return { plot, target, title, labels: series.map((s) => s.label) };
}

function build(host) {
  for (const c of charts.list) c.plot.destroy();
  const percent = (v) => `${Number(v).toFixed(0)} %`;
  charts.list = [
    { ...makeChart(document.getElementById("chart-cpu"), "CPU", [{ label: "CPU", stroke: css("--accent"), fill: "rgba(43,108,176,.12)" }], [0, 100], null, percent, fmt.percent),
      pick: (r) => [r.cpu?.usage_percent] },
    { ...makeChart(document.getElementById("chart-mem"), "Memory", [{ label: "Memory", stroke: css("--ok"), fill: "rgba(31,138,76,.12)" }], [0, 100], null, percent, fmt.percent),
      pick: (r) => [r.memory?.usage_percent] },
    { ...makeChart(document.getElementById("chart-net"), "Network", [{ label: "rx", stroke: css("--accent") }, { label: "tx", stroke: css("--warn") }], rateRange, rateSplits, fmt.rate, fmt.rate),
      pick: (r) => { const t = networkTotals(r); return t ? [t.rx, t.tx] : [null, null]; } },
  ];
  charts.host = host;
}

// The chart's text alternative: what it shows and its latest values.
function describe(chart, host, times) {
  if (times.length === 0) return `${chart.title} chart of ${host}: no readings yet`;
  const values = chart.labels.map((label, i) => `${label} ${chart.plot.series[i + 1].value(chart.plot, null, i + 1, null)}`);
  return `${chart.title} chart of ${host}, ${times.length} readings since ${clock(times[0], true)}; latest at ${clock(times[times.length - 1], true)}: ${values.join(", ")}`;
}

function update(host) {
  if (!window.uPlot) return; // the library failed to load: the rest of the page still works
  const name = host.latest.host;
  if (charts.host !== name) build(name);
  const times = host.history.map((r) => new Date(r.collected_at).getTime() / 1000);
  for (const chart of charts.list) {
    const columns = host.history.map(chart.pick);
    const data = [times];
    for (let i = 0; i < chart.labels.length; i++) data.push(columns.map((c) => c[i] ?? null));
    chart.plot.setData(data);
    chart.target.dataset.points = String(times.length);
    chart.target.setAttribute("aria-label", describe(chart, name, times));
  }
}

new ResizeObserver(() => {
  for (const c of charts.list) c.plot.setSize({ width: Math.max(200, c.target.clientWidth), height: 150 });
}).observe(document.getElementById("charts"));

renderHooks.push(update);
