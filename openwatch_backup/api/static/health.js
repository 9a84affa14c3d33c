// The health card (issue 14 item 3), from GET status: one verdict in words that includes the checklist, the last
// backup's size and duration, the next runs (relative, UTC and local, each labelled), storage against the size
// budget, the measured recovery time per scenario, and the chart of the newest backups.
import { api, badge, clearAlert, h, humanBytes, humanSeconds, localTime, notice, report, shortId } from "./common.js";
import { backupChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
const NEXT_LABELS = { backup: "Backup", drill: "Restore drill", drill_volume: "Volume drill",
  drill_host: "Host drill" };
const ALWAYS_LISTED = ["backup", "drill"]; // the RTO drills only where they run (Docker, off-site)

// "0.4 h ago", as the checklist's details say it; days from two days on.
function age(hours) {
  const since = Math.max(0, hours); // a clock a little ahead of the server's says 0.0, not -0.0
  return since < 48 ? `${since.toFixed(1)} h ago` : `${Math.round(since / 24)} days ago`;
}
const hoursSince = (iso) => (Date.now() - Date.parse(iso)) / 3600000;

// "in 3 h 20 min": whole minutes, rounded; days once it is two days or more away.
export function relative(iso, now = Date.now()) {
  const minutes = Math.round((Date.parse(iso) - now) / 60000);
  if (minutes <= 0) return "due now";
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `in ${hours} h ${minutes % 60} min` : `in ${hours} h`;
  return hours % 24 ? `in ${Math.floor(hours / 24)} days ${hours % 24} h` : `in ${Math.floor(hours / 24)} days`;
}

// "01:30" in the zone, with "Tue 2 Dec " first when that is not today there. en-GB: a 24-hour clock, day first.
function clock(date, timeZone) {
  const time = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const dayOf = new Intl.DateTimeFormat("en-GB", { timeZone, weekday: "short", day: "numeric", month: "short" });
  const sameDay = dayOf.format(date) === dayOf.format(new Date());
  return sameDay ? time.format(date) : `${dayOf.format(date).replace(",", "")} ${time.format(date)}`;
}

// "in 3 h 20 min · 01:30 UTC · 07:00 local (Asia/Kolkata)"
export function whenNext(iso) {
  const date = new Date(iso);
  return [h("span", { class: "relative" }, relative(iso)), " · ",
    h("time", { datetime: iso }, `${clock(date, "UTC")} UTC · ${clock(date, undefined)} local (${LOCAL_ZONE})`)];
}

function renderVerdict(status) {
  const verdict = $("health-verdict");
  verdict.className = `verdict ${status.healthy ? "healthy" : "unhealthy"}`;
  verdict.textContent = status.verdict || (status.healthy ? "Healthy" : "Unhealthy");
  const limit = `(alert after ${status.threshold_hours} h)`;
  $("health-verified").replaceChildren(status.newest_verified_at
    ? h("span", {}, age(status.newest_verified_age_hours || 0), " ", limit)
    : `no verified backup yet ${limit}`);
}

function renderLast(last) {
  $("health-last").replaceChildren(...(last
    ? [`${humanBytes(last.size_bytes)} in ${humanSeconds(last.duration_seconds)}, ${last.kind}, `,
      last.finished_at ? age(hoursSince(last.finished_at)) : "", " (",
      h("a", { href: `#run=${last.id}`, class: "run-link" }, "run details"), ")"]
    : ["no database backup has succeeded yet"]));
}

function renderNext(nextRuns) {
  const keys = [...ALWAYS_LISTED, ...Object.keys(nextRuns).filter((key) => !ALWAYS_LISTED.includes(key))];
  $("health-next").replaceChildren(...keys.flatMap((key) => [
    h("dt", {}, NEXT_LABELS[key] || key.replace(/_/g, " ")),
    // A schedule that cannot be evaluated has no next run; the failing checks say why.
    h("dd", { "data-next": key }, nextRuns[key] ? whenNext(nextRuns[key]) : "not scheduled (see the failing checks)"),
  ]));
}

function percent(used, budget) {
  const share = (100 * used) / budget;
  return share < 10 ? share.toFixed(1) : String(Math.round(share));
}

function renderStorage(status) {
  const used = status.storage_used_bytes;
  const budget = status.size_budget_bytes;
  $("health-used").textContent = humanBytes(used);
  const meter = $("health-meter");
  if (!budget) {
    $("health-budget").textContent = "no size budget";
    meter.hidden = true;
  } else {
    const share = `${percent(used, budget)}% of the ${humanBytes(budget)} size budget`;
    $("health-budget").textContent = used > budget
      ? `${share}: over by ${humanBytes(used - budget)}; the next prune deletes the oldest backups no rule protects`
      : share;
    Object.assign(meter, { min: 0, max: budget, value: Math.min(used, budget), low: budget * 0.8,
      high: budget * 0.95, optimum: 0, hidden: false });
    meter.setAttribute("aria-label", `Storage used: ${share}`);
  }
  $("health-free").textContent = status.storage_free_bytes === null ? "unknown" : humanBytes(status.storage_free_bytes);
}

const MEASURED_NOT = { stated: "stated, not measured", warn: "never measured" };

function renderRto(rows) {
  $("health-rto").tBodies[0].replaceChildren(...rows.map((row) => {
    // A measured row that warns says why after its last "; " (over the target, older than the limit).
    const measured = row.seconds !== null && row.seconds !== undefined;
    const problems = measured && row.state === "warn" && row.line.includes("; ")
      ? row.line.slice(row.line.lastIndexOf("; ") + 2) : "";
    return h("tr", { "data-scenario": row.scenario, title: row.line },
      h("th", { scope: "row", "data-label": "Scenario" }, row.scenario.replace(/_/g, " ")),
      h("td", { "data-label": "Measured" }, measured ? humanSeconds(row.seconds) : MEASURED_NOT[row.state] || "-"),
      h("td", { "data-label": "Target" }, row.target || row.guide_rto),
      h("td", { "data-label": "When" }, row.measured_at
        ? [age(hoursSince(row.measured_at)), " (", localTime(row.measured_at), ")"] : "-"),
      h("td", { "data-label": "State" }, badge(row.state), problems ? h("span", { class: "fix" }, problems) : null));
  }));
}

// Redrawn only when the series changes: the status is polled every few seconds.
let drawn = null;
function renderChart(points) {
  const key = JSON.stringify(points.map((p) => [p.id, p.size_bytes, p.duration_seconds]));
  if (key === drawn) return;
  drawn = key;
  $("health-chart").replaceChildren(...backupChart(points, "health-chart"));
}

// Why it is unhealthy, under the verdict: each failing checklist item, and an audit write OpenWatch refused.
function renderFailing(status) {
  const failing = new Set(status.failing_checks || []);
  const items = status.checklist.filter((item) => failing.has(item.key));
  $("health-failing-list").replaceChildren(...items.map((item) => h("li", { "data-check": item.key },
    h("strong", {}, item.title), `: ${item.detail}`, ...failingControls(item))));
  $("health-failing").hidden = items.length === 0;
  renderAudit(status);
}

function renderAudit(status) {
  const audit = status.audit || {};
  $("health-audit").hidden = !audit.last_error;
  if (audit.last_error) {
    $("health-audit").replaceChildren("Audit log: the last record was not written",
      audit.last_error_action ? ` (${audit.last_error_action})` : "", " ", localTime(audit.last_error_at), ": ",
      audit.last_error);
  }
}

// --- the fix's commands as actions (issue 14 item 2): GET status gives each item's commands, the run resolved --

// POST runs/{id}/verify, as the activity log's Verify; Refresh then shows the new run in the log.
async function verifyNow(runId, deep) {
  clearAlert();
  try {
    const { data } = await api("POST", `runs/${runId}/verify`, { body: { deep } });
    notice(`${deep ? "Deep verify" : "Verify"} of backup ${shortId(runId)} queued: run ${shortId(data.id)}.`);
    $("refresh").click();
  } catch (error) {
    report(error);
  }
}

const detailsLink = (runId) => h("a", { href: `#run=${runId}`, class: "run-link check-action",
  "aria-label": `Details of run ${shortId(runId)}` }, `Details of run ${shortId(runId)}`);

// What the page can do about one command: links and buttons, or nothing (drill, prune: the CLI's own work).
function controlsOf(action) {
  const id = action.run_id;
  const options = action.command.split(/\s+/).slice(2);
  if ((action.verb === "show" || action.verb === "offsite") && id) return [detailsLink(id)];
  if (action.verb === "verify" && id) {
    if (options.includes("--copy")) return [detailsLink(id)]; // the API verifies the local file only
    const deep = options.includes("--deep");
    return [h("button", { type: "button", class: "check-action", onclick: () => verifyNow(id, deep),
      "aria-label": `${deep ? "Deep verify" : "Verify"} backup ${shortId(id)} now` }, deep ? "Deep verify now" : "Verify now"),
    detailsLink(id)];
  }
  // "Back up now" queues a full backup and handles a running one (409); other kinds stay the CLI's.
  if (action.verb === "backup" && options.length === 0) {
    return [h("button", { type: "button", class: "check-action", "aria-label": "Start a backup now",
      onclick: () => $("backup-now").click() }, "Start a backup")];
  }
  if (action.verb === "schedule" || action.verb === "settings") {
    return [h("a", { href: "#settings-title", class: "run-link check-action" }, "Schedule and retention settings")];
  }
  return [];
}

// The fix as the CLI says it, each command in <code> with what the page can do about it next to it.
function fixWithActions(item) {
  const actions = item.actions || [];
  return item.fix.split(/`([^`]*)`/).map((part, index) => {
    if (index % 2 === 0) return part;
    const action = actions.find((a) => a.command === part.trim().split(/\s+/).join(" "));
    const controls = action ? controlsOf(action) : [];
    return controls.length ? h("span", { class: "check-command" }, h("code", {}, part), " ", ...controls)
      : h("code", {}, part);
  });
}

// Under "Failing checks": only what can be done from here (the commands are in the checklist below).
function failingControls(item) {
  const seen = new Set();
  return (item.actions || []).flatMap(controlsOf).filter((el) => {
    const name = el.getAttribute("aria-label") || el.textContent;
    if (seen.has(name)) return false; // one "Details of run ..." per run
    seen.add(name);
    return true;
  }).flatMap((el) => [" ", el]);
}

// Redrawn only when an item changes: a keyboard user on "Verify now" keeps focus across the 2 s polls.
let listed = null;
function renderChecklist(status) {
  const key = JSON.stringify([status.checklist, status.failing_checks]);
  if (key === listed) return false;
  listed = key;
  $("checklist").tBodies[0].replaceChildren(...status.checklist.map((item) => h("tr", { "data-check": item.key },
    h("td", {}, item.title, h("span", { class: "cadence" }, item.cadence)),
    h("td", {}, badge(item.status)),
    h("td", {}, item.detail, item.fix ? h("span", { class: "fix" }, "What to do: ", ...fixWithActions(item)) : null))));
  return true;
}

export function renderHealth(status) {
  renderVerdict(status);
  renderLast(status.last_backup);
  renderNext(status.next_runs || {});
  renderStorage(status);
  renderRto(status.rto || []);
  renderChart(status.recent_backups || []);
  if (renderChecklist(status)) renderFailing(status);
  else renderAudit(status);
}

// The health card says itself when status fails: polling must not fill the alert region every 2 s.
export async function loadStatus() {
  try {
    const { data } = await api("GET", "status");
    renderHealth(data);
    $("health-error").hidden = true;
    return data;
  } catch (error) {
    if (!error.handled) {
      $("health-error").textContent = `The status could not be loaded: ${error.message}`;
      $("health-error").hidden = false;
    }
    return null;
  }
}
