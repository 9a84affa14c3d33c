// The "Current run" card (issue 14 item 4): the newest backup's bar (a percentage and an ETA from its size
// estimate), its steps preflight -> dump -> manifest -> verify -> off-site -> prune, "Back up now" held while a
// backup is queued or running, and one message when the backup and its steps end. GET status carries it all in
// `live` (api/live_chain.py decides which verify, off-site and prune runs belong to the backup) and `running`.
import { ACTIVE, api, clearAlert, h, humanBytes, humanSeconds, notice, report, shortId, showAlert } from "./common.js";

const $ = (id) => document.getElementById(id);
const STEP_NAMES = { preflight: "Preflight", dump: "Dump", manifest: "Manifest", verify: "Verify",
  offsite: "Off-site copy", prune: "Prune" };
const CAP = 99; // the bar never says 100% before the backup has ended

let hooks = { refresh: () => {}, onRun: () => {} };
let posting = false;
let posted = null; // the backup this tab queued, until GET status shows it
let following = null; // the backup whose chain was seen active: its end gets the message
let queuedNotice = null; // the "Backup queued" text this module put in the notice
let queuedRun = null; // the run it names: {id, created_at}

// --- the bar -------------------------------------------------------------------------------------------

// "about 1 min 20 s left" from the rate; whole seconds (a tenth of a second is not a promise worth making).
function etaText(left, rate) {
  if (!rate) return "";
  if (left <= 0) return "past the estimate, still dumping";
  const seconds = Math.max(1, Math.ceil(left / rate));
  return `about ${seconds < 60 ? `${seconds} s` : humanSeconds(seconds)} left`;
}

function renderBar(run, live) {
  const bar = $("live-bar");
  const ours = live && live.run.id === run.id;
  const estimate = ours ? live.estimate_bytes : null;
  if (!estimate || run.status !== "running") {
    bar.removeAttribute("value"); // indeterminate: no fake percentage
    $("live-percent").textContent = "";
    $("live-eta").textContent = ours && run.status === "running" ? "No size estimate yet: the first backup of "
      + "this kind and compression sets it." : "";
    return;
  }
  const done = run.bytes_done || 0;
  const past = ["committing", "manifest"].includes(run.phase);
  const percent = past ? CAP : Math.min(CAP, Math.floor((done / estimate) * 100));
  bar.max = 100;
  bar.value = percent;
  $("live-percent").textContent = `${percent}%`;
  const rate = run.summary && run.summary.rate_bytes_per_s;
  $("live-eta").textContent = past ? "writing the manifest" : etaText(estimate - done, rate);
}

// --- the steps -----------------------------------------------------------------------------------------

function stepText(step) {
  if (step.state === "failed") return step.note ? `failed: ${step.note}` : "failed";
  return step.note ? `${step.state} (${step.note})` : step.state;
}

function renderSteps(live) {
  $("live-steps-wrap").hidden = !live;
  if (!live) return;
  $("live-steps-title").textContent = `Steps of ${live.run.kind} backup ${shortId(live.run.id)}`;
  $("live-steps").replaceChildren(...live.steps.map((step) => h("li", {
    class: `step ${step.state}`, "data-step": step.name, "data-state": step.state,
    "aria-current": step.state === "running" ? "step" : null,
  }, h("span", { class: "step-name" }, STEP_NAMES[step.name] || step.name), ": ",
  h("span", { class: "step-state" }, stepText(step)))));
}

// --- what is running -------------------------------------------------------------------------------------

function renderFacts(running) {
  $("live-facts").hidden = !running;
  if (!running) return;
  const rate = (running.summary && running.summary.rate_bytes_per_s)
    || (running.details && running.details.rate_bytes_per_s);
  $("live-phase").textContent = running.phase || "starting";
  $("live-bytes").textContent = humanBytes(running.bytes_done);
  $("live-rate").textContent = rate ? `${humanBytes(rate)}/s` : "-";
  $("live-elapsed").textContent = running.started_at
    ? humanSeconds((Date.now() - Date.parse(running.started_at)) / 1000) : "-";
}

function headline(running, queued, live) {
  if (running) return `${running.kind} run ${shortId(running.id)} is running.`;
  if (queued) return `${queued.kind} run ${shortId(queued.id)} is queued, waiting for a worker.`;
  const next = live && live.active && live.steps.find((step) => step.state === "pending");
  if (next) return `Backup ${shortId(live.run.id)}: ${STEP_NAMES[next.name].toLowerCase()} is next.`;
  return "No run in progress.";
}

function renderLast(live, busy) {
  const last = live && live.run;
  $("live-last").hidden = busy || !last;
  if (busy || !last) return;
  $("live-last").textContent = `Last backup: ${last.kind} run ${shortId(last.id)}, ${last.status}`
    + `${last.size_bytes ? `, ${humanBytes(last.size_bytes)}` : ""}.`;
}

