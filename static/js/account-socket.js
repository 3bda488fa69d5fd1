// Keeps one quiet socket open on signed-in pages. When the person is signed out
// anywhere (sign out everywhere, password change, Leave quickly on another tab, the
// session timing out), the server closes it and this tab leaves the page at once,
// unless the page says it will tell the person itself (the meeting room does, so
// that what they were typing is kept). A refused socket says why: the page shows it
// in words and stops trying. A "notice" frame (a request for the person's consent,
// information shared about them) is shown at the top of the page with a link to read it;
// its words never name a group or what was shared.

import { clearDeviceKeys } from "./device-store.js";
import { leaving } from "./leaving.js";

const SIGNED_OUT = 4001;
const NOT_ALLOWED = 4003;
let delay = 1000;

function showNotice(text) {
  const main = document.getElementById("main");
  if (!main || document.getElementById("account-notice")) return;
  const notice = document.createElement("p");
  notice.id = "account-notice";
  notice.className = "notice";
  notice.setAttribute("role", "alert");
  notice.textContent = text + " ";
  const link = document.createElement("a");
  link.href = `/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`;
  link.textContent = "Sign in again";
  notice.append(link);
  main.prepend(notice);
}

function showPersonalNotice(frame) {
  const main = document.getElementById("main");
  if (!main || typeof frame.text !== "string") return;
  // Only a link to one of our own pages: the server builds it, but never trust a URL blindly.
  const url = typeof frame.url === "string" && frame.url.startsWith("/") && !frame.url.startsWith("//") ? frame.url : "/account/";
  let notice = document.getElementById("personal-notice");
  if (!notice) {
    notice = document.createElement("p");
    notice.id = "personal-notice";
    notice.className = "notice";
    notice.setAttribute("role", "status");
    main.prepend(notice);
  }
  notice.textContent = frame.text + " ";
  const link = document.createElement("a");
  link.href = url;
  link.textContent = "Read it";
  notice.append(link);
}

function signedOut(reason) {
  // The session is over: the meeting device keys made for it are no use to anyone now.
  clearDeviceKeys();
  // After "Leave quickly" the page is already on its way to the neutral site: the
  // server's sign-out notice must not bring it back to our sign-in page.
  if (leaving()) return;
  const event = new CustomEvent("sg:signed-out", { cancelable: true, detail: { reason } });
  if (document.dispatchEvent(event)) window.location.replace("/accounts/login/");
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/account/`);
  let refused = false;
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
    if (frame.type === "signed_out") signedOut(frame.reason);
    if (frame.type === "notice") showPersonalNotice(frame);
    if (frame.type === "refused") {
      refused = true;
      if (!leaving()) showNotice(frame.message);
    }
  });
  socket.addEventListener("close", (event) => {
    if (refused || event.code === SIGNED_OUT || event.code === NOT_ALLOWED) return;
    window.setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

connect();
