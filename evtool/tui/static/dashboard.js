// evtool watch's page: polls /data (the same snapshot the terminal view draws) and redraws in
// place. Charts are plain SVG built here, so the page needs nothing from outside this server.
// Every value from the stream goes in as text (textContent), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fdb", "#e8833a", "#2a9d8f", "#8e5bd0", "#d64550", "#6b8e23", "#c9a227", "#1f9bd1"];
const POLL_MS = 1000;
// A reason keeps its colour however many others appear: evtool's own reasons have one each, any
// other gets one from its name.
const REASON_COLORS = { schema: "#d64550", json: "#8e5bd0", encoding: "#1f9bd1", too_large: "#6b8e23",
  late: "#e8833a", future: "#c9a227", conflict: "#2a9d8f" };
const colorOf = (name) => {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
};
const reasonColor = (reason) => REASON_COLORS[reason] ?? colorOf(reason);
const WAITING = "waiting for the first window";

// `security.incident` -> `security` when no other source starts the same way: a rule, not a list
const head = (source) => String(source ?? "").split(".")[0];
const short = (source, all) => (all.filter((s) => head(s) === head(source)).length <= 1 ? head(source) : String(source ?? ""));
const fmt = (n, digits = 0) =>
  n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
const clock = (iso) => (typeof iso === "string" && iso.length >= 19 ? iso.slice(11, 19) : String(iso ?? ""));

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function canvas(id, height) {
  const box = document.getElementById(id);
  const width = Math.max(240, box.clientWidth || 300);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img" });
  box.replaceChildren(svg);
  return { svg, width, height };
}

function nice(top) {
  if (!(top > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(top));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= top) return m * step;
  return 10 * step;
}

function axes(c, labels, top, pad, xf = (i, n) => xAt(c, pad, i, n)) {
  for (let i = 0; i <= 2; i++) {
    const y = pad.t + ((c.height - pad.t - pad.b) * i) / 2;
    el("line", { x1: pad.l, x2: c.width - pad.r, y1: y, y2: y, stroke: "#e4e7ec" }, c.svg);
    el("text", { x: pad.l - 4, y: y + 4, "text-anchor": "end" }, c.svg, fmt((top * (2 - i)) / 2, 1));
  }
  const n = labels.length;
  const picks = n <= 1 ? [0] : [0, Math.floor((n - 1) / 2), n - 1];
  for (const i of new Set(picks)) {
    if (i >= n) continue;
    const anchor = i === 0 && n > 1 ? "start" : i === n - 1 && n > 1 ? "end" : "middle";
    el("text", { x: xf(i, n), y: c.height - 4, "text-anchor": anchor }, c.svg, clock(labels[i]));
  }
}

const xAt = (c, pad, i, n) => pad.l + (n <= 1 ? (c.width - pad.l - pad.r) / 2 : ((c.width - pad.l - pad.r) * i) / (n - 1));

function legend(id, names, colors) {
  const box = document.getElementById(id);
  box.replaceChildren(...names.map((name, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colors[i];
    item.append(swatch, document.createTextNode(name));
    return item;
  }));
}

function waiting(c) {
  el("text", { x: c.width / 2, y: c.height / 2, "text-anchor": "middle", class: "waiting" }, c.svg, WAITING);
}

