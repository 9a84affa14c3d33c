// The backups admin page: token, "Back up now", the runs table, live progress, logs and downloads.
// Health, prune and settings live in panels.js; API calls and formatting in common.js.
import {
  ACTIVE, AUTH_MODE, BACKUP_KINDS, api, apiUrl, badge, clearAlert, h, humanBytes, humanSeconds, localTime, notice,
  onAuthFailure, report, shortId, showAlert, token,
} from "./common.js";
import { initBackups, renderBackups, runLink, setRetention } from "./backups.js";
import { keepFocus } from "./focus.js";
import { initCards } from "./cards.js";
import { initConfig, loadConfig } from "./config.js";
import { initDetails, openFromHash } from "./details.js";
import { copiesCell, copiesSignature, followCopies, initOffsite, renderOffsite, showCopies } from "./offsite.js";
import { initKeys } from "./keys.js";
import { backupNow, initLive, liveActive, renderLive } from "./live.js";
import { initPanels, loadSettings, loadStatus } from "./panels.js";

const $ = (id) => document.getElementById(id);
const FAST_MS = 2000;
const SLOW_MS = 15000;

const rows = new Map(); // run id -> {run, tr}
let highlighted = null;
let nextCursor = null;
let olderLoaded = false;
let latestStatus = null;
let timer = null;
let ticking = null;
let logRun = null; // {id, status, opener}

// --- access: the admin's own login inside OpenWatch, a pasted token standalone -----------------------

function stopPolling() {
  clearTimeout(timer);
  timer = null;
}

function askForToken(message) {
  token.clear();
  stopPolling();
  showAlert(message);
  $("token-state").textContent = "No token in use: enter the API token.";
  $("token").focus();
}

// Inside OpenWatch nothing is typed here: the login is OpenWatch's, so the page says where to get it back and
// stops polling (common.js sends nothing more) until a new login appears.
function openWatchRefused({ reason, message }) {
  stopPolling();
  if (reason === "forbidden") {
    showAlert(`Your OpenWatch login may not manage backups (${message}): it needs the system:maintenance `
      + "permission.");
    $("access-state").textContent = "Signed in to OpenWatch, without the permission to manage backups.";
    return;
  }
  showAlert("");
  $("alert").append("Your OpenWatch session has ended: ", h("a", { href: "/login" }, "log in to OpenWatch again"));
  $("access-state").textContent = "Not signed in: your OpenWatch session has ended.";
}

onAuthFailure((failure) => {
  if (AUTH_MODE === "openwatch") openWatchRefused(failure);
  else askForToken(failure.message === "Enter the API token first." ? failure.message
    : `The backup API refused the token: ${failure.message}. Enter the API token again.`);
});

function startLoading() {
  loadSettings().then(settingsLoaded).catch(report);
  tick();
  openFromHash();
}

// A login made in another tab (OpenWatch's /login writes auth_token, then auth_user) picks the page up again.
function resumeOnLogin(event) {
  if (event.key === "auth_user" && token.get()) showSignedIn();
  if (event.key !== "auth_token" || !event.newValue || token.get()) return;
  if (!token.resume()) return;
  clearAlert();
  showSignedIn();
  startLoading();
}

function showSignedIn() {
  const user = token.user();
  const name = user && typeof user.username === "string" ? user.username : "";
  $("access-state").textContent = name ? `Signed in with your OpenWatch login (${name}).`
    : "Signed in with your OpenWatch login.";
}

function useToken(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) {
    askForToken("Enter the API token first.");
    return;
  }
  token.set(value);
  openFromHash();
  $("token").value = "";
  $("token-state").textContent = "Token in use for this browser tab.";
  clearAlert();
  loadSettings().then(settingsLoaded).catch(report);
  tick();
}

// --- runs table --------------------------------------------------------------------------------------

const isBackup = (run) => BACKUP_KINDS.has(run.kind);

