// "Leave quickly": one click (or Escape twice) ends the session on the server and
// replaces this page with a neutral site, so Back does not bring it back.
// Without JavaScript the link itself does the same through /leave/.

import { markLeaving } from "./leaving.js";

const ESCAPE_WINDOW_MS = 1500;

function csrfToken() {
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  return input ? input.value : "";
}

export function leaveQuickly() {
  const link = document.querySelector("[data-quick-exit]");
  const neutral = document.querySelector('meta[name="quick-exit-url"]').content;
  markLeaving();
  document.documentElement.style.display = "none";
  // keepalive lets the sign-out request finish after this page is gone.
  fetch(link.getAttribute("href"), {
    method: "POST",
    credentials: "same-origin",
    keepalive: true,
    headers: { "X-CSRFToken": csrfToken() },
  }).catch(() => {});
  window.location.replace(neutral);
}

let lastEscape = 0;

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const now = Date.now();
  if (now - lastEscape <= ESCAPE_WINDOW_MS) {
    leaveQuickly();
  }
  lastEscape = now;
});

document.addEventListener("click", (event) => {
  const link = event.target.closest("[data-quick-exit]");
  if (!link) return;
  event.preventDefault();
  leaveQuickly();
});
