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

// Also for what a page adds later (board.js: a reply arriving live), so it reads like the rest.
export function showLocalTimes(root = document) {
  for (const element of root.querySelectorAll("time[data-local]")) {
    const when = new Date(element.dateTime);
    if (Number.isNaN(when.getTime())) continue;
    element.textContent = formatterFor(element).format(when);
    if (!element.title) element.title = `${when.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }
}

showLocalTimes();

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
for (const field of document.querySelectorAll('[data-timezone-form] input[name="timezone"]')) {
  field.value = zone;
}
// A suggested time ("now", in `data-instant`) shown as this zone's clock time, the zone the
// form is sent in (the server wrote it in the site's zone).
const twoDigits = (n) => String(n).padStart(2, "0");
for (const input of document.querySelectorAll('[data-timezone-form] input[type="datetime-local"][data-instant]')) {
  const when = new Date(input.dataset.instant);
  if (Number.isNaN(when.getTime())) continue;
  input.value = `${when.getFullYear()}-${twoDigits(when.getMonth() + 1)}-${twoDigits(when.getDate())}` +
    `T${twoDigits(when.getHours())}:${twoDigits(when.getMinutes())}`;
}
// Where a page names the reader's zone in words ("times are in your zone: Europe/Paris").
for (const element of document.querySelectorAll("[data-reader-zone]")) {
  element.textContent = zone;
}
