// The guarded restore (issue 14 item 5). Turning "allow restore" on asks first (the settings form still saves it).
// Once it is saved on, database backups that can be restored (succeeded, still there, last verify not failed) get
// a Restore button, in the backups view and in the run details. The wizard: 1. the API's checks (GET
// runs/{id}/restore/check), 2. into a new database (the default) or over the live one (its name typed), 3. the
// restore run followed to its result. The API refuses the same things again (409): the page is not the guard.
import { ACTIVE, BACKUP_KINDS, api, h, humanBytes, humanSeconds, shortId, token } from "./common.js";
import { renderBackups, verification } from "./backups.js";

const $ = (id) => document.getElementById(id);
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const SCRATCH_PREFIX = "owbscratch_";
const REPLACEABLE = new Set(["full", "plain"]); // the kinds that hold the whole database
const POLL_MS = 1000;
const CHECK_TITLES = {
  allowed: "Restores allowed in the settings", restorable: "A succeeded database backup",
  verified: "Its last verify", file: "Its file and checksum", compatible: "Server version compatible",
  target: "Target database", sessions: "Sessions on the live database", idle: "No backup or restore running",
};
const PHASES = {
  verifying: "checking the file's checksum", guards: "checking the server and the target",
  safety_backup: "taking the safety backup", restoring: "restoring", checking: "checking row counts",
  swapping: "swapping the databases", post_restore: "running migrations and the health check",
};

let allowed = null; // the saved "allow restore" setting; null until read
let wizard = null; // {backup, opener, live, run, timer}

// --- allow restore: a confirmation before the box is ticked; the saved value decides the buttons ---------------

function askBeforeAllowing() {
  if ($("allow-restore").checked) $("restore-allow").showModal();
}

function allowClosed() {
  if ($("restore-allow").returnValue !== "allow") $("allow-restore").checked = false; // Cancel and Esc alike
  $("restore-allow").returnValue = "";
  $("allow-restore").focus();
}

// Told when the setting becomes known or changes: run details opened before GET settings answered (a #run=<id>
// link on a fresh load) then get their Restore button.
const allowedListeners = [];
export const onAllowedChange = (listener) => allowedListeners.push(listener);

function setAllowed(value) {
  if (allowed === value) return;
  allowed = value;
  renderBackups();
  allowedListeners.forEach((listener) => listener());
}

// Read once the page has a login; after that the settings form's "Saved" says the box shows the stored value.
function readAllowed() {
  if (allowed !== null || readAllowed.pending || !token.get()) return;
  readAllowed.pending = true;
  api("GET", "settings").then(({ data }) => setAllowed(Boolean(data.allow_restore)))
    .catch(() => {}).finally(() => { readAllowed.pending = false; });
}

new MutationObserver(() => {
  if ($("settings-msg").textContent === "Saved") setAllowed($("allow-restore").checked);
}).observe($("settings-msg"), { childList: true, characterData: true, subtree: true });

// --- the Restore button ------------------------------------------------------------------------------------

const finished = (run) => run.finished_at || run.created_at;

// runs: any runs that include the backup's verifies (the backups view's list, or the details' children).
export function canRestore(backup, runs) {
  if (!BACKUP_KINDS.has(backup.kind) || backup.status !== "succeeded" || backup.pruned_at) return false;
  const { passed, failed } = verification(backup, runs);
  return !failed || Boolean(passed && finished(passed) >= finished(failed));
}

export function restoreButton(backup, runs) {
  readAllowed();
  if (!allowed || !canRestore(backup, runs)) return null;
  return h("button", { type: "button", class: "restore-action",
    "aria-label": `Restore ${backup.kind} backup ${shortId(backup.id)}`,
    onclick: (event) => openWizard(backup, event.currentTarget) }, "Restore");
}

// --- the wizard --------------------------------------------------------------------------------------------

function step(which) {
  for (const [name, index] of [["checks", 1], ["target", 2], ["progress", 3]]) {
    $(`restore-step-${name}`).hidden = name !== which;
    const label = $(`restore-step${index}-label`);
    if (name === which) label.setAttribute("aria-current", "step");
    else label.removeAttribute("aria-current");
  }
}

