// A host's history over a range from `GET /api/hosts/{host}/history` (columnar: `times` and,
// per series, `avg` / `min` / `max`), and the columns each chart draws from it.

/// The API's address for `host` over [from, to] (unix seconds); `format` "csv" for a download.
/// Without from/to, the API answers the last hour.
export function historyUrl(host, view, format) {
  const params = new URLSearchParams();
  if (view && !view.live) { params.set("from", String(view.from)); params.set("to", String(view.to)); }
  if (format) params.set("format", format);
  const query = params.toString();
  return `/api/hosts/${encodeURIComponent(host)}/history${query ? `?${query}` : ""}`;
}

/// The answer for `host` over `view`; throws an Error whose message says why not (the API's
/// own words when it gave some).
export async function fetchHistory(host, view, signal) {
  const response = await fetch(historyUrl(host, view), { headers: { accept: "application/json" }, signal });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    throw new Error(typeof body?.error === "string" ? body.error : `the server answered ${response.status}`);
  }
  if (!body || !Array.isArray(body.times) || typeof body.series !== "object" || body.series === null) {
    throw new Error("the server's answer has no times and series");
  }
  return body;
}

const NONE = (n) => new Array(n).fill(null);

/// `name`'s avg, min and max columns, `null` where it has no value (or none at all).
export function band(body, name) {
  const n = body.times.length;
  const s = body.series[name];
  const column = (values) => (Array.isArray(values) && values.length === n ? values : NONE(n));
  return { avg: column(s?.avg), min: column(s?.min), max: column(s?.max) };
}

/// The sum over every series named `prefix:…` (one per interface): the avg is the sum of the
/// averages; min and max are the sums of each one's min and max, a band that holds the total.
/// `null` where no series has a value.
export function summed(body, prefix) {
  const n = body.times.length;
  const parts = Object.keys(body.series).filter((name) => name.startsWith(`${prefix}:`)).map((name) => band(body, name));
  const total = (field) => {
    const out = NONE(n);
    for (const part of parts) {
      part[field].forEach((v, i) => { if (Number.isFinite(v)) out[i] = (out[i] ?? 0) + v; });
    }
    return out;
  };
  return { avg: total("avg"), min: total("min"), max: total("max") };
}