// --- nightly sets: one row per set (a "set" badge and the set's own status, failed when a member failed), its
// member backups folded under it, indented, oldest first. GET runs?group=sets gives them in the set's `members`.
const RUNS_PARAMS = { limit: 50, group: "sets" };
// Lists carry a summary, not the details (GET runs/{id} has those).
const setOf = (run) => (run.summary && run.summary.set_id && run.parent_id === run.summary.set_id
  ? run.parent_id : null);
const membersSignature = (run) => (run.members || []).map((m) => `${m.id}:${m.status}`).join(",");

function setKindCell(run) {
  const count = (run.members || []).length;
  return h("td", {}, h("span", { class: "kind" }, badge("set", "set-badge"),
    ` ${count} ${count === 1 ? "member" : "members"}`), h("span", { class: "run-id" }, runLink(run)));
}

function setSize(run) {
  const sizes = (run.members || []).map((m) => m.size_bytes).filter((size) => size !== null);
  return sizes.length ? humanBytes(sizes.reduce((a, b) => a + b, 0)) : "-";
}

// Every succeeded member's off-site copy verified: the set is off-site.
const setCopiesCell = (run) => h("td", { class: "copies" }, run.set_offsite ? badge("all off-site", "verified") : "-");

// A member row goes after its set's row and the members created before it.
function placeMember(tr, run, setRow) {
  let after = setRow;
  for (let next = after.nextElementSibling; next && next.dataset.setId === setRow.dataset.runId
    && rows.get(next.dataset.runId).run.created_at <= run.created_at; next = next.nextElementSibling) after = next;
  tr.dataset.setId = setRow.dataset.runId;
  tr.classList.add("set-member");
  after.after(tr);
}

const upsertAll = (items) => items.forEach((run) => { upsert(run); (run.members || []).forEach(upsert); });

function kindCell(run) {
  if (run.kind === "set") return setKindCell(run);
  const deep = run.kind === "verify" && run.summary && run.summary.deep;
  return h("td", {}, h("span", { class: "kind" }, deep ? "verify (deep)" : run.kind),
    h("span", { class: "run-id" }, runLink(run)));
}

function statusCell(run) {
  return h("td", {}, badge(run.status),
    run.error ? h("span", { class: "run-error", title: run.error }, run.error_code || run.error) : null);
}

function duration(run) {
  if (run.duration_seconds !== null) return humanSeconds(run.duration_seconds);
  if (run.status === "running" && run.started_at) return humanSeconds((Date.now() - Date.parse(run.started_at)) / 1000);
  return "-";
}

function actionsOf(run) {
  const label = (verb) => `${verb} ${run.kind} run ${shortId(run.id)}`;
  const actions = [];
  if (isBackup(run) && run.status === "succeeded" && !run.pruned_at) {
    actions.push(h("button", { type: "button", "aria-label": label("Verify"), onclick: () => verify(run, false) },
      "Verify"));
    actions.push(h("button", { type: "button", "aria-label": label("Deep verify"), onclick: () => verify(run, true) },
      "Deep verify"));
    actions.push(h("a", { href: apiUrl(`runs/${run.id}/download`).href, class: "button-link",
      "aria-label": label("Download"), onclick: (event) => download(event, run) }, "Download"));
  }
  if (isBackup(run) && run.status === "succeeded") {
    actions.push(h("button", { type: "button", "aria-label": label("Copies"),
      onclick: (event) => showCopies(run, event.currentTarget) }, "Copies"));
  }
  actions.push(h("button", { type: "button", "aria-label": label("Log"),
    onclick: (event) => showLog(run, event.currentTarget) }, "Log"));
  return actions;
}

function cellsOf(run) {
  return [
    kindCell(run), statusCell(run), h("td", {}, run.trigger), h("td", {}, run.requested_by || "-"),
    h("td", {}, localTime(run.created_at)), h("td", {}, duration(run)),
    h("td", { class: "num" }, run.kind === "set" ? setSize(run)
      : (isBackup(run) || run.kind === "config" ? humanBytes(run.size_bytes) : "-")),
    run.kind === "set" ? setCopiesCell(run) : copiesCell(run),
  ];
}