const pad = (n) => String(n).padStart(2, "0");
function suggestedName(now = new Date()) {
  return `openwatch_restore_${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}_`
    + `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}`;
}

export async function openWizard(backup, from) {
  stopPolling();
  wizard = { backup, opener: from || document.activeElement, live: null, run: null, timer: null };
  $("restore-title").textContent = `Restore ${backup.kind} backup ${shortId(backup.id)}`;
  $("restore-into").value = suggestedName();
  $("restore-mode-into").checked = true;
  $("restore-confirm").value = "";
  $("restore-safety").checked = true;
  $("restore-terminate").checked = false;
  $("restore-form-msg").textContent = "";
  $("restore-mode-replace").disabled = !REPLACEABLE.has(backup.kind);
  $("restore-replace-note").hidden = REPLACEABLE.has(backup.kind);
  step("checks");
  if (!$("restore-wizard").open) $("restore-wizard").showModal();
  $("restore-title").focus();
  await runChecks();
}

function checkItem(check) {
  return h("li", { "data-check": check.name, class: check.ok ? "ok" : "fail" },
    h("span", { class: `badge ${check.ok ? "ok" : "fail"}` }, check.ok ? "ok" : "failing"), " ",
    h("strong", {}, CHECK_TITLES[check.name] || check.name), h("span", { class: "block" }, check.detail));
}

async function runChecks() {
  const { backup } = wizard;
  $("restore-next").disabled = true;
  $("restore-checks").replaceChildren();
  $("restore-checks-state").textContent = "Checking...";
  try {
    const { data } = await api("GET", `runs/${backup.id}/restore/check`,
      { params: { into: $("restore-into").value } });
    if (!wizard || wizard.backup !== backup) return;
    wizard.live = data.live_database;
    $("restore-live").textContent = data.live_database;
    $("restore-checks").replaceChildren(...data.checks.map(checkItem));
    // A taken default name is not a reason to stop: the next step asks for the name.
    const blocking = data.checks.filter((check) => !check.ok && check.name !== "target");
    $("restore-next").disabled = blocking.length > 0;
    $("restore-checks-state").textContent = blocking.length
      ? `${blocking.length} ${blocking.length === 1 ? "check is" : "checks are"} failing: this backup cannot be `
        + "restored now. Fix what they say, then check again."
      : "The checks passed. Next, choose where to restore.";
  } catch (error) {
    $("restore-checks-state").textContent = `The checks could not be run: ${error.message}`;
  }
}

const mode = () => ($("restore-mode-replace").checked ? "replace" : "into");

// The Restore button stays disabled until the input is right: a valid new name, or the live name typed exactly.
function validate() {
  const replace = mode() === "replace";
  $("restore-into-field").hidden = replace;
  $("restore-replace-fields").hidden = !replace;
  const live = wizard ? wizard.live : "";
  let problem = "";
  if (replace) {
    problem = $("restore-confirm").value === live ? "" : `Type ${live} to confirm.`;
    $("restore-start").textContent = `Replace ${live}`;
  } else {
    const name = $("restore-into").value.trim();
    if (!name) problem = "Enter a name for the new database.";
    else if (!NAME.test(name)) problem = "Use letters, digits and _ (up to 63), not starting with a digit.";
    else if (name === live) problem = `${live} is the live database: choose another name, or "Replace".`;
    else if (name.toLowerCase().startsWith(SCRATCH_PREFIX)) {
      problem = `Names starting with ${SCRATCH_PREFIX} are the backup tool's scratch databases: choose another.`;
    }
    $("restore-into").setAttribute("aria-invalid", problem ? "true" : "false");
    $("restore-into-msg").textContent = problem || "A new database: nothing is replaced.";
    $("restore-into-msg").className = problem ? "hint error-text" : "hint";
    $("restore-start").textContent = "Restore into the new database";
  }
  $("restore-start").disabled = Boolean(problem);
  return !problem;
}

function toTarget() {
  step("target");
  validate();
  $("restore-into").focus();
}

