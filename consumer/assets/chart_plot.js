// One uPlot chart (vendored, see vendor/uplot): axes in the page's colours, a legend showing
// the latest values, optionally a min–max band around each line, and drag-to-zoom.

// Charts always show at least this much time, ending now: one reading is a point in the last
// minute, not a lone x value that uPlot would spread over years.
const MIN_WINDOW_SECS = 60;
// A drag narrower than this many pixels is a click.
const MIN_DRAG_PX = 4;
const HEIGHT = 150;

export function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// The live x range: at least the last MIN_WINDOW_SECS, ending now (or at the newest reading,
// if a host's clock runs ahead). Taken from the data, not from uPlot's proposal, which for a
// single point is years wide.
function liveRange(u) {
  const now = Date.now() / 1000;
  const times = (u.data?.[0] || []).filter(Number.isFinite);
  const hi = Math.max(now, times.length ? times[times.length - 1] : now);
  const lo = Math.min(hi - MIN_WINDOW_SECS, times.length ? times[0] : hi);
  return [lo, hi];
}

/// A time of day, or a date when the axis spans days.
export function timeLabel(secs, span) {
  const at = new Date(secs * 1000);
  if (span > 2 * 86400) return at.toLocaleDateString([], { month: "short", day: "numeric" });
  return at.toLocaleTimeString([], span < 600
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" });
}

/// A whole time, for legends and text alternatives.
export function fullTime(secs, withDate) {
  const at = new Date(secs * 1000);
  return withDate
    ? at.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
    : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// The latest non-empty value of series `si`, for the legend while nothing is hovered.
function latest(u, si) {
  const column = u.data[si] || [];
  for (let i = column.length - 1; i >= 0; i--) if (column[i] != null) return column[i];
  return null;
}

/// Draws `lines` ({ label, stroke, fill, bandFill }) in `target`. With `view` historical
/// ({ from, to }), the x axis is that range and each line has a min and a max series (data:
/// times, then avg, min, max per line) filled between; live, one series per line.
/// `onZoom(from, to)` gets the time range a person drags across.
export function makeChart(target, spec, view, onZoom) {
  const { lines, yRange, ySplits, formatAxis, formatValue } = spec;
  const banded = !view.live;
  const width = Math.max(200, target.clientWidth || 300);
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  const xAxis = {
    ...axis,
    space: 90, // room for a whole clock time between ticks
    // The drawn labels are kept on the element, so what a person sees can be checked.
    values: (u, splits) => {
      const span = u.scales.x.max - u.scales.x.min;
      target.dataset.xTicks = splits.join(" ");
      return splits.map((s) => timeLabel(s, span));
    },
  };
  const value = (u, v, si, idx) => { const x = idx == null ? latest(u, si) : v; return x == null ? "–" : formatValue(x); };
  const series = [{
    label: "Time",
    value: (u, v, si, idx) => {
      const t = idx == null ? latest(u, 0) : v;
      return t == null ? "–" : fullTime(t, banded && view.to - view.from > 86400);
    },
  }];
  const bands = [];
  for (const line of lines) {
    series.push({ label: line.label, stroke: line.stroke, fill: line.fill, width: 1.5, value });
    if (!banded) continue;
    const edge = { stroke: line.stroke, width: 0.5, points: { show: false }, value };
    series.push({ ...edge, label: `${line.label} min` }, { ...edge, label: `${line.label} max` });
    bands.push({ series: [series.length - 1, series.length - 2], fill: line.bandFill });
  }
  const opts = {
    width,
    height: HEIGHT,
    cursor: { drag: { x: true, y: false, setScale: false } },
    scales: { x: { time: true, range: banded ? () => [view.from, view.to] : liveRange }, y: { range: yRange } },
    axes: [xAxis, { ...axis, size: 76, ...(ySplits ? { splits: ySplits } : {}), values: (u, vals) => { target.dataset.yTicks = vals.join(" "); return vals.map(formatAxis); } }],
    series,
    bands,
    hooks: {
      setSelect: [(u) => {
        const { left, width: dragged } = u.select;
        if (dragged < MIN_DRAG_PX) return;
        const from = u.posToVal(left, "x"), to = u.posToVal(left + dragged, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        onZoom(from, to);
      }],
    },
  };
  const empty = [[], ...series.slice(1).map(() => [])];
  return new window.uPlot(opts, empty, target);
}

/// Fits `plot` to its element's width.
export function fit(plot, target) {
  plot.setSize({ width: Math.max(200, target.clientWidth), height: HEIGHT });
}
