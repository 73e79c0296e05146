// The selected host's charts: CPU %, memory %, network rx/tx. Live, they are filled from the
// snapshot as soon as the page opens, then move with every reading; at a range (1 h … 1 y, or
// a zoom) they are drawn once from the history API, each line with its min–max band, and
// stay put while readings arrive.

import { renderHooks, fmt, networkTotals, $ } from "./app.js";
import { currentView, onViewChange, zoomTo } from "./range.js";
import { fetchHistory, historyUrl, band, summed } from "./history_fetch.js";
import { makeChart, fit, css, fullTime } from "./chart_plot.js";

const charts = {
  host: null, viewKey: null, list: [], lastHost: null,
  loading: null, // the AbortController of the history request under way
};

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

// What each chart shows: its lines, and where their values come from in a live reading
// (`live`) and in a history answer (`history`: one { avg, min, max } per line).
function specs() {
  const percent = (v) => `${Number(v).toFixed(0)} %`;
  return [
    { id: "chart-cpu", title: "CPU", yRange: [0, 100], formatAxis: percent, formatValue: fmt.percent,
      lines: [{ label: "CPU", stroke: css("--accent"), fill: "rgba(43,108,176,.12)", bandFill: "rgba(43,108,176,.3)" }],
      live: (r) => [r.cpu?.usage_percent],
      history: (body) => [band(body, "cpu_usage_percent")] },
    { id: "chart-mem", title: "Memory", yRange: [0, 100], formatAxis: percent, formatValue: fmt.percent,
      lines: [{ label: "Memory", stroke: css("--ok"), fill: "rgba(31,138,76,.12)", bandFill: "rgba(31,138,76,.3)" }],
      live: (r) => [r.memory?.usage_percent],
      history: (body) => [band(body, "memory_usage_percent")] },
    { id: "chart-net", title: "Network", yRange: rateRange, ySplits: rateSplits, formatAxis: fmt.rate, formatValue: fmt.rate,
      lines: [
        { label: "rx", stroke: css("--accent"), bandFill: "rgba(43,108,176,.25)" },
        { label: "tx", stroke: css("--warn"), bandFill: "rgba(138,90,11,.25)" },
      ],
      live: (r) => { const t = networkTotals(r); return t ? [t.rx, t.tx] : [null, null]; },
      history: (body) => [summed(body, "network_received_bytes_per_second"), summed(body, "network_transmitted_bytes_per_second")] },
  ];
}

function build(name, view) {
  for (const c of charts.list) c.plot.destroy();
  charts.list = specs().map((spec) => {
    const target = $(spec.id);
    return { ...spec, target, plot: makeChart(target, spec, view, zoomTo) };
  });
  charts.host = name;
  charts.viewKey = view.key;
  showDownloads(name, view);
}

// ---------- live ----------
function describeLive(chart, host, times) {
  if (times.length === 0) return `${chart.title} chart of ${host}: no readings yet`;
  const values = chart.lines.map((line, i) => `${line.label} ${chart.plot.series[i + 1].value(chart.plot, null, i + 1, null)}`);
  return `${chart.title} chart of ${host}, ${times.length} readings since ${fullTime(times[0], false)}; latest at ${fullTime(times[times.length - 1], false)}: ${values.join(", ")}`;
}

function drawLive(host) {
  const name = host.latest.host;
  const times = host.history.map((r) => new Date(r.collected_at).getTime() / 1000);
  for (const chart of charts.list) {
    const columns = host.history.map(chart.live);
    const data = [times];
    for (let i = 0; i < chart.lines.length; i++) data.push(columns.map((c) => c[i] ?? null));
    chart.plot.setData(data);
    chart.target.dataset.points = String(times.length);
    chart.target.setAttribute("aria-label", describeLive(chart, name, times));
  }
  $("charts").dataset.drawn = "live";
}

// ---------- a range ----------
function stepText(secs) {
  if (!Number.isFinite(secs)) return "";
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.round(secs / 60)} min`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h`;
  return `${Math.round(secs / 86400)} d`;
}

