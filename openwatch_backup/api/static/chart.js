// The health card's chart (issue 14 item 3): the newest database backups' size (bars, left axis) and duration
// (a line with dots, right axis), oldest on the left. Hand-drawn SVG, no library: a viewBox and width 100% make it
// fit 390 px. Its words come first: a summary under it and a visually hidden table of every point, so the chart is
// never the only place a number is.
import { h, humanBytes, humanSeconds } from "./common.js";

const NS = "http://www.w3.org/2000/svg";
const W = 360;
const H = 190;
const PAD = { left: 46, right: 46, top: 10, bottom: 40 };
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// The axis top: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten, at or above the largest value: the
// ticks (0, half, top) read as round numbers without leaving half the plot empty.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((f) => value <= f * power * (1 + 1e-9));
  return step * power;
}

const tick = (value) => String(Number(value.toPrecision(3)));

function sizeScale(points) {
  const largest = Math.max(...points.map((p) => p.size_bytes || 0));
  let unit = 0;
  while (largest >= 1024 ** (unit + 1) && unit < UNITS.length - 1) unit += 1;
  return { unit: UNITS[unit], divisor: 1024 ** unit, top: niceMax(largest / 1024 ** unit) };
}

function durationScale(points) {
  const longest = Math.max(...points.map((p) => p.duration_seconds || 0));
  const minutes = longest > 300;
  const divisor = minutes ? 60 : 1;
  return { unit: minutes ? "min" : "s", divisor, top: niceMax(longest / divisor) };
}

const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }) : "-");
const day = (iso) => (iso ? new Date(iso).toLocaleDateString(undefined, { month: "short", day: "numeric" }) : "");

function range(values, format) {
  const known = values.filter((v) => v !== null && v !== undefined);
  if (!known.length) return "unknown";
  const [low, high] = [Math.min(...known), Math.max(...known)];
  return low === high ? format(low) : `${format(low)} to ${format(high)}`;
}

// "30 backups, size 1.20 MiB to 1.40 MiB, duration 2.1 s to 4.0 s": the chart's text alternative.
export function chartSummary(points) {
  if (!points.length) return "No database backup yet.";
  const count = points.length === 1 ? "1 backup" : `${points.length} backups`;
  return `${count}, size ${range(points.map((p) => p.size_bytes), humanBytes)}, `
    + `duration ${range(points.map((p) => p.duration_seconds), humanSeconds)}`;
}

function drawing(points, titleId, descId, summary) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const size = sizeScale(points);
  const duration = durationScale(points);
  const slot = plotW / points.length;
  const x = (i) => PAD.left + slot * (i + 0.5);
  const y = (value, scale) => PAD.top + plotH - (plotH * value) / scale.divisor / scale.top;
  const bottom = PAD.top + plotH;

  const grid = [0, 0.5, 1].map((f) => {
    const at = bottom - plotH * f;
    return svg("g", { class: "tick" },
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: at, y2: at, class: "grid" }),
      svg("text", { x: PAD.left - 4, y: at + 3, "text-anchor": "end" }, tick(size.top * f)),
      svg("text", { x: W - PAD.right + 4, y: at + 3, "text-anchor": "start" }, tick(duration.top * f)));
  });
  const label = (p) => `${when(p.finished_at)} (${p.kind}): ${humanBytes(p.size_bytes)}, `
    + `${humanSeconds(p.duration_seconds)}`;
  const barW = Math.max(1, Math.min(18, slot * 0.6));
  const bars = points.map((p, i) => svg("rect", {
    class: "size-point", x: x(i) - barW / 2, y: y(p.size_bytes || 0, size), width: barW,
    height: Math.max(0, bottom - y(p.size_bytes || 0, size)) }, svg("title", {}, label(p))));
  const timed = points.map((p, i) => [p, i]).filter(([p]) => p.duration_seconds !== null);
  const line = svg("polyline", { class: "duration-line", fill: "none",
    points: timed.map(([p, i]) => `${x(i).toFixed(1)},${y(p.duration_seconds, duration).toFixed(1)}`).join(" ") });
  const dots = timed.map(([p, i]) => svg("circle", { class: "duration-point", cx: x(i), cy: y(p.duration_seconds,
    duration), r: 2.6 }, svg("title", {}, label(p))));
  const mid = PAD.top + plotH / 2;
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", class: "chart",
    "aria-labelledby": `${titleId} ${descId}`, preserveAspectRatio: "xMidYMid meet" },
  svg("title", { id: titleId }, "Backup size and duration"),
  svg("desc", { id: descId }, summary),
  ...grid, ...bars, line, ...dots,
  svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: bottom, y2: bottom }),
  svg("text", { x: 12, y: mid, class: "axis-title", transform: `rotate(-90 12 ${mid})`, "text-anchor": "middle" },
    `Size (${size.unit})`),
  svg("text", { x: W - 8, y: mid, class: "axis-title", transform: `rotate(90 ${W - 8} ${mid})`,
    "text-anchor": "middle" }, `Duration (${duration.unit})`),
  svg("text", { x: PAD.left, y: bottom + 14, "text-anchor": "start" }, day(points[0].finished_at)),
  svg("text", { x: W - PAD.right, y: bottom + 14, "text-anchor": "end" }, day(points.at(-1).finished_at)),
  svg("text", { x: PAD.left + plotW / 2, y: H - 6, class: "axis-title", "text-anchor": "middle" },
    "Backups, oldest to newest"));
}

// The figure's children for `newestFirst` (GET status's recent_backups): the drawing, its legend and summary,
// and the table a screen reader reads instead of the drawing.
export function backupChart(newestFirst, idPrefix = "chart") {
  const points = [...newestFirst].reverse();
  const summary = chartSummary(points);
  if (!points.length) return [h("p", { class: "muted chart-summary" }, summary)];
  const table = h("table", { class: "visually-hidden chart-table" },
    h("caption", {}, "Backup size and duration, oldest first"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Finished"), h("th", { scope: "col" }, "Kind"),
      h("th", { scope: "col" }, "Size"), h("th", { scope: "col" }, "Duration"))),
    h("tbody", {}, points.map((p) => h("tr", {}, h("td", {}, when(p.finished_at)), h("td", {}, p.kind),
      h("td", {}, humanBytes(p.size_bytes)), h("td", {}, humanSeconds(p.duration_seconds))))));
  return [
    drawing(points, `${idPrefix}-title`, `${idPrefix}-desc`, summary),
    h("figcaption", {},
      h("span", { class: "chart-summary" }, summary),
      h("span", { class: "legend" },
        h("span", { class: "key size" }, "Size: bars, left axis"),
        h("span", { class: "key duration" }, "Duration: line with dots, right axis"))),
    table,
  ];
}
