// Every time on every page in one convention (issue 21): the reader's own zone, with that
// zone's name, and the exact UTC instant on hover (the server puts it in `datetime` and
// `title`). Without JavaScript the server's rendering, in UTC and labelled so, stays. Also
// tells forms which zone the person typed a time in.

const withZone = { timeZoneName: "short" };
const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
  ...withZone,
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", ...withZone });
const dateOnly = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

function formatterFor(element) {
  if ("timeOnly" in element.dataset) return timeOnly;
  if ("dateOnly" in element.dataset) return dateOnly;
  return dateTime;
}

// Also for HTML a page adds later (the board's live notices).
export function showLocalTimes(root) {
  for (const element of root.querySelectorAll("time[data-local]")) {
    const when = new Date(element.dateTime);
    if (Number.isNaN(when.getTime())) continue;
    element.textContent = formatterFor(element).format(when);
    if (!element.title) element.title = `${when.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }
}

showLocalTimes(document);

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
for (const field of document.querySelectorAll('[data-timezone-form] input[name="timezone"]')) {
  field.value = zone;
}
// Where a page names the reader's zone in words ("times are in your zone: Europe/Paris").
for (const element of document.querySelectorAll("[data-reader-zone]")) {
  element.textContent = zone;
}
