// The charts' time range: live, a span ending now (1 h … 1 y), or a zoom (a from/to a person
// dragged across a chart). It lives in the URL beside the host (`#host=web-1&range=7d`, and
// `&from=…&to=…` while zoomed), so a reload or a shared link shows the same view.

/// Seconds each range spans; `live` follows the readings as they arrive.
export const RANGES = {
  live: null, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400,
};
const LABELS = { live: "live", "1h": "1 h", "6h": "6 h", "24h": "24 h", "7d": "7 d", "30d": "30 d", "1y": "1 y" };
// A drag narrower than this is a click, not a zoom.
const MIN_ZOOM_SECS = 2;

// `window`: the [from, to] a span range was fixed at when chosen, so the chart does not move
// while it is shown; choosing the range again moves it to now.
const state = { range: "live", zoom: null, window: null, chosenAt: null };
const listeners = [];

/// Calls `listener(view)` whenever the view changes.
export function onViewChange(listener) { listeners.push(listener); }

/// What the charts show now: `{ live: true }`, or `{ live: false, from, to, zoomed }` (unix
/// seconds), with `key` naming it and `label` for people. `chosenAt` is when a person asked
/// for it (performance.now()), for the time-to-drawn figure.
export function currentView() {
  const base = { range: state.range, chosenAt: state.chosenAt };
  if (state.zoom) {
    return { ...base, live: false, zoomed: true, ...state.zoom, key: `zoom:${state.zoom.from}-${state.zoom.to}`,
      label: `zoomed in from ${LABELS[state.range]}` };
  }
  if (RANGES[state.range] == null) return { ...base, live: true, zoomed: false, key: "live", label: LABELS.live };
  if (!state.window) {
    const to = Math.ceil(Date.now() / 1000);
    state.window = { from: to - RANGES[state.range], to };
  }
  return { ...base, live: false, zoomed: false, ...state.window, key: `${state.range}:${state.window.from}-${state.window.to}`,
    label: LABELS[state.range] };
}

/// Zooms every chart into [from, to] (unix seconds).
export function zoomTo(from, to) {
  const [lo, hi] = [Math.floor(Math.min(from, to)), Math.ceil(Math.max(from, to))];
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi - lo < MIN_ZOOM_SECS) return;
  state.zoom = { from: lo, to: hi };
  changed(true);
}

function choose(range) {
  state.range = range;
  state.zoom = null;
  state.window = null;
  changed(true);
}

function changed(remember) {
  state.chosenAt = performance.now();
  if (remember) writeUrl();
  showPicker();
  for (const listener of listeners) listener(currentView());
}

// ---------- URL ----------
function writeUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (state.range === "live") params.delete("range"); else params.set("range", state.range);
  if (state.zoom) { params.set("from", String(state.zoom.from)); params.set("to", String(state.zoom.to)); }
  else { params.delete("from"); params.delete("to"); }
  history.replaceState(null, "", `#${params}`);
}

function readUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const asked = params.get("range");
  const range = asked !== null && Object.hasOwn(RANGES, asked) ? asked : "live";
  if (range !== state.range) state.window = null;
  state.range = range;
  const from = Number(params.get("from")), to = Number(params.get("to"));
  state.zoom = params.has("from") && params.has("to") && Number.isFinite(from) && Number.isFinite(to)
    && to - from >= MIN_ZOOM_SECS ? { from: Math.floor(from), to: Math.ceil(to) } : null;
}

// ---------- picker ----------
const buttons = [...document.querySelectorAll("#range-picker [data-range]")];
const reset = document.getElementById("range-reset");

function showPicker() {
  for (const button of buttons) {
    button.setAttribute("aria-pressed", String(!state.zoom && button.dataset.range === state.range));
  }
  reset.hidden = !state.zoom;
}

for (const button of buttons) button.addEventListener("click", () => choose(button.dataset.range));
reset.addEventListener("click", () => choose(state.range));
window.addEventListener("hashchange", () => {
  const before = JSON.stringify([state.range, state.zoom]);
  readUrl();
  if (JSON.stringify([state.range, state.zoom]) !== before) changed(false);
});

readUrl();
showPicker();
