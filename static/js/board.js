// The board, live: while a board's list or a thread is open, new threads and replies
// appear without a reload (board/consumers.py describes the frames). Only an
// improvement: reading and writing are plain pages and forms that work without it.
//
// The server sends each change as the page's own HTML (its templates, escaped there),
// after checking again that this reader may still see it. What could be missed while
// the socket was down is fetched again from the page itself on reconnecting.

import { leaving } from "./leaving.js";
import { showLocalTimes } from "./local-time.js";

const list = document.getElementById("board-threads");
const posts = document.getElementById("board-posts");
const root = list || posts;
const statusLine = document.getElementById("board-status");

const SIGNED_OUT = 4001;
const NOT_ALLOWED = 4003;
const MEMBERSHIP_CHANGED = 4005;

let socket = null;
let reconnectDelay = 1000;
let heartbeat = null;
let finished = false;
let connectedBefore = false;
let unreadMark = 0; // the last post shown while the page was hidden, to report once seen
let mayPost = true; // not muted (the server's hello and status say)
let mayReply = true; // the thread takes replies now (its thread_changed says)

function fromHtml(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  showLocalTimes(template.content);
  return template.content.firstElementChild;
}

function say(text) {
  if (statusLine) statusLine.textContent = text;
}

// The forms and links to write: shown only while the person may post and, for the reply
// form, while the thread takes replies. (The server refuses either way.)
function showWriteControls() {
  for (const control of document.querySelectorAll("[data-board-write]")) {
    control.hidden = finished || !mayPost || (control.id === "board-reply" && !mayReply);
  }
}

// --- the list of threads ----------------------------------------------------------------------

function placeThread(frame) {
  const item = fromHtml(frame.html);
  document.getElementById(`thread-${frame.thread}`)?.remove();
  // Only the first page shows the newest threads; an older page just loses a thread that
  // moved up to the first.
  if (!("live" in list.dataset)) return;
  document.getElementById("board-empty")?.remove();
  // Pinned threads first, then the newest: a pinned one goes on top, another one after
  // the pinned ones.
  const pinned = list.querySelectorAll("li[data-pinned]");
  if (frame.pinned || pinned.length === 0) list.prepend(item);
  else pinned[pinned.length - 1].after(item);
  const title = item.querySelector("a")?.textContent.trim() || "";
  say(`Updated just now: ${title}`);
}

// A thread's item changed where it stands (a post lost its text): replaced in place, so
// the list does not reorder and nothing says it was updated. A page without it is left.
function updateThread(frame) {
  document.getElementById(`thread-${frame.thread}`)?.replaceWith(fromHtml(frame.html));
}

// --- a thread ---------------------------------------------------------------------------------

function showPost(frame) {
  if (document.getElementById(`post-${frame.post}`)) return;
  // A page that does not reach the thread's end shows "Later posts" instead.
  if (!("live" in posts.dataset)) return;
  const item = fromHtml(frame.html);
  posts.append(item);
  const author = item.querySelector(".board-post__meta strong")?.textContent || "Someone";
  say(`New reply from ${author}.`);
  markRead(frame.post);
}

function changePost(frame) {
  document.getElementById(`post-${frame.post}`)?.replaceWith(fromHtml(frame.html));
  if (frame.post === 1 && frame.title !== undefined) {
    document.querySelector("h1").innerHTML = frame.title;
  }
}

// Posts the group's retention deleted: they leave the page (a reload would not show them).
function removePosts(frame) {
  for (const number of frame.posts) document.getElementById(`post-${number}`)?.remove();
  if (frame.title !== undefined) document.querySelector("h1").innerHTML = frame.title;
}

function changeThread(frame) {
  document.querySelector("h1").innerHTML = frame.title;
  const state = document.getElementById("thread-state");
  if (state) state.innerHTML = frame.state;
  const form = document.getElementById("board-reply");
  let notice = document.getElementById("board-no-reply");
  mayReply = frame.may_reply;
  showWriteControls();
  if (!frame.may_reply && !notice && form) {
    notice = document.createElement("p");
    notice.id = "board-no-reply";
    form.after(notice);
  }
  if (notice) {
    notice.hidden = frame.may_reply && Boolean(form);
    notice.textContent = frame.may_reply
      ? "This thread takes replies again: reload the page to write one."
      : frame.no_reply;
  }
}

function markRead(number) {
  if (document.visibilityState === "visible") sendFrame({ type: "read", post: number });
  else unreadMark = Math.max(unreadMark, number);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && unreadMark) {
    sendFrame({ type: "read", post: unreadMark });
    unreadMark = 0;
  }
});

// --- the reader's standing --------------------------------------------------------------------

// Muted (with the page's notice, its time in the reader's zone) or free to post again
// (the muted notice goes).
function setMayPost(frame) {
  mayPost = frame.may_post;
  showWriteControls();
  const shown = document.getElementById("board-muted");
  if (frame.may_post || !frame.notice) {
    if (shown && frame.may_post) shown.hidden = true;
    say(frame.message);
    return;
  }
  const notice = fromHtml(frame.notice);
  showLocalTimes(notice);
  shown?.replaceWith(notice);
  say(notice.textContent);
}

function stop(message) {
  finished = true;
  showWriteControls();
  if (!message || leaving()) return;
  const notice = document.createElement("p");
  notice.className = "notice";
  notice.setAttribute("role", "alert");
  notice.textContent = message;
  root.before(notice);
}

// --- after a reconnect: what the page would show now -------------------------------------------

async function catchUp() {
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(root.id);
    if (fresh) root.replaceChildren(...fresh.children);
  } catch {
    // Offline again: the next reconnect tries again.
  }
}

// --- the socket -------------------------------------------------------------------------------

function sendFrame(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function onFrame(frame) {
  switch (frame.type) {
    case "hello":
      reconnectDelay = 1000;
      mayPost = frame.may_post;
      clearInterval(heartbeat);
      heartbeat = setInterval(
        () => sendFrame({ type: "ping", visible: document.visibilityState === "visible" }),
        frame.heartbeat_seconds * 1000,
      );
      if (connectedBefore) catchUp();
      connectedBefore = true;
      break;
    case "thread":
      if (list) placeThread(frame);
      break;
    case "thread_updated":
      if (list) updateThread(frame);
      break;
    case "post":
      if (posts) showPost(frame);
      break;
    case "post_changed":
      if (posts) changePost(frame);
      break;
    case "posts_removed":
      if (posts) removePosts(frame);
      break;
    case "thread_removed":
      if (list) document.getElementById(`thread-${frame.thread}`)?.remove();
      break;
    case "thread_changed":
      if (posts) changeThread(frame);
      break;
    case "status":
      setMayPost(frame);
      break;
    case "closed":
    case "refused":
      stop(frame.message);
      break;
    case "signed_out":
      // The account socket takes the page to the sign-in page (account-socket.js).
      finished = true;
      break;
    default:
      break; // pong, error: nothing to show
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socket}`);
  socket.addEventListener("message", (event) => {
    try {
      onFrame(JSON.parse(event.data));
    } catch {
      // Not a frame of ours: ignored.
    }
  });
  socket.addEventListener("close", (event) => {
    clearInterval(heartbeat);
    if (finished || leaving()) return;
    if ([SIGNED_OUT, NOT_ALLOWED, MEMBERSHIP_CHANGED].includes(event.code)) return;
    window.setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 30000);
  });
}

if (root && root.dataset.socket) connect();
