// The schedule and retention form (GET/PUT settings, issue 14 item 6): each cron in words as it is typed (the
// server's words: GET settings/cron-preview reads it with celery's crontab, as beat does), with its local time;
// errors under the field they concern, in words; retention inputs bounded by the server's own limits.
// The allow-restore checkbox is restore.js's (it asks first); this form only saves its state.
import { LOGIN_WORDS, api, h } from "./common.js";

const $ = (id) => document.getElementById(id);
let hooks = { refresh: () => {} };

const RETENTION_LABELS = {
  days: "Keep database backups (days)", keep_last: "Keep last (verified)", keep_daily: "Keep daily",
  keep_weekly: "Keep weekly", keep_monthly: "Keep monthly", size_budget_gib: "Size budget (GiB, 0: none)",
  verified_floor: "Verified floor", config_versions: "Config versions", volume_weeks: "Volume snapshots (weeks)",
};
const retentionLabel = (key) => RETENTION_LABELS[key] || key.replace(/_/g, " ");
const CRONS = ["backup", "drill"];
const PREVIEW_DELAY_MS = 300;
let loaded = null;

// --- field errors -------------------------------------------------------------------------------------------
// A field is marked (aria-invalid, its error text first in aria-describedby) while it has an error in words, or
// while GET settings lists its stored value as unusable (problemKeys): saving replaces such a value.

let problemKeys = new Set();
const errors = new Map(); // input id -> words

function inputFor(field) {
  const [group, name] = field.split(".");
  if (group === "schedule") return $(`cron-${name}`);
  return group === "retention" ? $(`ret-${name}`) : null;
}
const keyOf = (input) => (input.id.startsWith("cron-") ? `schedule.${input.name}` : `retention.${input.name}`);

function errorNode(input) {
  let node = $(`${input.id}-error`);
  if (!node) {
    node = h("small", { id: `${input.id}-error`, class: "field-error", hidden: true });
    input.closest(".field").append(node);
  }
  return node;
}

function showField(input) {
  const words = errors.get(input.id) || "";
  const node = errorNode(input);
  node.textContent = words;
  node.hidden = !words;
  const marked = Boolean(words) || problemKeys.has(keyOf(input));
  if (marked) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  const described = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter((id) => id && id !== node.id);
  input.setAttribute("aria-describedby", (words ? [node.id, ...described] : described).join(" "));
}

function setError(input, words) {
  if (words) errors.set(input.id, words);
  else errors.delete(input.id);
  showField(input);
}

function clearErrors() {
  for (const id of [...errors.keys()]) setError($(id), "");
}

// --- cron preview -------------------------------------------------------------------------------------------

const timers = {};
const asked = {}; // the newest request per cron: an older answer arriving late is dropped

const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "";
const hhmm = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const weekday = (date, timeZone) => date.toLocaleDateString("en-US", { weekday: "long", timeZone });

// "daily at 01:30 UTC" -> "daily at 01:30 UTC, 02:30 your time (Europe/Berlin)": the local clock time of the next
// run; its weekday too when the days are weekdays and the local one differs.
function localPart(preview) {
  if (!preview.time_of_day || !preview.next_runs.length || /^(Etc\/)?UTC$/.test(zone())) return "";
  const next = new Date(preview.next_runs[0]);
  const day = preview.weekdays && weekday(next) !== weekday(next, "UTC") ? `${weekday(next)} ` : "";
  return `, ${day}${hhmm(next)} your time${zone() ? ` (${zone()})` : ""}`;
}

