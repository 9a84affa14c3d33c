// Shared by the admin page's modules: API calls with the bearer token, the message regions, formatting.
// Every API address is relative to the page: the page is <prefix>/ui, the API <prefix>/runs, <prefix>/status...

const TOKEN_KEY = "openwatch-backup.api-token";
// Which login the page uses, set by the server on <html data-auth> from the router's auth: "openwatch" inside
// OpenWatch (the admin's own login), "token" standalone (a pasted OPENWATCH_BACKUP_API_TOKEN).
export const AUTH_MODE = document.documentElement.dataset.auth === "openwatch" ? "openwatch" : "token";

// The page's words for its login: inside OpenWatch the admin never handles an API token, so no message names one.
export const LOGIN_WORDS = AUTH_MODE === "openwatch"
  ? { refused: "your OpenWatch login was refused", first: "log in to OpenWatch first", waiting: () => "Loading..." }
  : { refused: "the API token was refused", first: "enter the API token first",
    waiting: (what) => `Enter the API token to see ${what}.` };

// A card's first words (index.html says "Loading..." in both modes): standalone, until a token is in use, they
// ask for it. data-waiting names what the card shows.
for (const el of document.querySelectorAll("[data-waiting]")) el.textContent = LOGIN_WORDS.waiting(el.dataset.waiting);
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

// Standalone: the pasted token, kept for this tab only. Inside OpenWatch: the login OpenWatch's React app keeps in
// localStorage (frontend/src/services/storage.ts: auth_token, refresh_token, session_expiry; same origin, as its
// nginx proxies /api/ to the backend). `stopped` says why the page stopped using that login ({reason, message}:
// "ended" when it cannot be renewed, "forbidden" when it lacks the permission): the page then sends nothing
// more until a new login appears (app.js listens for one).
const OW = { access: "auth_token", refresh: "refresh_token", user: "auth_user", expiry: "session_expiry" };
const REFRESH_URL = new URL("/api/auth/refresh", location.origin); // OpenWatch's tokenService.ts calls the same
let stopped = null;

export const token = AUTH_MODE === "openwatch" ? {
  get: () => (stopped ? "" : localStorage.getItem(OW.access) || ""),
  // OpenWatch's login belongs to OpenWatch: the page never writes one in, it only stops or resumes using it.
  clear: (why = { reason: "ended", message: "Your OpenWatch session has ended" }) => { stopped = why; },
  resume: () => { stopped = null; return Boolean(localStorage.getItem(OW.access)); },
  user: () => { try { return JSON.parse(localStorage.getItem(OW.user) || "null"); } catch { return null; } },
} : {
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

// The handler gets {reason, message}: reason "token" (standalone: ask for the token again), "ended" (OpenWatch's
// login cannot be renewed) or "forbidden" (logged in, but without the permission the backup API asks for).
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

function handled(error, reason) {
  if (AUTH_MODE === "openwatch") token.clear({ reason, message: error.message });
  authFailed({ reason, message: error.message });
  error.handled = true;
  return error;
}

// OpenWatch's refresh, as its tokenService.ts does it: POST {"refresh_token"} answers {"access_token",
// "expires_in"}; a 401/403 (or no refresh token, or an answer without a token) means logged out, and like
// OpenWatch's logout the stored login is cleared so OpenWatch's /login does not send the admin back to a
// dead session. Anything else (network, 5xx) is a passing failure: the request fails, the login stays.
async function renewLogin() {
  const refreshToken = localStorage.getItem(OW.refresh);
  if (!refreshToken) return false;
  let response;
  try {
    response = await fetch(REFRESH_URL, {
      method: "POST", cache: "no-store", credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach OpenWatch to renew your login (${err.message})`);
  }
  if (response.status === 401 || response.status === 403) return false;
  if (!response.ok) {
    throw new ApiError(response.status, `OpenWatch could not renew your login (${response.status}); `
      + "the page tries again at its next refresh");
  }
  const data = await response.json().catch(() => null);
  if (!data || typeof data.access_token !== "string" || !data.access_token) return false;
  localStorage.setItem(OW.access, data.access_token);
  if (Number.isFinite(data.expires_in) && data.expires_in > 0) {
    localStorage.setItem(OW.expiry, String(Date.now() + data.expires_in * 1000)); // as OpenWatch's authSlice
  }
  return true;
}

// Single flight: requests that fail together share one refresh.
let renewing = null;
function renewOnce() {
  if (!renewing) renewing = renewLogin().finally(() => { renewing = null; });
  return renewing;
}

// `forget`: OpenWatch itself refused the refresh, so its stored login goes too (OpenWatch's logout does the same).
function sessionEnded(forget) {
  if (forget) for (const key of Object.values(OW)) localStorage.removeItem(key);
  return handled(new ApiError(401, "Your OpenWatch session has ended"), "ended");
}

// The access token to retry with after a 401 for `sent`: one another request already renewed, or a renewed one.
async function renewedToken(sent) {
  const current = token.get();
  if (current && current !== sent) return current;
  if (stopped) throw handled(new ApiError(stopped.reason === "forbidden" ? 403 : 401, stopped.message), stopped.reason);
  if (!(await renewOnce())) throw sessionEnded(true);
  return token.get();
}

async function send(method, path, { body, params }, secret) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${secret}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(apiUrl(path, params), {
      method, headers, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach the backup API (${err.message})`);
  }
}

// One API call. Resolves to {status, data} (or the Response with raw), rejects with ApiError;
// a 401/403 also goes to the auth-failure handler. Inside OpenWatch a 401 first renews the login (once) and
// retries the call once with the new access token.
export async function api(method, path, options = {}) {
  const openwatch = AUTH_MODE === "openwatch";
  let secret = token.get();
  if (!secret && !openwatch) throw handled(new ApiError(401, "Enter the API token first."), "token");
  if (!secret) secret = await renewedToken("");
  let response = await send(method, path, options, secret);
  if (openwatch && response.status === 401) response = await send(method, path, options, await renewedToken(secret));
  if (options.raw && response.ok) return response;
  const data = await response.json().catch(() => null);
  if (response.ok) return { status: response.status, data };
  const error = new ApiError(response.status, detailText(data, response), data);
  if (response.status === 401) throw openwatch ? sessionEnded(false) : handled(error, "token");
  if (response.status === 403) throw handled(error, openwatch ? "forbidden" : "token");
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
