// Whether this tab is in the middle of "Leave quickly". Other scripts check it so that
// nothing (a socket's sign-out notice, a reconnect) pulls the tab back to the app.

let leavingNow = false;

export function markLeaving() {
  leavingNow = true;
  try {
    // Read by quick-exit-guard.js if Back later lands on one of our pages.
    window.sessionStorage.setItem("sg-left", "1");
  } catch {
    // Storage may be disabled; the server-side sign-out still happens.
  }
}

export function leaving() {
  return leavingNow;
}