function drawRates(series) {
  const c = canvas("rates", 220);
  const pad = { l: 56, r: 12, t: 14, b: 24 };
  if (!series.length) {
    waiting(c);
    legend("rates-legend", [], []);
    return;
  }
  const sources = [...new Set(series.flatMap((p) => Object.keys(p.by_source)))].sort();
  const top = nice(Math.max(0, ...series.flatMap((p) => Object.values(p.by_source))));
  axes(c, series.map((p) => p.window_start), top, pad);
  const yAt = (v) => pad.t + (c.height - pad.t - pad.b) * (1 - v / top);
  sources.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length];
    const at = series.map((p, i) => [xAt(c, pad, i, series.length), yAt(p.by_source[s] || 0)]);
    // a segment that touches a window the stream covers only in part is dashed, its point hollow
    for (let i = 1; i < at.length; i++) {
      const partial = series[i - 1].partial || series[i].partial;
      el("line", { x1: at[i - 1][0], y1: at[i - 1][1], x2: at[i][0], y2: at[i][1], stroke: color, "stroke-width": 2,
        "stroke-dasharray": partial ? "3 4" : "none", "data-series": s, class: partial ? "partial" : "whole" }, c.svg);
    }
    series.forEach((p, i) => {
      if (p.partial || at.length === 1)
        el("circle", { cx: at[i][0], cy: at[i][1], r: 3.5, fill: p.partial ? "#fff" : color, stroke: color,
          "stroke-width": 1.5, "data-series": s, class: p.partial ? "partial" : "whole" }, c.svg);
    });
  });
  series.forEach((p, i) => {
    if (!p.alerts) return;
    const x = xAt(c, pad, i, series.length);
    el("path", { d: `M${x - 5},${pad.t - 2} L${x + 5},${pad.t - 2} L${x},${pad.t + 7} Z`, fill: "#c0392b", class: "alert-mark" }, c.svg,
      undefined).appendChild(el("title", {}, null, `${p.alerts} alert(s) in the window at ${p.window_start}`));
  });
  legend("rates-legend", sources.map((s) => short(s, sources)), sources.map((_, k) => PALETTE[k % PALETTE.length]));
  if (series.some((p) => p.partial)) {
    const note = document.createElement("span");
    note.className = "partial-note";
    note.textContent = "○ dashed: a window the stream may cover only in part (its first; its last once the input ended)";
    document.getElementById("rates-legend").appendChild(note);
  }
}

function drawRegions(snap) {
  const totals = snap.totals.by_region;
  const latest = {};
  for (const [r, by] of Object.entries((snap.latest_window || {}).by_region_source || {}))
    latest[r] = Object.values(by).reduce((a, b) => a + b, 0);
  const regions = Object.keys(totals).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b));
  const row = 20, head = 18;
  const c = canvas("regions", Math.max(40, head + regions.length * row + 4));
  if (!regions.length) {
    waiting(c);
    return;
  }
  // two charts side by side, each with its own scale, said in its heading
  const label = Math.min(110, Math.max(64, c.width * 0.24));
  const gap = 14;
  const half = (c.width - label - gap) / 2;
  const panels = [
    { name: "latest window", values: latest, fill: "#2f6fdb", x: label },
    { name: "all windows", values: totals, fill: "#b9cff5", x: label + half + gap },
  ];
  for (const panel of panels) {
    const top = Math.max(1, ...regions.map((r) => panel.values[r] || 0));
    el("text", { x: panel.x, y: 12, class: "panel" }, c.svg, panel.name);
    const numbers = 44;
    const span = Math.max(10, half - numbers);
    regions.forEach((r, i) => {
      const y = head + i * row;
      const v = panel.values[r] || 0;
      el("rect", { x: panel.x, y: y + 3, width: (span * v) / top, height: 12, fill: panel.fill,
        "data-region": r, "data-panel": panel.name }, c.svg);
      el("text", { x: panel.x + (span * v) / top + 4, y: y + 13 }, c.svg, fmt(v));
    });
  }
  regions.forEach((r, i) => el("text", { x: label - 6, y: head + i * row + 13, "text-anchor": "end" }, c.svg, r));
}

