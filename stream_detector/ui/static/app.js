// stream-detector explorer: talks only to the server it came from (/api/*), draws with the
// locally served plotly.min.js, and follows new anomalies over server-sent events.
"use strict";

const SEVERITY = [[0, "#8bc8fb"], [25, "#fdec25"], [50, "#fba740"], [75, "#fe5050"]];
const COLORSCALE = [[0, "#8bc8fb"], [0.25, "#8bc8fb"], [0.25, "#fdec25"], [0.5, "#fdec25"],
  [0.5, "#fba740"], [0.75, "#fba740"], [0.75, "#fe5050"], [1, "#fe5050"]];
const $ = (id) => document.getElementById(id);
const ui = { tab: "overview", page: 0, key: "", writes: false, models: [], pending: {} };

function sevColor(s) {
  let c = SEVERITY[0][1];
  for (const [lo, color] of SEVERITY) if (s >= lo) c = color;
  return c;
}
const toDate = (ns) => new Date(ns / 1e6);
const fmt = (v) => (v === null || v === undefined) ? "" :
  (Math.abs(v) >= 1000 || Math.abs(v) < 0.01) && v !== 0 ? v.toExponential(3) : v.toFixed(3);
const fmtList = (xs) => xs === null ? "—" : xs.slice(0, 3).map(fmt).join(", ") +
  (xs.length > 3 ? ` … (${xs.length})` : "");

async function getJSON(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
const common = () => ({ range: $("range").value, q: $("search").value });

// --- refreshing, throttled: live events can arrive hundreds a second ----------------------
function schedule(name, fn, wait) {
  if (ui.pending[name]) return;
  ui.pending[name] = setTimeout(async () => {
    try { await fn(); } catch (e) { console.error(e); }
    ui.pending[name] = null;
  }, wait);
}
function refresh() {
  if (ui.tab === "overview") schedule("overview", drawOverview, 150);
  if (ui.tab === "anomalies") schedule("table", drawTable, 150);
  if (ui.tab === "key" && ui.key) schedule("key", drawKey, 300);
}

async function drawSummary() {
  const s = await getJSON("/api/summary");
  ui.writes = s.writes;
  ui.models = s.models;
  const latest = s.latest_ns ? toDate(s.latest_ns).toISOString().slice(0, 19) : "—";
  $("counts").textContent = `${s.records.toLocaleString()} records · ` +
    `${s.anomalies.toLocaleString()} anomalies · ${s.keys.toLocaleString()} key${s.keys === 1 ? "" : "s"} · ` +
    `data up to ${latest}`;
  if ($("range").options.length === 0) {
    for (const r of s.ranges) $("range").add(new Option(r, r, r === "all", r === "all"));
  }
}

// --- overview: the swim lane --------------------------------------------------------------
async function drawOverview() {
  const o = await getJSON("/api/overview", { ...common(), sort: $("sort").value,
    page: ui.page, size: 40, buckets: 80 });
  ui.page = o.page;
  $("pageinfo").textContent = `keys ${o.total ? o.page * 40 + 1 : 0}-` +
    `${o.page * 40 + o.keys.length} of ${o.total.toLocaleString()} (page ${o.page + 1}/${o.pages})`;
  const x = o.edges.slice(0, -1).map((e, i) => toDate((e + o.edges[i + 1]) / 2));
  const labels = o.keys.map((k, i) => o.max[i] === null ? k : `${k} (${o.max[i].toFixed(0)})`);
  const trace = { type: "heatmap", x, y: labels, z: o.cells, customdata: o.keys.map((k) =>
    x.map(() => k)), zmin: 0, zmax: 100, colorscale: COLORSCALE, xgap: 1, ygap: 1,
    hoverongaps: false, showscale: false,
    hovertemplate: "%{customdata}<br>%{x}<br>max severity %{z:.1f}<extra></extra>" };
  const layout = { height: Math.max(200, 60 + 22 * o.keys.length),
    margin: { l: 220, r: 20, t: 10, b: 40 }, yaxis: { autorange: "reversed", automargin: true,
    type: "category" }, xaxis: { type: "date" }, plot_bgcolor: "#f4f4f4" };
  await Plotly.react("swimlane", [trace], layout, { displaylogo: false, responsive: true });
  const div = $("swimlane");
  if (!div.dataset.bound) {
    div.on("plotly_click", (ev) => openKey(ev.points[0].customdata));
    div.dataset.bound = "1";
  }
  div.dataset.keys = JSON.stringify(o.keys);
  div.dataset.events = String(o.counts.reduce((a, b) => a + b, 0));
}

// --- the anomaly table ----------------------------------------------------------------------
function rowHtml(r) {
  const tr = document.createElement("tr");
  tr.dataset.eventId = r.event_id;
  const cells = [r.time, null, null, r.p_value === null ? "—" : r.p_value.toExponential(2),
    fmtList(r.observed), fmtList(r.expected), `${fmt(r.score)} / ${fmt(r.threshold)}`,
    r.contributors.join(", "), `${r.model} v${r.version}`];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    if (i === 1) {
      const a = document.createElement("a");
      a.href = `#key=${encodeURIComponent(r.key)}`;
      a.textContent = r.key;
      td.appendChild(a);
    } else if (i === 2) {
      const b = document.createElement("span");
      b.className = "badge";
      b.style.background = sevColor(r.severity);
      b.textContent = r.severity.toFixed(1);
      td.appendChild(b);
    } else {
      td.textContent = text;
      if (i >= 3 && i <= 6) td.className = "num";
    }
    tr.appendChild(td);
  });
  return tr;
}

