// Keyboards (issue 14 item 7): Esc closes the inline panels as it closes the dialogs (those close themselves), and
// the skip link moves focus past the tables without putting its target in the address (details.js reads it).
const $ = (id) => document.getElementById(id);
const PANELS = [["log-panel", "log-close"], ["copies-panel", "copies-close"]];

// The panel's own close button does the closing, so focus goes back to the button that opened it.
function onEscape(event) {
  if (event.key !== "Escape" || event.defaultPrevented || document.querySelector("dialog[open]")) return;
  const focus = document.activeElement;
  const open = PANELS.filter(([panel]) => $(panel) && !$(panel).hidden);
  // Focus inside a panel closes that one; focus nowhere (a click on the log's text) closes the open ones.
  const inside = open.filter(([panel]) => $(panel).contains(focus));
  const closing = inside.length ? inside : (focus === document.body || !focus ? open : []);
  closing.forEach(([, button]) => $(button).click());
  if (closing.length) event.preventDefault();
}

function skip(event) {
  const target = document.getElementById(event.currentTarget.hash.slice(1));
  if (!target) return;
  event.preventDefault();
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus();
  target.scrollIntoView({ block: "start" });
}

export function initKeys() {
  document.addEventListener("keydown", onEscape);
  document.querySelectorAll("a.skip-link").forEach((link) => link.addEventListener("click", skip));
}
