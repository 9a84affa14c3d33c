// The admin page's side panels: prune (plan, then apply after a confirmation dialog). Health (GET status) is
// health.js, the schedule/retention form (GET/PUT settings) settings.js.
import { api, badge, clearAlert, h, humanBytes, localTime, notice, report, shortId } from "./common.js";
import { initSettings } from "./settings.js";

const $ = (id) => document.getElementById(id);
let hooks = { refresh: () => {}, onRun: () => {} };

// --- health: health.js (re-exported: app.js loads the status through this module) ----------------------

export { loadStatus } from "./health.js";

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

