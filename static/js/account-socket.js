// Keeps one quiet socket open on signed-in pages. When the person is signed out
// anywhere (sign out everywhere, password change, Leave quickly on another tab),
// the server closes it and this tab leaves the page at once.

import { leaving } from "./leaving.js";

const SIGNED_OUT = 4001;
const NOT_ALLOWED = 4003;
let delay = 1000;

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/account/`);
  socket.addEventListener("open", () => {
    delay = 1000;
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    // After "Leave quickly" the page is already on its way to the neutral site: the
    // server's sign-out notice must not bring it back to our sign-in page.
    if (frame.type === "signed_out" && !leaving()) {
      window.location.replace("/accounts/login/");
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === SIGNED_OUT || event.code === NOT_ALLOWED) return;
    window.setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

connect();