function runTime(iso) {
  const when = new Date(iso);
  const text = when.toLocaleString([], { weekday: "short", month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", hourCycle: "h23" });
  return h("time", { datetime: iso, title: `${iso.replace("T", " ").slice(0, 16)} UTC` }, text);
}

function source(name) {
  const same = loaded && $(`cron-${name}`).value.trim() === loaded.schedule[name];
  return same ? ` (set in the ${loaded.schedule_source[name] || "defaults"})` : " (not saved yet)";
}

function showPreview(name, preview) {
  const runs = preview.next_runs.map(runTime);
  const listed = runs.flatMap((node, index) => (index ? [", ", node] : [node]));
  $(`cron-${name}-hint`).replaceChildren(h("span", { class: "cron-words" }, preview.text, localPart(preview)),
    h("span", { class: "cron-next" }, "Next, your time: ", ...listed, source(name)));
}

async function previewCron(name) {
  const input = $(`cron-${name}`);
  const expr = input.value.trim();
  const ticket = (asked[name] = (asked[name] || 0) + 1);
  if (!expr) {
    $(`cron-${name}-hint`).replaceChildren();
    setError(input, "enter a cron expression, e.g. 0 2 * * * (02:00 UTC daily)");
    return;
  }
  try {
    const { data } = await api("GET", "settings/cron-preview", { params: { expr } });
    if (ticket !== asked[name]) return;
    setError(input, "");
    showPreview(name, data);
  } catch (error) {
    if (ticket !== asked[name] || error.handled) return;
    $(`cron-${name}-hint`).replaceChildren();
    setError(input, error.status === 400 || error.status === 422 ? cronWords(error) : "");
  }
}

// The preview's 400 is one line about the expression; a 422 (too long) names the parameter.
function cronWords(error) {
  const listed = error.body && Array.isArray(error.body.errors) ? error.body.errors : [];
  return listed.length ? `the expression ${listed[0].message}` : error.message;
}

function schedulePreview(name) {
  clearTimeout(timers[name]);
  timers[name] = setTimeout(() => previewCron(name), PREVIEW_DELAY_MS);
}

// --- retention inputs ---------------------------------------------------------------------------------------

// The same words as the server's 422 (api/errors.py), from the same bounds: min, max and step come from GET
// settings' limits, so a refusal here and one there read alike.
const number = (value) => Number(value).toLocaleString("en-US");

function retentionInput(key) {
  let input = $(`ret-${key}`);
  if (!input) {
    input = h("input", { id: `ret-${key}`, name: key, type: "number", inputmode: "decimal",
      "aria-describedby": "settings-msg" });
    $("retention-fields").append(h("div", { class: "field" }, h("label", { for: input.id }, retentionLabel(key)),
      input));
  }
  const limits = (loaded && loaded.limits && loaded.limits[key]) || {};
  for (const bound of ["min", "max", "step"]) {
    if (limits[bound] !== undefined && limits[bound] !== null) input.setAttribute(bound, limits[bound]);
  }
  return input;
}

function retentionProblem(input) {
  const text = input.value.trim();
  const { validity } = input;
  if (validity.badInput || text === "" || !Number.isFinite(Number(text))) return "must be a number";
  if (validity.rangeUnderflow) return `must be at least ${number(input.min)}`;
  if (validity.rangeOverflow) return `must be at most ${number(input.max)}`;
  if (validity.stepMismatch) return "must be a whole number";
  return "";
}

// --- load and save ------------------------------------------------------------------------------------------

function settingsMessage(text, tone) {
  $("settings-msg").textContent = text;
  $("settings-msg").className = `form-msg ${tone}`;
}

function fillSettings(settings) {
  loaded = settings;
  errors.clear();
  for (const name of CRONS) $(`cron-${name}`).value = settings.schedule[name];
  for (const [key, value] of Object.entries(settings.retention)) retentionInput(key).value = value;
  $("allow-restore").checked = settings.allow_restore;
  const problems = settings.problems || [];
  problemKeys = new Set(problems.map((problem) => problem.key));
  $("settings-problems").replaceChildren(...problems.map((problem) => h("li", { "data-key": problem.key },
    problem.detail, ` (allowed: ${problem.allowed})`)));
  $("settings-problems").hidden = problems.length === 0;
  for (const input of $("settings-form").querySelectorAll("input[id^='cron-'], input[id^='ret-']")) showField(input);
  for (const name of CRONS) previewCron(name);
}

export async function loadSettings() {
  const { data } = await api("GET", "settings");
  fillSettings(data);
  return data;
}

// Only the groups that changed are sent: a schedule (both crons), the changed retention values, allow restore.
// null when a retention value is refused here (its words are under it).
function changes() {
  const body = {};
  const schedule = { backup: $("cron-backup").value.trim(), drill: $("cron-drill").value.trim() };
  if (schedule.backup !== loaded.schedule.backup || schedule.drill !== loaded.schedule.drill
    || problemKeys.has("schedule.backup") || problemKeys.has("schedule.drill")) body.schedule = schedule;
  const retention = {};
  let refused = false;
  for (const [key, before] of Object.entries(loaded.retention)) {
    const input = retentionInput(key);
    const problem = retentionProblem(input);
    setError(input, problem);
    refused = refused || Boolean(problem);
    const value = Number(input.value.trim());
    if (!problem && (value !== Number(before) || problemKeys.has(`retention.${key}`))) retention[key] = value;
  }
  if (refused) return null;
  if (Object.keys(retention).length) body.retention = retention;
  if ($("allow-restore").checked !== loaded.allow_restore) body.allow_restore = $("allow-restore").checked;
  return body;
}

// A 422 lists each bad field with its words (api/errors.py): each goes under its input; the line at the foot
// says it all once more.
function showRefusal(error) {
  const listed = error.body && Array.isArray(error.body.errors) ? error.body.errors : [];
  let first = null;
  for (const item of listed) {
    const input = inputFor(item.field || "");
    if (!input) continue;
    setError(input, item.message);
    first = first || input;
  }
  settingsMessage(error.message, "error");
  if (first) first.focus();
}

async function saveSettings(event) {
  event.preventDefault();
  if (!loaded) {
    settingsMessage(`The settings are not loaded yet: ${LOGIN_WORDS.first}.`, "error");
    return;
  }
  clearErrors();
  const body = changes();
  if (body === null) {
    const first = $("settings-form").querySelector(".field-error:not([hidden])");
    settingsMessage("Not saved: fix the values marked above.", "error");
    if (first) first.closest(".field").querySelector("input").focus();
    return;
  }
  if (!Object.keys(body).length) {
    settingsMessage("No changes to save.", "");
    return;
  }
  try {
    settingsMessage("Saving...", "");
    const { data } = await api("PUT", "settings", { body });
    fillSettings(data);
    settingsMessage("Saved", "ok");
    hooks.refresh();
  } catch (error) {
    if (error.handled) settingsMessage(`Not saved: ${LOGIN_WORDS.refused}.`, "error");
    else showRefusal(error);
  }
}

function onInput(event) {
  settingsMessage("", "");
  const input = event.target;
  if (input.id.startsWith("cron-")) {
    schedulePreview(input.name);
  } else if (input.id.startsWith("ret-") && errors.has(input.id)) {
    setError(input, retentionProblem(input)); // a fixed value loses its error as it is typed
  }
}

export function initSettings(pageHooks) {
  hooks = pageHooks;
  $("settings-form").addEventListener("submit", saveSettings);
  $("settings-form").addEventListener("input", onInput);
}
