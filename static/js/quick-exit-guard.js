// Classic (blocking) script in <head>: runs before the page is drawn.
// After "Leave quickly" this tab remembers it left; if the person (or someone else)
// then presses Back or Forward onto a page of this site, replace it with the neutral
// site before anything is shown. A fresh visit (typing the address, a link) clears it.
// Scripts run here: the phone header folds its links behind a Menu button (site.css).
document.documentElement.classList.add("js");
(function () {
  "use strict";
  var KEY = "sg-left";
  var meta = document.querySelector('meta[name="quick-exit-url"]');
  var neutral = meta && meta.content;
  var left = false;
  try { left = window.sessionStorage.getItem(KEY) === "1"; } catch (e) { /* storage off */ }
  if (!left || !neutral) { return; }
  var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
  if (nav && nav.type === "back_forward") {
    document.documentElement.style.display = "none";
    window.location.replace(neutral);
    return;
  }
  try { window.sessionStorage.removeItem(KEY); } catch (e) { /* storage off */ }
})();
// A page restored from the back-forward cache does not rerun scripts: catch it here.
window.addEventListener("pageshow", function (event) {
  "use strict";
  var meta = document.querySelector('meta[name="quick-exit-url"]');
  var left = false;
  try { left = window.sessionStorage.getItem("sg-left") === "1"; } catch (e) { /* storage off */ }
  if (event.persisted && left && meta) {
    document.documentElement.style.display = "none";
    window.location.replace(meta.content);
  }
});