// --- "Back up now" ---------------------------------------------------------------------------------------

function renderButton(live) {
  if (posted && live && live.run.id === posted) posted = null;
  const active = live && ACTIVE.has(live.run.status) ? live.run : null;
  const reason = posting ? "Queuing the backup..."
    : active ? `Backup ${shortId(active.id)} is ${active.status}: Back up now is available again when it ends.`
      : posted ? `Backup ${shortId(posted)} is queued: Back up now is available again when it ends.` : "";
  $("backup-now").disabled = Boolean(reason);
  $("backup-now-reason").textContent = reason;
  $("backup-now-reason").hidden = !reason;
}

// --- the end message, and no stale notice ----------------------------------------------------------------

function outcome(live) {
  const run = live.run;
  const step = (name) => live.steps.find((item) => item.name === name) || {};
  const id = shortId(run.id);
  if (run.status === "cancelled") return { tone: "error", text: `Backup ${id} was cancelled.` };
  if (run.status !== "succeeded") {
    const failed = live.steps.find((item) => item.state === "failed");
    return { tone: "error", text: `Backup ${id} failed: ${run.error || (failed && failed.note) || run.status}` };
  }
  const verify = step("verify");
  const offsite = step("offsite");
  let text = `Backup ${id} finished: ${humanBytes(run.size_bytes)} in ${humanSeconds(run.duration_seconds)}`;
  if (verify.state === "failed") return { tone: "error", text: `${text}, but its verify failed: ${verify.note}` };
  text += verify.state === "done" ? ", verified" : `, not verified (${verify.note || "no verify"})`;
  if (offsite.state === "done") text += ", copied off-site";
  if (offsite.state === "failed") return { tone: "error", text: `${text}, but the off-site copy failed: ${offsite.note}` };
  return { tone: "ok", text: `${text}.` };
}

function announce(live) {
  const region = $("live-result");
  if (live && live.active) {
    if (following !== live.run.id) region.textContent = ""; // a new backup: the last one's message is stale
    following = live.run.id;
    return;
  }
  if (!live || following !== live.run.id) return;
  following = null;
  const { tone, text } = outcome(live);
  region.className = `live-result ${tone}`;
  region.textContent = text;
}

// "Backup queued" says what the click did; once that backup starts or ends, or a newer one is the live one, it is
// no longer true. A status answer from before the click (an older backup, ended) must not drop it.
function dropQueuedNotice(live) {
  if (queuedNotice === null || !live) return;
  const same = live.run.id === queuedRun.id;
  if (same ? live.run.status === "queued" : Date.parse(live.run.created_at) <= Date.parse(queuedRun.created_at)) {
    return;
  }
  if ($("notice").textContent === queuedNotice) notice("");
  queuedNotice = null;
  queuedRun = null;
}

// --- entry points ----------------------------------------------------------------------------------------

// `waiting`: a queued run of any kind from the runs table (a verify started by hand waits for a worker too).
export function renderLive(status, waiting = null) {
  const live = (status && status.live) || null;
  const running = (status && status.running) || null;
  const queued = live && live.run.status === "queued" ? live.run : waiting;
  const shown = running || queued;
  $("live-text").textContent = headline(running, queued, live);
  $("live-meter").hidden = !shown;
  if (shown) renderBar(shown, live);
  renderFacts(running);
  renderSteps(live);
  renderLast(live, Boolean(shown) || Boolean(live && live.active));
  dropQueuedNotice(live);
  announce(live);
  renderButton(live);
}

// A run queued or running anywhere in the backup's chain keeps the page polling every 2 s.
export const liveActive = (status) => Boolean(status && status.live && status.live.active);

export async function backupNow() {
  clearAlert();
  posting = true;
  renderButton(null);
  try {
    const { data } = await api("POST", "runs", { body: {} });
    hooks.onRun(data);
    posted = data.id;
    following = data.id; // a 5 MiB backup can end between two polls: its end still gets its message
    $("live-result").textContent = "";
    queuedNotice = `Backup queued: ${data.kind} run ${shortId(data.id)}.`;
    queuedRun = { id: data.id, created_at: data.created_at };
    notice(queuedNotice);
  } catch (error) {
    const running = error.status === 409 && error.body && error.body.run;
    if (!running) {
      report(error);
    } else {
      hooks.onRun(running);
      showAlert(`${error.message}. It is highlighted in the runs table.`, "warn");
    }
  } finally {
    posting = false;
  }
  hooks.refresh();
}

export function initLive(given) {
  hooks = { ...hooks, ...given };
}