async function drawTable() {
  const t = await getJSON("/api/anomalies", { ...common(), min_severity: $("minsev").value,
    limit: 200 });
  const body = $("table").tBodies[0];
  const before = new Set([...body.rows].map((r) => r.dataset.eventId));
  body.replaceChildren(...t.rows.map((r) => {
    const tr = rowHtml(r);
    if (before.size && !before.has(r.event_id)) tr.className = "new";
    return tr;
  }));
  $("tableinfo").textContent = `${t.rows.length} of ${t.total.toLocaleString()} anomalies, newest first`;
}

// --- one key ------------------------------------------------------------------------------
function bandTrace(events) {
  // each anomalous window: a box from window start to end, between expected and observed
  const xs = [], ys = [];
  for (const e of events) {
    if (e.expected === null) continue;
    const lo = Math.min(e.expected[0], e.observed[0]), hi = Math.max(e.expected[0], e.observed[0]);
    const a = toDate(e.start_ns), b = toDate(e.time_ns);
    xs.push(a, b, b, a, a, null);
    ys.push(lo, lo, hi, hi, lo, null);
  }
  return { x: xs, y: ys, name: "expected band", type: "scatter", mode: "lines", fill: "toself",
    fillcolor: "rgba(255,127,14,0.18)", line: { width: 0 }, hoverinfo: "skip" };
}

function keyTraces(k) {
  const ev = k.events;
  const observed = { x: k.times.map(toDate), y: k.values, name: "observed", type: "scatter",
    mode: "lines", line: { color: "#1f77b4", width: 1 } };
  const expected = { x: ev.map((e) => toDate(e.time_ns)), y: ev.map((e) =>
    e.expected === null ? null : e.expected[0]), name: "expected", type: "scatter",
    mode: "markers", marker: { symbol: "line-ew-open", size: 14, color: "#ff7f0e",
    line: { width: 3 } } };
  const anomalies = { x: ev.map((e) => toDate(e.time_ns)), y: ev.map((e) => e.observed[0]),
    name: "anomaly", type: "scatter", mode: "markers", text: ev.map((e) =>
      `severity ${e.severity.toFixed(1)}`), marker: { size: 11, color: ev.map((e) =>
      sevColor(e.severity)), line: { color: "#333", width: 1 } } };
  return [bandTrace(ev), observed, expected, anomalies];
}

function keyShapes(k) {
  const shapes = k.quiet.map(([a, b]) => ({ type: "rect", xref: "x", yref: "paper",
    x0: toDate(a), x1: toDate(b), y0: 0, y1: 1, fillcolor: "rgba(120,120,120,0.12)",
    line: { width: 0 }, layer: "below" }));
  const notes = [];
  for (const v of k.versions) {
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: toDate(v.time_ns),
      x1: toDate(v.time_ns), y0: 0, y1: 1, line: { color: "#9467bd", dash: "dot", width: 1.5 } });
    notes.push({ x: toDate(v.time_ns), y: 1, xref: "x", yref: "paper", yanchor: "bottom",
      text: `${v.model} v${v.version}`, showarrow: false, font: { color: "#9467bd", size: 10 } });
  }
  return [shapes, notes];
}

