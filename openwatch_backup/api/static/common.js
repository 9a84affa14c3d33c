// Shared by the admin page's modules: API calls with the bearer token, the message regions, formatting.
// Every API address is relative to the page: the page is <prefix>/ui, the API <prefix>/runs, <prefix>/status...

const TOKEN_KEY = "openwatch-backup.api-token";
const API_BASE = location.origin + location.pathname.replace(/ui\/?$/, "");

export const BACKUP_KINDS = new Set(["full", "plain", "schema", "tables"]);
export const ACTIVE = new Set(["queued", "running"]);

export function apiUrl(path, params = {}) {
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  return url;
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
    this.handled = false;
  }
}

let authFailed = () => {};
export function onAuthFailure(handler) { authFailed = handler; }

// FastAPI's detail is a string (the API's own errors) or a list of validation errors.
export function detailText(body, response) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => {
      const where = (item.loc || []).filter((part) => part !== "body").join(".");
      return where ? `${where}: ${item.msg}` : item.msg;
    }).join("; ");
  }
  return `the backup API answered ${response.status} ${response.statusText}`.trim();
}

// One API call. Resolves to {status, data} (or the Response with raw), rejects with ApiError;
// a 401/403 also hands the API's message to the auth-failure handler (which asks for a token again).
export async function api(method, path, { body, params, raw = false } = {}) {
  const secret = token.get();
  if (!secret) {
    const error = new ApiError(401, "Enter the API token first.");
    authFailed(error.message);
    error.handled = true;
    throw error;
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${secret}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method, headers, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach the backup API (${err.message})`);
  }
  if (raw && response.ok) return response;
  const data = await response.json().catch(() => null);
  if (response.ok) return { status: response.status, data };
  const error = new ApiError(response.status, detailText(data, response), data);
  if (response.status === 401 || response.status === 403) {
    authFailed(error.message);
    error.handled = true;
  }
  throw error;
}

// The alert region (role=alert) for what needs attention; the notice (role=status) for what went well.
export function showAlert(message, tone = "error") {
  const alert = document.getElementById("alert");
  alert.className = `alert ${tone}`;
  alert.textContent = message;
}
export function clearAlert() { showAlert("", ""); }
export function notice(message) { document.getElementById("notice").textContent = message; }
export function report(error) {
  if (!error.handled) showAlert(error.message);
}

// h("td", {class: "num"}, "text", childNode): a small element builder (no innerHTML anywhere).
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

export function badge(text, tone) { return h("span", { class: `badge ${tone || text}` }, text); }

export function humanBytes(bytes) {
  if (bytes === null || bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function humanSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  const [hours, minutes, secs] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  if (hours) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  return minutes ? `${minutes} min ${String(secs).padStart(2, "0")} s` : `${secs} s`;
}

// Local time, compact: the year only when it is not this year.
export function localTime(iso) {
  if (!iso) return "-";
  const when = new Date(iso);
  const format = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };
  if (when.getFullYear() !== new Date().getFullYear()) format.year = "numeric";
  return h("time", { datetime: iso, title: when.toString() }, when.toLocaleString(undefined, format));
}

export const shortId = (id) => String(id).slice(0, 8);
