// Config bundles on the admin page: the versions (GET config), "Back up config now" (POST config/backup) and
// each bundle's download (still encrypted). No passphrase: a warning, and the button off with the reason.
import { api, apiUrl, clearAlert, h, humanBytes, localTime, notice, report, shortId, showAlert } from "./common.js";
import { copiesCell } from "./offsite.js";

const $ = (id) => document.getElementById(id);
const FILE_SETTING = "OPENWATCH_BACKUP_PASSPHRASE_FILE";
let hooks = { refresh: () => {}, onRun: () => {} };
let shown = ""; // what the table shows, so polling redraws it (and loses keyboard focus) only when it changed

// --- the state: passphrase, paths ------------------------------------------------------------------------

function renderState(config) {
  const on = config.passphrase_set;
  $("config-backup").disabled = !on;
  $("config-warning").hidden = on;
  if (!on) {
    $("config-warning").textContent = config.passphrase_source
      ? `Config bundles are off: ${config.passphrase_problem}`
      : `Config bundles are off: set ${FILE_SETTING} to a file (mode 600) holding the passphrase on its first line, `
        + "in the environment of the API and the worker. Until then .env, the TLS certificates and the SSH keys "
        + "are not backed up.";
  }
  $("config-state").textContent = on
    ? "Bundles of .env, the TLS certificates and the SSH keys, encrypted as the guide's openssl command does it. "
      + "Downloads stay encrypted: open them with the passphrase."
    : `Back up config now is off: ${config.passphrase_problem || `no passphrase is set (${FILE_SETTING})`}`;
  $("config-facts").hidden = false;
  $("config-paths").textContent = config.paths.length ? config.paths.join(", ") : "-";
  $("config-source").textContent = on ? `from ${config.passphrase_source}` : "not set";
}

// --- the versions ----------------------------------------------------------------------------------------

function verifyCell(version) {
  const verify = version.verify;
  if (!verify) return h("td", { class: "verify" }, h("span", { class: "badge skip" }, "not verified"));
  const text = verify.state === "failed" && verify.reason ? `failed: ${verify.reason}` : verify.state;
  return h("td", { class: "verify" },
    h("span", { class: `badge ${verify.state}`, title: verify.message || "" }, text), " ", localTime(verify.at));
}

function certificateItem(cert, warnDays) {
  const days = cert.days_left;
  const left = days === null ? "" : days < 0 ? ` (expired ${-days} days ago)` : ` (${days} days left)`;
  const expiry = cert.not_after ? `expires ${new Date(cert.not_after).toLocaleDateString()}${left}` : "no expiry";
  return h("li", { class: cert.expiring ? "expiring" : null, "data-expiring": String(cert.expiring),
    title: cert.member || "" },
  cert.expiring ? h("span", { class: "badge queued" }, days !== null && days < 0 ? "expired" : `< ${warnDays} days`)
    : null, `${cert.subject || "(no subject)"}: ${expiry}`);
}

function certificatesCell(version, warnDays) {
  const certs = version.certificates || [];
  return h("td", { class: "certificates" }, certs.length
    ? h("ul", { class: "certs" }, certs.map((cert) => certificateItem(cert, warnDays))) : "-");
}

function versionRow(version, warnDays) {
  const label = `Download config bundle ${shortId(version.run_id)}`;
  return h("tr", { "data-run-id": version.run_id },
    h("td", {}, localTime(version.finished_at || version.created_at),
      h("span", { class: "run-id" }, shortId(version.run_id))),
    h("td", { class: "num" }, humanBytes(version.size_bytes)),
    h("td", { class: "num" }, version.members === null ? "-" : String(version.members)),
    verifyCell(version),
    certificatesCell(version, warnDays),
    copiesCell(version),
    h("td", { class: "actions" }, version.present
      ? h("a", { href: apiUrl(`config/${version.run_id}/download`).href, class: "button-link", "aria-label": label,
        onclick: (event) => download(event, version) }, "Download")
      : h("span", { class: "muted" }, "pruned")));
}

function renderVersions(config) {
  const signature = JSON.stringify([config.versions, config.cert_warn_days]);
  if (signature === shown) return;
  shown = signature;
  $("config-versions").tBodies[0].replaceChildren(...config.versions.map((v) => versionRow(v, config.cert_warn_days)));
  $("config-versions").hidden = config.versions.length === 0;
  $("config-empty").hidden = config.versions.length > 0;
}

// Polled with the runs: the card says itself when GET config fails (the alert region is for actions).
export async function loadConfig() {
  try {
    const { data } = await api("GET", "config");
    renderState(data);
    renderVersions(data);
    $("config-error").hidden = true;
    return data;
  } catch (error) {
    if (!error.handled) {
      $("config-error").textContent = `The config bundles could not be loaded: ${error.message}`;
      $("config-error").hidden = false;
    }
    return null;
  }
}

// --- actions ---------------------------------------------------------------------------------------------

async function backupConfig() {
  clearAlert();
  try {
    const { data } = await api("POST", "config/backup");
    hooks.onRun(data);
    notice(`Config backup queued: run ${shortId(data.id)}.`);
  } catch (error) {
    const running = error.status === 409 && error.body && error.body.run;
    if (!running) {
      report(error);
      return;
    }
    hooks.onRun(running);
    showAlert(`${error.message}. It is highlighted in the runs table.`, "warn");
  }
  hooks.refresh();
  loadConfig();
}

// The token goes in a header, never in the address: fetch the bundle, then save it from a blob.
async function download(event, version) {
  event.preventDefault();
  clearAlert();
  try {
    const response = await api("GET", `config/${version.run_id}/download`, { raw: true });
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const name = match ? match[1] : `config-${shortId(version.run_id)}.tar.gz.enc`;
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    notice(`Downloaded ${name} (${humanBytes(response.headers.get("Content-Length"))}, still encrypted).`);
  } catch (error) {
    report(error);
  }
}

export function initConfig(given) {
  hooks = { ...hooks, ...given };
  $("config-backup").addEventListener("click", backupConfig);
}