function drawTrouble(series) {
  const c = canvas("trouble", 180);
  const pad = { l: 44, r: 12, t: 10, b: 24 };
  if (!series.length) {
    waiting(c);
    legend("trouble-legend", [], []);
    return;
  }
  const reasons = [...new Set(series.flatMap((p) => Object.keys(p.dead)))].sort();
  const stack = series.map((p) => reasons.reduce((a, r) => a + (p.dead[r] || 0), 0));
  const top = nice(Math.max(0, ...stack, ...series.map((p) => p.duplicates)));
  const band = (c.width - pad.l - pad.r) / Math.max(1, series.length);
  const mid = (i) => pad.l + band * (i + 0.5);
  axes(c, series.map((p) => p.window_start), top, pad, mid);
  const inner = c.height - pad.t - pad.b;
  const w = Math.max(2, Math.min(48, band * 0.7));
  series.forEach((p, i) => {
    let base = c.height - pad.b;
    const x = mid(i) - w / 2;
    reasons.forEach((r, k) => {
      const h = (inner * (p.dead[r] || 0)) / top;
      if (h <= 0) return;
      base -= h;
      el("rect", { x, y: base, width: w, height: h, fill: reasonColor(r), "data-reason": r }, c.svg);
    });
  });
  const dupColor = "#1d2433";
  const pts = series.map((p, i) => `${mid(i)},${pad.t + inner * (1 - p.duplicates / top)}`);
  if (pts.length > 1) el("polyline", { points: pts.join(" "), fill: "none", stroke: dupColor, "stroke-width": 1.5, "stroke-dasharray": "4 3" }, c.svg);
  legend("trouble-legend", [...reasons, "duplicates"], [...reasons.map(reasonColor), dupColor]);
}

function drawAlerts(alerts, sources) {
  const body = document.querySelector("#alerts tbody");
  body.replaceChildren(...alerts.map((a) => {
    const tr = document.createElement("tr");
    for (const v of [clock(a.window_start), a.region, short(a.source, sources), fmt(a.count), fmt(a.baseline, 1), fmt(a.score, 2)]) {
      const td = document.createElement("td");
      td.textContent = String(v ?? "");
      tr.appendChild(td);
    }
    tr.title = `window starting ${a.window_start}`;
    return tr;
  }));
  document.getElementById("no-alerts").hidden = alerts.length > 0;
}

function set(key, text, value) {
  for (const node of document.querySelectorAll(`[data-k="${key}"]`)) {
    node.textContent = text;
    // a count of nothing is not shown in the colour of trouble
    if (value !== undefined) node.closest(".tile")?.classList.toggle("zero", !value);
  }
}

function show(snap) {
  const series = snap.series || [];
  const last = series.length ? series[series.length - 1] : null;
  const dead = snap.deadletters;
  set("source", snap.source || "–");
  set("records", fmt(snap.records));
  set("events", fmt(snap.totals.total));
  set("rate", last ? fmt(last.rate, 1) : "–");
  set("dead", fmt(dead.total), dead.total);
  set("reasons", Object.entries(dead.by_reason).map(([r, n]) => `${r} ${fmt(n)}`).join(" · ") || "none");
  set("duplicates", fmt(snap.duplicates));
  set("late", fmt(snap.late));
  set("alerts", fmt(snap.alerts.total), snap.alerts.total);
  const lag = snap.watermark || {};
  set("lag", lag.lag_s === null || lag.lag_s === undefined ? "–" : `${fmt(lag.lag_s, 1)} s`);
  set("meaning", lag.meaning || "");
  drawRates(series);
  drawRegions(snap);
  drawTrouble(series);
  const alerts = snap.alerts.latest || [];
  drawAlerts(alerts, [...new Set([...Object.keys(snap.totals.by_source), ...alerts.map((a) => String(a.source ?? ""))])]);
}

let latest = null;

async function poll() {
  const state = document.getElementById("state");
  try {
    const response = await fetch("/data", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    latest = await response.json();
    show(latest);
    const now = new Date().toLocaleTimeString("en-GB");
    state.textContent = latest.input_ended ? `input ended: these are the final numbers (checked ${now})`
      : `updated ${now}`;
    state.classList.remove("stale");
    state.classList.toggle("ended", Boolean(latest.input_ended));
  } catch (err) {
    state.textContent = `watch is not answering (${err.message}); showing the last numbers`;
    state.classList.add("stale");
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", () => { if (latest) show(latest); });
poll();
