// A form sent back with mistakes: move focus to its error summary, so a screen reader reads
// it at once and a keyboard user starts from it, and say "Error:" first in the title (the
// server does this for a view's `form`; this covers forms under other names).

const summary = document.querySelector("[data-error-summary]");
if (summary) {
  if (!document.title.startsWith("Error: ")) document.title = `Error: ${document.title}`;
  summary.focus();
  // A link in the summary moves focus to its field (the browser would only scroll to it).
  summary.addEventListener("click", (event) => {
    const link = event.target.closest('a[href^="#"]');
    const field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
  });
}
