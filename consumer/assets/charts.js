// Live charts for the selected host: CPU %, memory %, network rx/tx, drawn with uPlot
// (vendored, see vendor/uplot). They are filled from the snapshot history as soon as the page
// opens, then move with every reading.

import { renderHooks, fmt } from "./app.js";

const charts = { host: null, list: [] };

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function makeChart(target, series, yRange, formatValue) {
  const width = Math.max(200, target.clientWidth || 300);
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  const opts = {
    width,
    height: 150,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: yRange ? { range: yRange } : { auto: true } },
    axes: [axis, { ...axis, size: 76, values: (u, vals) => vals.map(formatValue) }],
    series: [{}, ...series.map((s) => ({ ...s, width: 1.5, value: (u, v) => (v == null ? "–" : formatValue(v)) }))],
  };
  const plot = new window.uPlot(opts, [[], ...series.map(() => [])], target);
  return { plot, target };
}

function build(host) {
  for (const c of charts.list) c.plot.destroy();
  const percent = (v) => `${Number(v).toFixed(0)} %`;
  charts.list = [
    { ...makeChart(document.getElementById("chart-cpu"), [{ label: "CPU", stroke: css("--accent"), fill: "rgba(43,108,176,.12)" }], [0, 100], percent),
      pick: (r) => [r.cpu?.usage_percent] },
    { ...makeChart(document.getElementById("chart-mem"), [{ label: "Memory", stroke: css("--ok"), fill: "rgba(31,138,76,.12)" }], [0, 100], percent),
      pick: (r) => [r.memory?.usage_percent] },
    { ...makeChart(document.getElementById("chart-net"), [{ label: "rx", stroke: css("--accent") }, { label: "tx", stroke: css("--warn") }], null, fmt.rate),
      pick: (r) => {
        const t = (r.networks || []).reduce((a, n) => [a[0] + n.received_bytes_per_sec, a[1] + n.transmitted_bytes_per_sec], [0, 0]);
        return t;
      } },
  ];
  charts.host = host;
}

function update(host) {
  if (!window.uPlot) return; // the library failed to load: the rest of the page still works
  const name = host.latest.host;
  if (charts.host !== name) build(name);
  const times = host.history.map((r) => new Date(r.collected_at).getTime() / 1000);
  for (const chart of charts.list) {
    const columns = host.history.map(chart.pick);
    const data = [times];
    for (let i = 0; i < columns[0].length; i++) data.push(columns.map((c) => c[i] ?? null));
    chart.plot.setData(data);
    chart.target.dataset.points = String(times.length);
  }
}

new ResizeObserver(() => {
  for (const c of charts.list) c.plot.setSize({ width: Math.max(200, c.target.clientWidth), height: 150 });
}).observe(document.getElementById("charts"));

renderHooks.push(update);