async function drawKey() {
  if (!ui.key) return;
  const k = await getJSON("/api/key", { key: ui.key, range: $("range").value });
  $("keyinfo").textContent = k.seen ? `${k.events.length} anomalies, ${k.values.length} ` +
    `values shown, ${k.quiet.length} quiet periods (grey), ${k.versions.length} model ` +
    `version(s) (purple)` : "no such key seen yet";
  const [shapes, notes] = keyShapes(k);
  // both charts span the same time: the observed values and the anomalies together
  const stamps = k.times.concat(k.events.flatMap((e) => [e.start_ns, e.time_ns]));
  const span = stamps.length ? [toDate(Math.min(...stamps)), toDate(Math.max(...stamps))] : null;
  const base = { margin: { l: 60, r: 20, t: 30, b: 40 },
    xaxis: span ? { type: "date", range: span } : { type: "date" },
    legend: { orientation: "h", y: 1.12 } };
  await Plotly.react("keychart", keyTraces(k), { ...base, height: 360, shapes,
    annotations: notes, title: { text: ui.key, font: { size: 14 } },
    yaxis: { title: { text: "value (first feature)" } } }, { displaylogo: false, responsive: true });
  const ev = k.events;
  const score = { x: ev.map((e) => toDate(e.time_ns)), y: ev.map((e) => e.score),
    name: "detection score", type: "scatter", mode: "markers", marker: { size: 9,
    color: ev.map((e) => sevColor(e.severity)), line: { color: "#333", width: 1 } } };
  const threshold = { x: ev.map((e) => toDate(e.time_ns)), y: ev.map((e) => e.threshold),
    name: "threshold", type: "scatter", mode: "lines+markers", line: { shape: "hv",
    color: "#d62728", dash: "dash" }, marker: { size: 4 } };
  await Plotly.react("scorechart", [score, threshold], { ...base, height: 240, shapes,
    yaxis: { title: { text: "score vs threshold" } } }, { displaylogo: false, responsive: true });
  drawThresholds(k.thresholds);
}

function drawThresholds(list) {
  const body = $("thresholds").tBodies[0];
  if (typeof list === "string") {
    body.innerHTML = "";
    const tr = body.insertRow(); const td = tr.insertCell(); td.colSpan = 6; td.textContent = list;
    return;
  }
  body.replaceChildren(...list.map((t) => {
    const tr = document.createElement("tr");
    for (const v of [t.model, t.version, t.value === null ? "—" : fmt(t.value), t.scope,
      t.set_by, t.set_at]) tr.insertCell().textContent = v;
    return tr;
  }));
  const select = $("setmodel");
  const options = list.map((t) => `${t.model}\u0000${t.version}`);
  if ([...select.options].map((o) => o.value).join() !== options.join()) {
    select.replaceChildren(...list.map((t) => new Option(`${t.model} v${t.version}`,
      `${t.model}\u0000${t.version}`)));
  }
  $("setform").hidden = !ui.writes || list.length === 0;
  $("readonly").hidden = ui.writes;
}

async function setThreshold(ev) {
  ev.preventDefault();
  const [model, version] = $("setmodel").value.split("\u0000");
  const r = await fetch("/api/thresholds", { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, version, key: ui.key, value: Number($("setvalue").value) }) });
  $("setresult").textContent = r.ok ? "set; workers apply it within a second" :
    `refused: ${await r.text()}`;
  await drawKey();
}

// --- navigation -----------------------------------------------------------------------------
function openKey(key) { window.location.hash = `key=${encodeURIComponent(key)}`; }

function route() {
  const h = window.location.hash.slice(1);
  if (h.startsWith("key=")) {
    ui.key = decodeURIComponent(h.slice(4));
    $("keyname").value = ui.key;
    ui.tab = "key";
  } else if (["overview", "anomalies", "key"].includes(h)) {
    ui.tab = h;
  }
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active",
    s.id === `tab-${ui.tab}`);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active",
    a.dataset.tab === ui.tab);
  refresh();
}

async function fillKeys() {
  const o = await getJSON("/api/overview", { ...common(), sort: "severity", size: 200 });
  $("keylist").replaceChildren(...o.keys.map((k) => new Option(k)));
}

function follow() {
  const source = new EventSource("/api/stream");
  source.addEventListener("hello", () => $("live").className = "dot on");
  source.onerror = () => { $("live").className = "dot off"; };
  const onNew = (ev) => {
    const rows = ev.type === "anomalies" ? JSON.parse(ev.data) : [];
    schedule("summary", drawSummary, 300);
    if (ui.tab !== "key" || rows.some((r) => r.key === ui.key) || ev.type === "resync") refresh();
  };
  source.addEventListener("anomalies", onNew);
  source.addEventListener("resync", onNew);
}

async function main() {
  await drawSummary();
  for (const id of ["range", "sort", "minsev"]) $(id).addEventListener("change", () => {
    ui.page = 0; refresh();
  });
  $("search").addEventListener("input", () => { ui.page = 0; refresh(); });
  $("prev").onclick = () => { ui.page = Math.max(0, ui.page - 1); refresh(); };
  $("next").onclick = () => { ui.page += 1; refresh(); };
  $("keyname").addEventListener("change", () => openKey($("keyname").value));
  $("keyname").addEventListener("focus", fillKeys);
  $("setform").addEventListener("submit", setThreshold);
  window.addEventListener("hashchange", route);
  route();
  follow();
  // observed values arrive without events: the counts and a shown key follow them slowly
  setInterval(() => {
    schedule("summary", drawSummary, 0);
    if (ui.tab === "key") schedule("key", drawKey, 0);
    if (ui.tab === "overview") schedule("overview", drawOverview, 0);
  }, 2000);
}
main();