function finite(values) { return values.filter(Number.isFinite); }

// What the chart shows in words: the range and, per line, its average, lowest and highest.
function describeRange(chart, host, view, times, bands) {
  const span = `${fullTime(view.from, true)} to ${fullTime(view.to, true)}`;
  if (times.length === 0) return `${chart.title} chart of ${host}, ${view.label}: no readings from ${span}`;
  const lines = chart.lines.map((line, i) => {
    const avg = finite(bands[i].avg), min = finite(bands[i].min), max = finite(bands[i].max);
    if (avg.length === 0) return `${line.label} –`;
    const mean = avg.reduce((a, b) => a + b, 0) / avg.length;
    return `${line.label} average ${chart.formatValue(mean)}, lowest ${chart.formatValue(Math.min(...min))}, highest ${chart.formatValue(Math.max(...max))}`;
  });
  return `${chart.title} chart of ${host}, ${view.label}: ${times.length} points from ${span}; ${lines.join("; ")}`;
}

async function drawRange(name, view) {
  charts.loading?.abort();
  const controller = new AbortController();
  charts.loading = controller;
  setStatus(`${view.label}: loading…`);
  let body = null, problem = null;
  try {
    body = await fetchHistory(name, view, controller.signal);
  } catch (e) {
    if (controller.signal.aborted) return;
    problem = e instanceof Error ? e.message : String(e);
  }
  if (charts.loading !== controller) return; // a newer range or host was asked for meanwhile
  charts.loading = null;
  const fetched = performance.now();
  const times = body ? body.times : [];
  for (const chart of charts.list) {
    const bands = body ? chart.history(body) : chart.lines.map(() => ({ avg: [], min: [], max: [] }));
    chart.plot.setData([times, ...bands.flatMap((b) => [b.avg, b.min, b.max])]);
    chart.target.dataset.points = String(times.length);
    chart.target.setAttribute("aria-label", describeRange(chart, name, view, times, bands));
  }
  setStatus(problem
    ? `${view.label}: history not available (${problem})`
    : `${view.label}: ${times.length} points${times.length ? `, ${stepText(body.step_secs)} each` : ""}`);
  // Drawn (uPlot paints in a microtask after setData): say so, and how long since the choice
  // (answer received, and drawn), for the range_draw benchmark.
  requestAnimationFrame(() => {
    const panel = $("charts");
    panel.dataset.from = String(view.from);
    panel.dataset.to = String(view.to);
    if (view.chosenAt != null) {
      panel.dataset.fetchMs = (fetched - view.chosenAt).toFixed(1);
      panel.dataset.drawMs = (performance.now() - view.chosenAt).toFixed(1);
    }
    panel.dataset.drawn = view.key;
  });
}

function setStatus(text) {
  const status = $("range-status");
  if (status.textContent !== text) status.textContent = text;
}

// The shown host and range as a download; live: the API's default, the last hour.
function showDownloads(name, view) {
  $("download-csv").href = historyUrl(name, view, "csv");
  $("download-json").href = historyUrl(name, view, "json");
}

// ---------- wiring ----------
function update(host) {
  if (!window.uPlot) return; // the library failed to load: the rest of the page still works
  charts.lastHost = host;
  const name = host.latest.host;
  const view = currentView();
  const fresh = charts.host !== name || charts.viewKey !== view.key;
  if (view.live) {
    if (fresh) { charts.loading?.abort(); charts.loading = null; build(name, view); }
    drawLive(host);
    setStatus(host.offline ? "offline: no live readings; pick a range to see its history" : "");
  } else if (fresh) {
    build(name, view);
    drawRange(name, view);
  }
}

onViewChange(() => { if (charts.lastHost) update(charts.lastHost); });

new ResizeObserver(() => {
  for (const c of charts.list) fit(c.plot, c.target);
}).observe($("charts"));

renderHooks.push(update);
