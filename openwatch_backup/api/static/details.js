// Run details (issue 14 item 2): opened from any row's link, and linkable (#run=<id>). GET runs/{id} gives the
// details the lists leave out; the runs under it (verifies, restores) from GET runs?parent=<id> (summaries).
import { api, badge, h, humanBytes, humanSeconds, localTime, shortId } from "./common.js";
import { runLink, STORED_KINDS } from "./backups.js";
import { onAllowedChange, restoreButton } from "./restore.js";

const $ = (id) => document.getElementById(id);
const HASH = /^#run=([0-9a-f-]{36})$/;
let opener = null;
let openerAgain = null; // the opener's selector: polling may redraw its row while the dialog is open (Esc, item 7)
const sameLink = (el) => (el && el.matches && el.matches("a[href]") && el.closest("table[id]")
  ? `#${el.closest("table[id]").id} a[href="${el.getAttribute("href")}"]` : null);
let shown = null;
let shownRun = null; // {run, children} of the details on screen, for their Restore button

const fact = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];

// "01:02:03 dumping" log lines: each phase lasts until the next line (the database's UTC clock, to the second).
export function phaseTimes(lines) {
  const stamped = (lines || []).map((line) => /^(\d\d):(\d\d):(\d\d) (.+)$/.exec(line)).filter(Boolean)
    .map((m) => ({ at: Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]), phase: m[4] }));
  return stamped.slice(0, -1).map((step, i) => ({
    phase: step.phase, seconds: (stamped[i + 1].at - step.at + 86400) % 86400,
  }));
}