// Rows are updated in place, and the action buttons are only rebuilt when they change (keeps keyboard focus).
function upsert(run) {
  keepFocus($("runs"), () => redrawRow(run)); // a redrawn row's focused control gets focus back
}

function redrawRow(run) {
  const known = rows.get(run.id);
  const signature = JSON.stringify([run.status, run.phase, run.duration_seconds, run.size_bytes, run.error,
    copiesSignature(run), membersSignature(run), run.set_offsite,
    run.status === "running" ? Math.floor(Date.now() / 1000) : 0]);
  followCopies(run);
  const actionSignature = `${run.status}|${run.pruned_at}`;
  if (known && known.signature === signature) return;
  const tr = known ? known.tr : h("tr", { "data-run-id": run.id, "data-status": run.status });
  tr.dataset.status = run.status;
  const cells = cellsOf(run);
  if (!known || known.actionSignature !== actionSignature) cells.push(h("td", { class: "actions" }, actionsOf(run)));
  else cells.push(tr.lastElementChild);
  tr.replaceChildren(...cells);
  rows.set(run.id, { run, tr, signature, actionSignature });
  const set = setOf(run) && rows.get(setOf(run));
  if (set && tr.dataset.setId !== set.run.id) placeMember(tr, run, set.tr);
  else if (!known) placeRow(tr, run);
  $("runs-empty").hidden = rows.size > 0;
}

function placeRow(tr, run) {
  const tbody = $("runs").tBodies[0];
  const newer = (other) => other.created_at > run.created_at
    || (other.created_at === run.created_at && other.id > run.id);
  const before = [...tbody.rows].find((row) => !row.dataset.setId && !newer(rows.get(row.dataset.runId).run));
  tbody.insertBefore(tr, before || null);
}

function highlight(runId) {
  if (highlighted && rows.has(highlighted)) {
    rows.get(highlighted).tr.classList.remove("highlight");
  }
  highlighted = runId;
  const entry = rows.get(runId);
  if (entry) {
    entry.tr.classList.add("highlight");
    entry.tr.scrollIntoView({ block: "nearest" });
  }
}

async function refreshRuns() {
  try {
    const { data } = await api("GET", "runs", { params: RUNS_PARAMS });
    upsertAll(data.items);
    renderBackups([...rows.values()].map((entry) => entry.run));
    if (!olderLoaded) nextCursor = data.next_cursor;
    $("older").hidden = !nextCursor;
    $("runs-error").hidden = true;
  } catch (error) {
    if (error.handled) return;
    $("runs-error").textContent = `The runs could not be loaded: ${error.message}`;
    $("runs-error").hidden = false;
  }
}

async function olderRuns() {
  try {
    const { data } = await api("GET", "runs", { params: { ...RUNS_PARAMS, cursor: nextCursor } });
    upsertAll(data.items);
    renderBackups([...rows.values()].map((entry) => entry.run));
    olderLoaded = true;
    nextCursor = data.next_cursor;
    $("older").hidden = !nextCursor;
    if (!nextCursor) notice("These are all the runs.");
  } catch (error) {
    report(error);
  }
}

// --- actions -----------------------------------------------------------------------------------------

async function verify(run, deep) {
  clearAlert();
  try {
    const { data } = await api("POST", `runs/${run.id}/verify`, { body: { deep } });
    upsert(data);
    highlight(data.id);
    notice(`${deep ? "Deep verify" : "Verify"} of ${run.kind} run ${shortId(run.id)} queued: run ${shortId(data.id)}.`);
    tick();
  } catch (error) {
    report(error);
  }
}

