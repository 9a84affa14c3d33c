// Phones (issue 14 item 7): under 600 px app.css lays each row of a data table out as a card, and a card's cells
// need their column's name. Each cell gets a data-label from its table's header, here in one place rather than in
// every module that builds rows (they redraw rows while polling, and new columns come with new features).
const TABLES = "main table.data, dialog table.data.cards";

function labelRows(table) {
  const headers = [...(table.tHead ? table.tHead.rows[0].cells : [])].map((th) => th.textContent.trim());
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      [...row.cells].forEach((cell, i) => {
        if (!cell.hasAttribute("data-label") && headers[i]) cell.setAttribute("data-label", headers[i]);
      });
    }
  }
}

function labelAll() {
  for (const table of document.querySelectorAll(TABLES)) {
    table.classList.add("cards");
    labelRows(table);
  }
}

// Rows come and go on every poll: label whatever was added (a label already set, e.g. by backups.js, is kept).
export function initCards() {
  labelAll();
  new MutationObserver(labelAll).observe(document.body, { childList: true, subtree: true });
}
