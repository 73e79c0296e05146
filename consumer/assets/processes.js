// The selected host's processes: total and running counts, and one table of the busiest by CPU
// and the largest by memory, sorted by the column whose header was clicked (a button, so the
// keyboard sorts too; the header says how in `aria-sort`).
//
// The process list comes only on the readings where the publisher refreshed it, so the table
// shows the newest reading that carries one. A process name may hold any character: it reaches
// the page through textContent, with control characters shown as their visible symbols.

import { renderHooks, fmt, fillTable, $ } from "./app.js";


// Numbers sort largest first on the first click, text from A.
const COLUMNS = {
  pid: { numeric: true },
  name: { numeric: false },
  user: { numeric: false },
  cpu_percent: { numeric: true },
  resident_bytes: { numeric: true },
};

const sort = { key: "cpu_percent", ascending: false };
let lastHost = null;

// C0 controls become U+2400's pictures (␀ … ␟), DEL ␡, C1 controls U+FFFD: a name that
// tries to move the cursor or ring a bell shows what it holds instead.
export function visibleName(name) {
  return String(name ?? "–").replace(/[\u0000-\u001f\u007f\u0080-\u009f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    return code === 0x7f ? "\u2421" : "\ufffd";
  });
}

function newestProcesses(host) {
  for (let i = host.history.length - 1; i >= 0; i--) {
    const p = host.history[i].processes;
    if (p && typeof p === "object") return { processes: p, at: host.history[i].collected_at };
  }
  return null;
}

// The top by CPU and the top by memory, each process once.
function listed(processes) {
  const byPid = new Map();
  for (const list of [processes.top_by_cpu, processes.top_by_memory]) {
    if (!Array.isArray(list)) continue;
    for (const p of list) if (p && typeof p === "object" && !byPid.has(p.pid)) byPid.set(p.pid, p);
  }
  return [...byPid.values()];
}

function compare(a, b) {
  const { numeric } = COLUMNS[sort.key];
  const x = a[sort.key], y = b[sort.key];
  let order;
  if (numeric) order = (Number.isFinite(x) ? x : -Infinity) - (Number.isFinite(y) ? y : -Infinity);
  else order = String(x ?? "").localeCompare(String(y ?? ""));
  if (!sort.ascending) order = -order;
  return order || (Number(a.pid) || 0) - (Number(b.pid) || 0);
}

function showSort() {
  for (const th of $("detail-procs").tHead.rows[0].cells) {
    if (th.dataset.key === sort.key) th.setAttribute("aria-sort", sort.ascending ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function count(n, one, many) {
  return Number.isFinite(n) ? `${n} ${n === 1 ? one : many}` : `– ${many}`;
}

function render(host) {
  lastHost = host;
  const found = newestProcesses(host);
  $("detail-procs").hidden = !found;
  $("procs-about").hidden = !found;
  $("procs-none").hidden = Boolean(found);
  if (!found) {
    $("procs-counts").textContent = "";
    fillTable("detail-procs", [], () => []);
    return;
  }
  const { processes, at } = found;
  const counts = `${count(processes.total_count, "process", "processes")} · ${count(processes.running_count, "running", "running")}`;
  if ($("procs-counts").textContent !== counts) $("procs-counts").textContent = counts;
  const rows = listed(processes).sort(compare);
  const about = `The busiest by CPU and the largest by memory, ${rows.length} listed, as of ${fmt.time(at)}.`;
  if ($("procs-about").textContent !== about) $("procs-about").textContent = about;
  fillTable("detail-procs", rows, (p) => [
    Number.isFinite(p.pid) ? String(p.pid) : "–",
    visibleName(p.name),
    String(p.user ?? "–"),
    fmt.percent(p.cpu_percent),
    fmt.bytes(p.resident_bytes),
  ]);
  const body = $("detail-procs").tBodies[0];
  rows.forEach((p, i) => { body.rows[i].dataset.pid = String(p.pid); });
}

for (const th of $("detail-procs").tHead.rows[0].cells) {
  const key = th.dataset.key;
  th.querySelector("button").addEventListener("click", () => {
    if (sort.key === key) sort.ascending = !sort.ascending;
    else { sort.key = key; sort.ascending = !COLUMNS[key].numeric; }
    showSort();
    if (lastHost) render(lastHost);
  });
}
showSort();

renderHooks.push(render);