function sha256Fact(sha) {
  if (!sha) return fact("SHA-256", "-");
  const copy = h("button", { type: "button", class: "copy-sha", "aria-label": "Copy the SHA-256" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(sha);
      copy.textContent = "Copied";
    } catch {
      window.getSelection().selectAllChildren($("details-sha"));  // no clipboard (http): selected for Ctrl+C
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  return fact("SHA-256", h("code", { id: "details-sha", class: "sha" }, sha), " ", copy);
}

function backupFacts(run) {
  const d = run.details || {};
  const ratio = d.bytes_in && run.size_bytes ? (d.bytes_in / run.size_bytes).toFixed(2) : null;
  return [
    ...fact("File", d.artifact || (run.summary || {}).artifact || "-"),
    ...fact("Size", humanBytes(run.size_bytes), d.bytes_in ? ` (${humanBytes(d.bytes_in)} before compression)` : ""),
    ...fact("Compression ratio", ratio ? `${ratio} : 1` : "-"),
    ...sha256Fact(run.sha256),
    ...fact("Server version", d.server_version || "-"),
    ...fact("pg_dump version", d.pg_dump_version || "-"),
    ...fact("Migration (alembic head)", d.openwatch_alembic_head || "-"),
    ...fact("Peak memory", d.peak_rss_bytes ? humanBytes(d.peak_rss_bytes) : "-"),
  ];
}

function rowCounts(run) {
  const counts = Object.entries((run.details || {}).row_counts || {});
  if (!counts.length) return null;
  return h("table", { class: "data compact", id: "details-rows" }, h("caption", {}, "Row counts at the dump"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Table"), h("th", { scope: "col", class: "num" }, "Rows"))),
    h("tbody", {}, counts.map(([table, rows]) => h("tr", {}, h("td", {}, table),
      h("td", { class: "num" }, String(rows))))));
}

function phases(run) {
  const times = phaseTimes((run.details || {}).log);
  if (!times.length) return null;
  return h("table", { class: "data compact", id: "details-phases" }, h("caption", {}, "Time per phase"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Phase"), h("th", { scope: "col", class: "num" }, "Time"))),
    h("tbody", {}, times.map((t) => h("tr", {}, h("td", {}, t.phase),
      h("td", { class: "num" }, humanSeconds(t.seconds))))));
}

function historyTable(children) {
  const runs = children.filter((r) => r.kind === "verify" || r.kind === "restore");
  if (!runs.length) return h("p", { class: "muted", id: "details-history" }, "Never verified or restored.");
  const labels = ["Run", "Result", "When", "Time", "Reason"];
  // Under 600 px each run is a card (the cells labelled by their column), as in the backups view.
  return h("table", { class: "data compact cards", id: "details-history" },
    h("caption", {}, "Verify and restore history, newest first"),
    h("thead", {}, h("tr", {}, labels.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, runs.map((r) => {
      const s = r.summary || {};
      const what = r.kind === "verify" ? `${s.deep ? "deep" : "quick"} verify` : "restore";
      const cells = [runLink(r, what), badge(r.status), localTime(r.finished_at || r.created_at),
        humanSeconds(r.duration_seconds),
        r.status === "failed" ? `${s.reason || r.error_code || "failed"}: ${s.message || r.error || ""}` : "-"];
      return h("tr", { "data-run-id": r.id }, cells.map((c, i) => h("td", { "data-label": labels[i] }, c)));
    })));
}

async function childrenOf(run) {
  const { data } = await api("GET", "runs", { params: { parent: run.id, limit: 200 } });
  return data.items.filter((r) => r.parent_id === run.id)
    .sort((a, b) => ((a.finished_at || a.created_at) < (b.finished_at || b.created_at) ? 1 : -1));
}

// The Restore button, when restores are allowed and this backup can be restored.
function actionsOf(run, children) {
  const restore = STORED_KINDS.has(run.kind) ? restoreButton(run, children) : null;
  return restore ? h("div", { class: "details-actions" }, restore) : null;
}

// The setting arrived (or changed) while the details were open: their Restore button follows it.
function refreshActions() {
  if (!shownRun || !$("run-details").open) return;
  const old = $("details-body").querySelector(":scope > .details-actions");
  const now = actionsOf(shownRun.run, shownRun.children);
  if (old && !now) old.remove(); // a button already there stays (with its focus)
  else if (!old && now) $("details-body").prepend(now);
}

function render(run, children) {
  $("details-title").textContent = `${run.kind} run ${shortId(run.id)}`;
  const general = [
    ...fact("Status", badge(run.status), run.error ? ` ${run.error_code || ""}: ${run.error}` : ""),
    ...fact("Run id", h("code", {}, run.id)),
    ...fact("Trigger", `${run.trigger}${run.requested_by ? ` by ${run.requested_by}` : ""}`),
    ...fact("Created", localTime(run.created_at)),
    ...fact("Duration", humanSeconds(run.duration_seconds)),
  ];
  if (run.parent_id) general.push(...fact("Parent run", runLink({ id: run.parent_id, kind: "parent" })));
  const others = [...new Map([...(run.members || []), ...children.filter((r) => r.kind !== "verify"
    && r.kind !== "restore")].map((c) => [c.id, c])).values()];
  if (others.length) {
    general.push(...fact("Child runs", h("ul", { class: "plain" }, others.map((c) => h("li", {},
      runLink(c, `${c.kind} ${shortId(c.id)}`), " ", badge(c.status))))));
  }
  const stored = STORED_KINDS.has(run.kind);
  shownRun = { run, children };
  $("details-body").replaceChildren(...[actionsOf(run, children)].filter(Boolean),
    h("dl", { class: "facts", id: "details-facts" }, general, stored ? backupFacts(run) : []),
    stored ? historyTable(children) : null, phases(run), rowCounts(run));
}

export async function openDetails(runId, from) {
  opener = from || document.activeElement;
  openerAgain = sameLink(opener);
  try {
    const { data } = await api("GET", `runs/${runId}`);
    const children = await childrenOf(data);
    shown = runId;
    render(data, children);
    if (!$("run-details").open) $("run-details").showModal();
    $("details-title").focus();
  } catch (error) {
    $("details-title").textContent = `Run ${shortId(runId)}`;
    $("details-body").replaceChildren(h("p", { class: "error-text" }, `The run could not be loaded: ${error.message}`));
    if (!$("run-details").open) $("run-details").showModal();
  }
}

function onHash() {
  const match = HASH.exec(location.hash);
  if (match && match[1] !== shown) openDetails(match[1]);
  if (!match && $("run-details").open) $("run-details").close();
}

export function initDetails() {
  onAllowedChange(refreshActions);
  window.addEventListener("hashchange", onHash);
  $("details-close").addEventListener("click", () => $("run-details").close());
  $("run-details").addEventListener("close", () => {
    // The close event comes a task after close(): by then the address may name another run, which stays.
    const closed = shown;
    shown = null;
    if (closed && location.hash === `#run=${closed}`) {
      history.replaceState(null, "", location.pathname + location.search);
    }
    const back = opener && opener.isConnected ? opener : openerAgain && document.querySelector(openerAgain);
    if (back) back.focus();
  });
}

// Called once the token is in use: a link to #run=<id> opens that run.
export const openFromHash = onHash;