// The token goes in a header, never in the address: fetch the file, then save it from a blob.
async function download(event, run) {
  event.preventDefault();
  clearAlert();
  try {
    const response = await api("GET", `runs/${run.id}/download`, { raw: true });
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    notice(`Downloading ${match ? match[1] : "the backup"}...`);
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: match ? match[1] : `backup-${shortId(run.id)}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    notice(`Downloaded ${match ? match[1] : "the backup"} (${humanBytes(response.headers.get("Content-Length"))}).`);
  } catch (error) {
    report(error);
  }
}

async function showLog(run, opener) {
  try {
    const { data } = await api("GET", `runs/${run.id}/log`, { params: { lines: 200 } });
    $("log-title").textContent = `Log of ${run.kind} run ${shortId(run.id)}`;
    $("log-lines").textContent = data.lines.length ? data.lines.join("\n") : "(this run has no log lines)";
    const reopened = logRun && logRun.id === run.id && !$("log-panel").hidden;
    logRun = { id: run.id, status: run.status, opener: opener || (logRun && logRun.opener) };
    $("log-panel").hidden = false;
    if (opener && !reopened) $("log-title").focus();
  } catch (error) {
    report(error);
  }
}

function closeLog() {
  $("log-panel").hidden = true;
  const opener = logRun && logRun.opener;
  logRun = null;
  if (opener && opener.isConnected) opener.focus();
}

// --- live progress: live.js (the Current run card and Back up now) --------------------------------

// --- polling: every 2 s while a run is queued or running, every 15 s otherwise ---------------------

async function poll() {
  const [status] = await Promise.all([loadStatus(), refreshRuns(), loadConfig()]);
  if (status) latestStatus = status;
  renderLive(latestStatus, [...rows.values()].map((entry) => entry.run).find((run) => run.status === "queued"));
  const shown = logRun && rows.get(logRun.id);
  if (shown && (ACTIVE.has(shown.run.status) || shown.run.status !== logRun.status)) {
    await showLog(shown.run, null);
  }
  return (latestStatus && latestStatus.running) || liveActive(latestStatus)
    || [...rows.values()].some((entry) => ACTIVE.has(entry.run.status));
}

function tick() {
  clearTimeout(timer);
  if (!token.get()) return Promise.resolve();
  if (ticking) {
    ticking.again = true;
    return ticking.promise;
  }
  const state = { again: false };
  state.promise = poll().catch((error) => {
    showAlert(`The page failed to refresh: ${error.message}`);
    return false;
  }).then((active) => {
    ticking = null;
    if (!token.get()) return;
    if (state.again) tick();
    else timer = setTimeout(tick, active ? FAST_MS : SLOW_MS);
  });
  ticking = state;
  return state.promise;
}

// --- start -------------------------------------------------------------------------------------------

function settingsLoaded(settings) {
  renderOffsite(settings.offsite);
  setRetention(settings.retention);
}

$("token-form").addEventListener("submit", useToken);
$("backup-now").addEventListener("click", backupNow);
// Inside OpenWatch, once the login ended or was refused, the alert says why nothing loads: Refresh keeps it.
$("refresh").addEventListener("click", () => {
  if (AUTH_MODE === "openwatch" && !token.get()) return;
  clearAlert();
  tick();
});
$("older").addEventListener("click", olderRuns);
$("log-close").addEventListener("click", closeLog);
initPanels({ refresh: tick, onRun: (run) => { upsert(run); highlight(run.id); } });
initOffsite();
initConfig({ refresh: tick, onRun: (run) => { upsert(run); highlight(run.id); } });
initLive({ refresh: tick, onRun: (run) => { upsert(run); highlight(run.id); } });
initBackups();
initDetails();
initCards();
initKeys();

if (AUTH_MODE === "openwatch") {
  // No token form: the page calls the API with the admin's OpenWatch login (common.js renews it on a 401).
  $("token-form").hidden = true;
  $("token-source").hidden = true;
  $("access-state").hidden = false;
  window.addEventListener("storage", resumeOnLogin);
  showSignedIn();
  startLoading();
} else if (token.get()) {
  $("token-state").textContent = "Token in use for this browser tab.";
  startLoading();
} else {
  $("token").focus();
}
