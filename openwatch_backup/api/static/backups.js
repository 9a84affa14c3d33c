// The backups view (issue 14 item 1): one row per backup, apart from the activity log. Each row shows its
// verification (quick or deep, when, the last failure with its reason), its copies and their states, pinned, and
// what retention says of it (the newest prune plan's reason, or when retention.days lets it go). Verify, restore
// and prune runs are folded under the backup they concern. Built from the runs the page already polls.
import { badge, h, localTime, shortId } from "./common.js";
import { keepFocus } from "./focus.js";
import { restoreButton } from "./restore.js";

const $ = (id) => document.getElementById(id);
export const STORED_KINDS = new Set(["full", "plain", "schema", "tables", "config", "volume", "redis"]);
const DAY_MS = 86400000;

let retention = null; // the settings' retention values (days, ...), for "expires"
let latest = [];

export const runLink = (run, text) => h("a", { href: `#run=${run.id}`, class: "run-link",
  "aria-label": `Details of ${run.kind} run ${shortId(run.id)}` }, text || shortId(run.id));

const finished = (run) => run.finished_at || run.created_at;
const newestFirst = (a, b) => (finished(a) < finished(b) ? 1 : -1);

// The newest verify that passed, and the newest that failed (when it came after the pass, it is the verdict).
export function verification(backup, runs) {
  const verifies = runs.filter((r) => r.kind === "verify" && r.parent_id === backup.id).sort(newestFirst);
  const passed = verifies.find((r) => r.status === "succeeded");
  const failed = verifies.find((r) => r.status === "failed");
  const active = verifies.find((r) => r.status === "queued" || r.status === "running");
  return { passed, failed, active, verifies };
}

function verifyCell(backup, runs) {
  if (backup.status !== "succeeded") return h("td", { class: "verify" }, "-");
  const { passed, failed, active } = verification(backup, runs);
  const how = (run) => ((run.summary || {}).deep ? "deep" : "quick");
  const parts = [];
  if (passed && (!failed || finished(passed) >= finished(failed))) {
    parts.push(badge(`${how(passed)} verified`, "verified"), " ", localTime(finished(passed)));
  } else if (failed) {
    parts.push(badge("verify failed", "failed"), " ", localTime(finished(failed)));
  } else {
    parts.push(badge("not verified", "unverified"));
  }
  if (failed) {
    const summary = failed.summary || {};
    parts.push(h("span", { class: "verify-failure" }, `Last failure (${how(failed)}, `, localTime(finished(failed)),
      `): ${summary.reason || failed.error_code || "failed"}`, summary.message || failed.error
        ? ` - ${summary.message || failed.error}` : ""));
  }
  if (active) parts.push(h("span", { class: "muted block" }, `${how(active)} verify ${active.status}`));
  return h("td", { class: "verify" }, parts);
}

function copiesCellOf(backup) {
  const copies = backup.copies || [];
  if (!copies.length) return h("td", { class: "copies" }, "-");
  return h("td", { class: "copies" }, h("ul", { class: "plain" }, copies.map((copy) => h("li", {
    "data-storage": copy.storage,
    title: copy.error ? `${copy.storage} copy failed: ${copy.error}` : copy.location,
  }, `${copy.storage === "s3" ? "off-site" : "local"}: `, badge(copy.state, `copy ${copy.state}`),
  copy.state === "failed" && copy.error ? h("span", { class: "error-cell" }, ` ${copy.error}`) : null))));
}

// A value stored by hand (psql) may be anything, even past the last date JavaScript has: then no date is given
// (the settings card says what is wrong with the value).
function expiresAt(backup) {
  const days = Number(retention && retention.days);
  if (!Number.isFinite(days) || days <= 0 || !backup.created_at) return null;
  const at = new Date(Date.parse(backup.created_at) + days * DAY_MS);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

function retentionCell(backup, runs) {
  const parts = [];
  if (backup.pinned) parts.push(badge("pinned"), " kept until unpinned");
  const word = (backup.summary || {}).retention;
  if (backup.pruned_at) {
    parts.push(badge("pruned", "idle"), " ", localTime(backup.pruned_at));
  } else if (word) {
    const prune = runs.find((r) => r.id === word.prune_run) || { id: word.prune_run, kind: "prune" };
    parts.push(h("span", { class: "retention-word" }, word.action === "keep" ? "kept: " : "to delete: ",
      word.reason, word.protected ? " (protected)" : ""),
    h("span", { class: "muted block" }, "by ", runLink(prune, `prune ${shortId(prune.id)}`), ", ",
      localTime(word.planned_at)));
  }
  const expires = expiresAt(backup);
  if (!backup.pinned && !backup.pruned_at && backup.status === "succeeded" && expires) {
    parts.push(h("span", { class: "muted block expires" }, `past ${retention.days} days on `, localTime(expires),
      " unless a keep rule holds it"));
  }
  return h("td", { class: "retention" }, parts.length ? parts : "-");
}

function activityCell(backup, runs) {
  const folded = runs.filter((r) => r.parent_id === backup.id && r.kind !== backup.kind)
    .sort(newestFirst).slice(0, 6);
  const restore = restoreButton(backup, runs); // only when restores are allowed and this backup can be restored
  if (!folded.length) return h("td", { class: "folded" }, restore || "-");
  return h("td", { class: "folded" }, h("ul", { class: "plain" }, folded.map((run) => h("li", { "data-run-id": run.id },
    runLink(run, `${run.kind}${(run.summary || {}).deep ? " (deep)" : ""}`), " ", badge(run.status), " ",
    localTime(finished(run))))), restore);
}

const LABELS = ["Backup", "Status", "Verification", "Copies", "Retention", "Verify, restore"];

function rowOf(backup, runs) {
  const tr = rowCells(backup, runs);
  [...tr.children].forEach((cell, i) => cell.setAttribute("data-label", LABELS[i]));
  return tr;
}

function rowCells(backup, runs) {
  return h("tr", { "data-run-id": backup.id, "data-kind": backup.kind, "data-status": backup.status },
    h("th", { scope: "row" }, h("span", { class: "kind" }, backup.kind), " ", runLink(backup),
      h("span", { class: "muted block" }, localTime(backup.created_at))),
    h("td", {}, badge(backup.status)),
    verifyCell(backup, runs), copiesCellOf(backup), retentionCell(backup, runs), activityCell(backup, runs));
}

function fillKinds(backups) {
  const select = $("backups-kind");
  const have = new Set([...select.options].map((o) => o.value));
  for (const kind of [...new Set(backups.map((b) => b.kind))].sort()) {
    if (!have.has(kind)) select.append(h("option", { value: kind }, kind));
  }
}

// Every run the page knows (members of sets included); the backups among them, filtered.
export function renderBackups(runs = latest) {
  latest = runs;
  const backups = runs.filter((r) => STORED_KINDS.has(r.kind));
  fillKinds(backups);
  const kind = $("backups-kind").value;
  const status = $("backups-status").value;
  const shown = backups.filter((b) => (!kind || b.kind === kind) && (!status || b.status === status
    || (status === "active" && (b.status === "queued" || b.status === "running"))))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  keepFocus($("backups"), () => $("backups").tBodies[0].replaceChildren(...shown.map((b) => rowOf(b, runs))));
  $("backups-empty").hidden = shown.length > 0;
  $("backups-empty").textContent = backups.length ? "No backup matches these filters." : "No backups yet.";
}

export function setRetention(values) {
  retention = values || null;
  renderBackups();
}

export function initBackups() {
  $("backups-kind").addEventListener("change", () => renderBackups());
  $("backups-status").addEventListener("change", () => renderBackups());
}
