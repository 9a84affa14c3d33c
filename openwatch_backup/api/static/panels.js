// The admin page's side panels: health (GET status), prune (plan, then apply after a confirmation dialog)
// and the schedule/retention form (GET/PUT settings).
import { api, badge, clearAlert, h, humanBytes, localTime, notice, report, shortId } from "./common.js";
import { initSettings } from "./settings.js";

const $ = (id) => document.getElementById(id);
let hooks = { refresh: () => {}, onRun: () => {} };

// --- health ------------------------------------------------------------------------------------------

function age(hours) {
  return hours < 48 ? `${hours.toFixed(1)} h ago` : `${Math.round(hours / 24)} days ago`;
}

function renderHealth(status) {
  const verdict = badge(status.healthy ? "healthy" : "unhealthy");
  const limit = `(alert after ${status.threshold_hours} h)`;
  $("health-verified").replaceChildren(verdict, " ", status.newest_verified_at
    ? h("span", {}, age(status.newest_verified_age_hours || 0), " ", limit)
    : `no verified backup yet ${limit}`);
  $("health-next-backup").replaceChildren(nextRun(status.next_runs.backup));
  $("health-next-drill").replaceChildren(nextRun(status.next_runs.drill));
  $("health-used").textContent = humanBytes(status.storage_used_bytes);
  $("health-free").textContent = status.storage_free_bytes === null ? "unknown" : humanBytes(status.storage_free_bytes);
  $("checklist").tBodies[0].replaceChildren(...status.checklist.map((item) => h("tr", { "data-check": item.key },
    h("td", {}, item.title, h("span", { class: "cadence" }, item.cadence)),
    h("td", {}, badge(item.status)),
    h("td", {}, item.detail, item.fix ? h("span", { class: "fix" }, "What to do: ", item.fix) : null))));
  renderFailing(status);
}

// A schedule that cannot be evaluated has no next run; the failing checks below say why.
const nextRun = (iso) => (iso ? localTime(iso) : "not scheduled (see the failing checks)");

// Why it is unhealthy, where the badge is: each failing checklist item, and an audit write OpenWatch refused.
function renderFailing(status) {
  const failing = new Set(status.failing_checks || []);
  const items = status.checklist.filter((item) => failing.has(item.key));
  $("health-failing-list").replaceChildren(...items.map((item) => h("li", { "data-check": item.key },
    h("strong", {}, item.title), `: ${item.detail}`)));
  $("health-failing").hidden = items.length === 0;
  const audit = status.audit || {};
  $("health-audit").hidden = !audit.last_error;
  if (audit.last_error) {
    $("health-audit").replaceChildren("Audit log: the last record was not written",
      audit.last_error_action ? ` (${audit.last_error_action})` : "", " ", localTime(audit.last_error_at), ": ",
      audit.last_error);
  }
}

// The health panel says itself when status fails: polling must not fill the alert region every 2 s.
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

// --- prune -------------------------------------------------------------------------------------------

let plan = null;

function renderPlan(run) {
  const details = run.details || {};
  const decisions = details.plan || [];
  const summary = details.summary || {};
  const warnings = details.warnings || [];
  $("prune-summary").replaceChildren("Planned ", localTime(details.planned_at || run.created_at), ": ",
    `keeps ${summary.backups_kept ?? 0}, deletes ${summary.backups_to_delete ?? 0} backup(s) `,
    `and ${summary.leftovers ?? 0} leftover file(s), freeing ${humanBytes(summary.bytes_to_free ?? 0)}.`,
    ...warnings.map((text) => h("span", { class: "warning" }, `Warning: ${text}`)));
  $("prune-plan").tBodies[0].replaceChildren(...decisions.map((item) => h("tr", { "data-action": item.action },
    h("td", {}, `${item.kind} `, h("span", { class: "run-id" }, shortId(item.run)),
      item.pinned ? badge("pinned") : null),
    h("td", {}, localTime(item.created_at)),
    h("td", { class: "num" }, humanBytes(item.size_bytes)),
    h("td", {}, item.verified ? "yes" : "no"),
    h("td", {}, badge(item.action)),
    h("td", {}, item.reason, item.protected ? " (protected)" : ""))));
  $("prune-plan").hidden = decisions.length === 0;
}

async function planPrune() {
  clearAlert();
  try {
    const { data } = await api("POST", "prune/plan");
    plan = data;
    renderPlan(data);
    $("apply-prune").disabled = false;
    notice(`Prune planned (run ${shortId(data.id)}); nothing was deleted.`);
    hooks.refresh();
  } catch (error) {
    report(error);
  }
}

function confirmApply() {
  const summary = (plan && plan.details.summary) || {};
  $("confirm-text").textContent = `The plan deletes ${summary.backups_to_delete ?? 0} backup(s) and `
    + `${summary.leftovers ?? 0} leftover file(s), ${humanBytes(summary.bytes_to_free ?? 0)} in all. `
    + "Retention is planned again when the prune runs, and deleted backups cannot be brought back.";
  $("confirm-prune").showModal();
}

async function applyPrune() {
  $("confirm-prune").close();
  clearAlert();
  try {
    const { data } = await api("POST", "prune", { body: { apply: true } });
    hooks.onRun(data);
    plan = null;
    $("apply-prune").disabled = true;
    notice(`Prune queued: run ${shortId(data.id)}.`);
    hooks.refresh();
  } catch (error) {
    report(error);
  }
}

// --- schedule and retention: settings.js (re-exported: app.js loads the settings through this module) -------

export { loadSettings } from "./settings.js";

export function initPanels(pageHooks) {
  hooks = pageHooks;
  $("plan-prune").addEventListener("click", planPrune);
  $("apply-prune").addEventListener("click", confirmApply);
  $("confirm-cancel").addEventListener("click", () => $("confirm-prune").close());
  $("confirm-apply").addEventListener("click", applyPrune);
  initSettings(pageHooks);
}