async function start(event) {
  event.preventDefault();
  if (!validate() || !wizard) return;
  const replace = mode() === "replace";
  const body = replace
    ? { confirm: $("restore-confirm").value, safety_backup: $("restore-safety").checked,
      terminate_connections: $("restore-terminate").checked }
    : { into: $("restore-into").value.trim() };
  $("restore-start").disabled = true;
  $("restore-form-msg").textContent = "";
  try {
    const { data } = await api("POST", `runs/${wizard.backup.id}/restore`, { body });
    wizard.run = data;
    step("progress");
    $("restore-result").textContent = "";
    $("restore-result").className = "";
    renderProgress(data);
    $("restore-progress-text").focus();
    poll();
  } catch (error) {
    $("restore-form-msg").textContent = `Not started: ${error.message}`;
    $("restore-start").disabled = false;
  }
}

function renderProgress(run) {
  const active = ACTIVE.has(run.status);
  const phase = run.phase ? `: ${PHASES[run.phase] || run.phase}` : "";
  const size = wizard.backup.size_bytes;
  const bar = $("restore-bar");
  bar.hidden = !active;
  if (active && run.phase === "restoring" && size && run.bytes_done) {
    bar.max = size;
    bar.value = Math.min(run.bytes_done, size);
  } else {
    bar.removeAttribute("value"); // indeterminate
  }
  $("restore-progress-text").textContent = active
    ? `Restore run ${shortId(run.id)} is ${run.status}${phase}${run.bytes_done ? ` (${humanBytes(run.bytes_done)} read)`
      : ""}...`
    : `Restore run ${shortId(run.id)} ${run.status}.`;
  if (!active) showResult(run);
}

function showResult(run) {
  const result = $("restore-result");
  const restore = (run.details || {}).restore || {};
  const seconds = restore.seconds ?? run.duration_seconds;
  if (run.status === "succeeded") {
    result.className = "result ok";
    result.textContent = restore.mode === "full"
      ? `Restored ${restore.database} from the backup in ${humanSeconds(seconds)}. The old database is kept as `
        + `${restore.kept_database}${restore.safety_backup_run ? `; safety backup run ${shortId(restore.safety_backup_run)}`
          : ""}.`
      : `Restored into database ${restore.database} in ${humanSeconds(seconds)}.`;
  } else {
    result.className = "result error";
    result.textContent = `The restore ${run.status}: ${run.error || run.error_code || "no reason was recorded"}. `
      + "The live database was not changed.";
  }
  $("restore-done").focus();
}

function stopPolling() {
  if (wizard && wizard.timer) clearTimeout(wizard.timer);
}

async function poll() {
  const current = wizard;
  if (!current || !current.run || !ACTIVE.has(current.run.status)) return;
  current.timer = setTimeout(async () => {
    try {
      const { data } = await api("GET", `runs/${current.run.id}`);
      if (wizard !== current) return;
      current.run = data;
      renderProgress(data);
    } catch (error) {
      $("restore-progress-text").textContent = `The restore's progress could not be read: ${error.message}`;
    }
    poll();
  }, POLL_MS);
}

function wizardClosed() {
  stopPolling();
  const ran = wizard && wizard.run;
  const opener = wizard && wizard.opener;
  wizard = null;
  if (ran) $("refresh").click(); // the page's lists pick up the restore run now, not at the next slow poll
  if (opener && opener.isConnected) opener.focus();
}

// Module scripts run after the document is parsed: the elements are there.
$("allow-restore").addEventListener("change", askBeforeAllowing);
$("restore-allow-cancel").addEventListener("click", () => $("restore-allow").close("cancel"));
$("restore-allow-confirm").addEventListener("click", () => $("restore-allow").close("allow"));
$("restore-allow").addEventListener("close", allowClosed);
$("restore-next").addEventListener("click", toTarget);
$("restore-recheck").addEventListener("click", runChecks);
$("restore-back").addEventListener("click", () => step("checks"));
$("restore-form").addEventListener("input", validate);
$("restore-form").addEventListener("change", validate);
$("restore-form").addEventListener("submit", start);
for (const id of ["restore-cancel", "restore-close", "restore-done"]) {
  $(id).addEventListener("click", () => $("restore-wizard").close());
}
$("restore-wizard").addEventListener("close", wizardClosed);
