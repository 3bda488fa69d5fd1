// "Leave quickly": one click (or Escape twice) ends the session on the server and
// replaces this page with a neutral site, so Back does not bring it back.
// Without JavaScript the link itself does the same through /leave/.

import { clearDeviceKeys } from "./device-store.js";
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
  // The meeting device keys go too (a moment at most: the page is already hidden).
  clearDeviceKeys().then(() => window.location.replace(neutral));
}

let lastEscape = 0;

// Escape first closes whatever is open; only presses with nothing open count toward
// leaving. A form or control that closes itself on Escape calls preventDefault() (the
// room's Report, Hide and Mute forms); an open <dialog> or disclosure (a button with
// aria-expanded="true", such as the phone menu) is closed here.
function closeWhatIsOpen() {
  const dialog = [...document.querySelectorAll("dialog[open]")].pop();
  if (dialog) {
    dialog.close();
    return true;
  }
  const disclosure = [...document.querySelectorAll('[aria-expanded="true"][aria-controls]')].pop();
  if (disclosure) {
    disclosure.click();
    disclosure.focus();
    return true;
  }
  return false;
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  if (event.defaultPrevented || closeWhatIsOpen()) {
    event.preventDefault();
    lastEscape = 0;
    return;
  }
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

// Signing out with the site's Sign out buttons deletes this browser's meeting device
// keys first (signing out elsewhere does it through account-socket.js).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
  if (new URL(form.action, window.location.href).pathname !== "/accounts/logout/") return;
  event.preventDefault();
  clearDeviceKeys().then(() => form.submit());
});
