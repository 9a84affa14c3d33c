// Keyboard focus across a table's redraw (issue 14). Polling redraws rows every 2-15 s; a keyboard user on a
// row's link or button (Details, Verify, Restore, Log, Copies, Download) would lose focus when its element is
// replaced. So: remember the focused control's row (tr[data-run-id]), its role and its accessible name; redraw;
// if the control itself was replaced, focus the one with the same role and name in the redrawn row.

const CONTROLS = "a[href], button, input, select, textarea, [tabindex]";

const nameOf = (el) => (el.getAttribute("aria-label") || el.textContent || "").trim();
const roleOf = (el) => el.getAttribute("role") || el.tagName;

// Runs redraw(); focus inside table stays on the same control, or moves to its twin in the redrawn row.
export function keepFocus(table, redraw) {
  const active = document.activeElement;
  const row = active && active !== document.body && table.contains(active) ? active.closest("tr[data-run-id]") : null;
  if (!row) return redraw();
  const before = { runId: row.dataset.runId, role: roleOf(active), name: nameOf(active) };
  const result = redraw();
  if (active.isConnected && document.activeElement === active) return result; // kept in place: nothing to do
  const again = [...table.querySelectorAll("tr[data-run-id]")].find((tr) => tr.dataset.runId === before.runId);
  const twin = again && [...again.querySelectorAll(CONTROLS)]
    .find((el) => roleOf(el) === before.role && nameOf(el) === before.name && !el.disabled);
  if (twin && (document.activeElement === document.body || document.activeElement === null)) {
    twin.focus({ preventScroll: true });
  }
  return result;
}
