// Off-site copies on the admin page: each backup's copies as badges in the runs table, one backup's copies in
// the copies panel, and the off-site card (where copies go, "Test connection": POST offsite/test).
import { LOGIN_WORDS, api, clearAlert, h, humanBytes, localTime, report, shortId } from "./common.js";

const $ = (id) => document.getElementById(id);
let shownRun = null; // {id, opener}: the run whose copies the panel shows

// "local verified", "s3 failed": text and colour; the hover text says where, or why it failed.
function copyBadge(copy) {
  const title = copy.state === "failed" && copy.error ? `${copy.storage} copy failed: ${copy.error}`
    : `${copy.storage} copy ${copy.state}: ${copy.location}`;
  return h("span", { class: `badge copy ${copy.state}`, title, "data-storage": copy.storage },
    `${copy.storage} ${copy.state}`);
}

export function copiesCell(run) {
  const copies = run.copies || [];
  return h("td", { class: "copies" }, copies.length ? copies.map(copyBadge) : "-");
}

// What a row must be redrawn for when it changes.
export const copiesSignature = (run) => (run.copies || []).map((c) => `${c.storage}:${c.state}:${c.error || ""}`)
  .join(",");

// --- the copies panel ----------------------------------------------------------------------------------

function copyRow(copy) {
  return h("tr", { "data-storage": copy.storage },
    h("td", {}, copy.storage === "s3" ? "off-site (S3)" : "local"),
    h("td", {}, copyBadge(copy)),
    h("td", { class: "location" }, copy.location),
    h("td", { class: "num" }, humanBytes(copy.size_bytes)),
    h("td", {}, localTime(copy.verified_at)),
    h("td", {}, localTime(copy.reverified_at)),
    h("td", { class: "error-cell" }, copy.error || "-"));
}

function renderCopies(run) {
  const copies = run.copies || [];
  $("copies-title").textContent = `Copies of ${run.kind} run ${shortId(run.id)}`;
  $("copies").tBodies[0].replaceChildren(...copies.map(copyRow));
  $("copies").hidden = copies.length === 0;
  $("copies-empty").hidden = copies.length > 0;
}

// The run detail's copies, read fresh from GET runs/{id}.
export async function showCopies(run, opener) {
  try {
    const { data } = await api("GET", `runs/${run.id}`);
    const reopened = shownRun && shownRun.id === run.id && !$("copies-panel").hidden;
    shownRun = { id: run.id, opener: opener || (shownRun && shownRun.opener) };
    renderCopies(data);
    $("copies-panel").hidden = false;
    if (opener && !reopened) $("copies-title").focus();
  } catch (error) {
    report(error);
  }
}

// Polling hands every run it got: the open panel follows its run's copies.
export function followCopies(run) {
  if (shownRun && shownRun.id === run.id && !$("copies-panel").hidden) renderCopies(run);
}

function closeCopies() {
  $("copies-panel").hidden = true;
  const opener = shownRun && shownRun.opener;
  shownRun = null;
  if (opener && opener.isConnected) opener.focus();
}

// --- the off-site card -----------------------------------------------------------------------------------

// GET settings' `offsite`: where copies go, or why the test button is off.
export function renderOffsite(offsite) {
  const configured = Boolean(offsite && offsite.configured);
  $("offsite-test").disabled = !configured;
  $("offsite-facts").hidden = !configured;
  if (!configured) {
    $("offsite-state").textContent = "Off-site copies are off: set OPENWATCH_BACKUP_S3_BUCKET (and "
      + "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3) in the environment of the API and the "
      + "worker, with credentials in boto3's chain. Backups stay on this host only.";
    $("offsite-result").hidden = true;
    return;
  }
  $("offsite-state").textContent = "Backups are copied off-site after their local verify passed.";
  $("offsite-bucket").textContent = offsite.bucket;
  $("offsite-prefix").textContent = offsite.prefix || "(none)";
  $("offsite-endpoint").textContent = offsite.endpoint || `AWS S3${offsite.region ? ` (${offsite.region})` : ""}`;
}

function stepItem(step) {
  const seconds = `${Math.round(step.seconds * 1000)} ms`;
  return h("li", { "data-step": step.name, "data-ok": String(step.ok) },
    h("span", { class: `badge ${step.ok ? "ok" : "fail"}` }, step.ok ? "ok" : "failed"), ` ${step.name} `,
    h("span", { class: "muted" }, `(${seconds})`),
    step.ok ? null : h("span", { class: "step-error" }, step.code ? `[${step.code}] ${step.error}` : step.error));
}

async function testConnection() {
  clearAlert();
  const button = $("offsite-test");
  button.disabled = true;
  $("offsite-result").hidden = false;
  $("offsite-summary").className = "";
  $("offsite-summary").textContent = "Testing: put, head, get and delete of a probe object...";
  $("offsite-steps").replaceChildren();
  try {
    const { data } = await api("POST", "offsite/test");
    $("offsite-summary").className = data.ok ? "ok-text" : "error-text";
    $("offsite-summary").textContent = data.ok ? "The connection works." : "The connection test failed.";
    $("offsite-steps").replaceChildren(...data.steps.map(stepItem));
    $("offsite-steps").setAttribute("title", data.summary);
  } catch (error) {
    $("offsite-summary").className = "error-text";
    $("offsite-summary").textContent = error.handled ? `Not tested: ${LOGIN_WORDS.refused}.` : error.message;
    if (!error.handled) report(error);
  } finally {
    button.disabled = false;
  }
}

export function initOffsite() {
  $("copies-close").addEventListener("click", closeCopies);
  $("offsite-test").addEventListener("click", testConnection);
}
