// Shows server times in the reader's own time zone, and tells forms which zone the
// person typed a time in. Without JavaScript the server's rendering (with its zone) stays.

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

for (const element of document.querySelectorAll("time[data-local]")) {
  const when = new Date(element.dateTime);
  if (Number.isNaN(when.getTime())) continue;
  element.textContent = ("timeOnly" in element.dataset ? timeOnly : dateTime).format(when);
}

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
for (const field of document.querySelectorAll('[data-timezone-form] input[name="timezone"]')) {
  field.value = zone;
}
