// The live room. Protocol: meetings/PROTOCOL.md.
//
// The server numbers every message (seq) after saving it. This page renders messages
// strictly in seq order: older or repeated ones are ignored, a gap asks the server to
// resume from the last one shown. Messages being sent wait in an outbox kept in
// sessionStorage with their client id, so a reload, a lost connection or signing in
// again resends them and the server stores each once.
//
// Opening the room shows the latest messages (history), with earlier ones on demand;
// after that, a reconnect replays everything after the last one shown (resume), page
// by page until the server says nothing more follows.
//
// In an end-to-end encrypted meeting (data-e2ee, and the server's hello says so) the
// keys are room-e2ee.js's: messages are sealed when they are (re)sent, and read
// (verified, decrypted, their commitment checked) before they take their place; the
// frames of one socket are then handled one after another, in order, each waiting for
// its cryptography.

import { clearDeviceKeys, storageAvailable } from "./device-store.js";
import { cryptoAvailable } from "./e2ee.js";
import { leaving } from "./leaving.js";
import { EncryptedRoom } from "./room-e2ee.js";

const room = document.getElementById("room");
const chat = document.getElementById("chat");
const announcer = document.getElementById("chat-announcer");
const statusLine = document.getElementById("room-status");
const presentList = document.getElementById("present");
const composer = document.getElementById("composer");
const input = document.getElementById("composer-body");
const sendButton = document.getElementById("composer-send");
const composerError = document.getElementById("composer-error");
const myName = document.getElementById("my-name");
const announcement = document.getElementById("announcement");
const earlierButton = document.getElementById("show-earlier");
const lockedLine = document.getElementById("room-locked");

const meetingId = room.dataset.meeting;
// Per membership too: someone else signing in on this tab never sends these.
const OUTBOX_KEY = `sg-outbox-${meetingId}-${room.dataset.member}`;
const HISTORY_PAGE = 50;
const SIGNED_OUT = 4001;
const NOT_ALLOWED = 4003;
const ROOM_CLOSED = 4004;
const MEMBERSHIP_CHANGED = 4005;

let socket = null;
let lastSeq = 0;
let helloLastSeq = 0;
let resuming = false;
let loaded = false; // the latest messages were shown once: from now on, resume
let loadingLatest = false;
let oldestShown = null; // seq of the first message on screen, for "Show earlier messages"
let loadingEarlier = false;
let lastError = null; // a refusal that comes just before the server closes the socket
let reconnectDelay = 1000;
let heartbeat = null;
let finished = false;
let canSend = false;
let isFacilitator = false;
let guidelines = [];
// The server's limit, from its hello. Checked here instead of with the box's maxlength,
// which would cut a pasted message off without a word.
let maxLength = 2000;
const early = new Map(); // seq -> frame that arrived before the ones before it

// End-to-end encryption (room-e2ee.js): only where the template says the meeting has it.
const encrypted = room.dataset.e2ee === "1";
let keys = null; // the EncryptedRoom, once IndexedDB opened
let keysReady = false; // this connection's device, keys and sending chain are set up
let inbox = Promise.resolve(); // frames of an encrypted room, one at a time
const readable = new Map(); // seq -> {body, frankingKey}: what a report sends
const unreadable = new Map(); // seq -> frame shown as "before you joined" or "could not be unlocked"
let presentNames = [];

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

// --- outbox -------------------------------------------------------------------------------

function loadOutbox() {
  try {
    return JSON.parse(window.sessionStorage.getItem(OUTBOX_KEY) || "[]");
  } catch {
    return [];
  }
}

function saveOutbox(items) {
  try {
    window.sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(items));
  } catch {
    // Storage full or disabled: sending still works, only reload-safety is lost.
  }
}

function newClientId() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function pendingElement(clientId) {
  return chat.querySelector(`li[data-client-id="${clientId}"][data-pending]`);
}

function showPending(item) {
  if (pendingElement(item.client_id)) return;
  const li = renderMessage({ author: myName.textContent, body: item.body, mine: true });
  li.dataset.clientId = item.client_id;
  li.dataset.pending = "1";
  li.querySelector(".chat__meta").append(" · sending…");
  chat.append(li);
  offerTabStop(li);
  scrollDown();
}

function sendItem(item) {
  if (encrypted) {
    sendSealed(item);
    return;
  }
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "send", client_id: item.client_id, body: item.body }));
  }
}

// Sealed now, with the next index of this device's chain: a message resent after a
// reconnect is sealed again (the server keeps the first copy it stored).
function sendSealed(item) {
  if (!keysReady) return; // sent from the outbox once the keys are set up
  const sending = socket;
  keys.seal(item).then(
    (e2ee) => {
      if (sending === socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "send", client_id: item.client_id, e2ee }));
      }
    },
    () => {}, // the connection changed meanwhile: the outbox sends it after the reconnect
  );
}

function sendFrame(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

// --- rendering ------------------------------------------------------------------------------

// What an encrypted message shows when it cannot be read: in words, never its ciphertext.
const UNREAD_TEXT = {
  before: "Sent before you joined this meeting in this browser, so it cannot be read here.",
  locked: "This message could not be unlocked in this browser.",
  unverified: "This message could not be verified, so it is not shown. It may have been changed on its way.",
};

// Author and text as this page shows them: in an encrypted room, what room-e2ee.js read.
function seen(frame) {
  const view = frame.view;
  if (!view) return { author: frame.author, body: frame.body, kind: frame.hidden ? "hidden" : "ok" };
  if (view.kind === "ok") return { author: view.author, body: view.body, kind: "ok" };
  if (view.kind === "hidden") return { author: view.author, body: null, kind: "hidden" };
  if (view.kind === "removed") return { author: frame.author, body: "[removed]", kind: "ok" };
  // A message whose signature fails is never shown under the name it claims.
  const author = view.kind === "unverified" ? "Could not be verified" : view.author;
  return { author, body: UNREAD_TEXT[view.kind], kind: view.kind };
}

function renderMessage(frame) {
  const shown = seen(frame);
  const li = document.createElement("li");
  li.className = "chat__message" + (frame.mine ? " chat__message--mine" : "");
  // One Tab stop for the whole list (see "keyboard" below): messages are reached with
  // the arrow keys.
  li.tabIndex = -1;
  const meta = document.createElement("p");
  meta.className = "chat__meta";
  const author = document.createElement("strong");
  author.textContent = shown.author;
  meta.append(author);
  if (frame.sent_at) {
    const time = document.createElement("time");
    time.dateTime = frame.sent_at;
    time.textContent = timeFormat.format(new Date(frame.sent_at));
    meta.append(" ", time);
  }
  const body = document.createElement("p");
  body.className = "chat__body";
  if (shown.kind === "hidden") {
    body.classList.add("chat__body--hidden");
    body.textContent = "Hidden by a facilitator.";
  } else if (shown.kind !== "ok") {
    body.classList.add(`chat__body--${shown.kind}`);
    body.textContent = shown.body;
    li.dataset.unread = shown.kind;
  } else {
    body.textContent = shown.body; // text only: markup in messages is never interpreted
  }
  li.append(meta, body);
  if (frame.seq) li.append(messageActions(frame, shown.kind));
  return li;
}

// --- reports and facilitator controls -------------------------------------------------------

function messageActions(frame, kind = "ok") {
  const actions = document.createElement("div");
  actions.className = "chat__actions";
  const add = (label, kind) => {
    const button = document.createElement("button");
    button.type = "button";
    button.tabIndex = -1; // reached with the arrow keys from its message
    button.className = "link-button";
    button.textContent = label;
    button.dataset.kind = kind;
    button.dataset.seq = String(frame.seq);
    actions.append(button);
  };
  // A hidden message has nothing left to report; one this member reported says so,
  // also after a reload (the server tells, PROTOCOL.md).
  // In an encrypted room only what was read can be reported: the report proves it with
  // the message's franking key.
  if (!frame.mine && frame.reported) actions.append(reportedMark());
  else if (!frame.mine && !frame.hidden && kind === "ok") add("Report", "report");
  if (isFacilitator && !frame.hidden) add("Hide", "hide");
  if (isFacilitator && !frame.mine) {
    add("Mute author", "mute");
    add("Remove author", "remove");
  }
  return actions;
}

function reportedMark() {
  const done = document.createElement("span");
  done.className = "muted";
  done.textContent = "Reported";
  return done;
}

function guidelineSelect() {
  const select = document.createElement("select");
  select.name = "guideline";
  select.required = true;
  const blank = document.createElement("option");
  blank.value = "";
  blank.textContent = "Which guideline?";
  select.append(blank);
  for (const rule of guidelines) {
    const option = document.createElement("option");
    option.value = String(rule.number);
    option.textContent = `Rule ${rule.number}: ${rule.text}`;
    select.append(option);
  }
  return select;
}

function labelled(text, control) {
  const label = document.createElement("label");
  label.textContent = text;
  label.append(control);
  return label;
}

const ACTION_TITLES = {
  report: "Report this message to the facilitators",
  hide: "Hide this message for everyone",
  mute: "Mute the author (they can still read)",
  remove: "Remove the author from the group",
};

function openActionForm(button) {
  const li = button.closest("li");
  li.querySelector(".chat__form")?.remove();
  const { kind, seq } = button.dataset;
  const form = document.createElement("form");
  form.className = "chat__form";
  form.noValidate = true; // (its own words for a missing guideline, below)
  const title = document.createElement("p");
  title.textContent = ACTION_TITLES[kind];
  form.append(title);
  if (kind === "report") {
    // Who reads a report, before a member writes one (the board's report page says it too).
    const who = document.createElement("p");
    who.className = "chat__form-note";
    who.textContent = "Only the group's facilitators see your report, with your name in this group.";
    form.append(who);
  }
  const select = guidelineSelect();
  const note = document.createElement("input");
  note.name = "note";
  note.maxLength = 1000;
  // Sending with no guideline chosen says why nothing happened.
  const missing = document.createElement("p");
  missing.className = "chat__form-error";
  missing.id = `guideline-missing-${seq}`;
  missing.setAttribute("role", "alert");
  select.addEventListener("change", () => {
    missing.textContent = "";
    select.removeAttribute("aria-invalid");
  });
  form.append(labelled("Guideline ", select), missing);
  let minutes = null;
  if (kind === "mute") {
    minutes = document.createElement("select");
    for (const [value, text] of [["10", "10 minutes"], ["60", "1 hour"], ["1440", "1 day"]]) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      minutes.append(option);
    }
    form.append(labelled("For ", minutes));
  }
  form.append(labelled(kind === "report" ? "Note (optional) " : "Reason the member will read ", note));
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.textContent = kind === "report" ? "Send report" : "Confirm";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "button--secondary";
  cancel.textContent = "Cancel";
  const close = () => {
    form.remove();
    li.focus();
  };
  cancel.addEventListener("click", close);
  // Escape closes the form (and is not counted toward "Leave quickly", quick-exit.js).
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  form.append(submit, " ", cancel);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!select.value) {
      missing.textContent = "Choose the guideline it breaks.";
      select.setAttribute("aria-invalid", "true");
      select.setAttribute("aria-describedby", missing.id);
      select.focus();
      return;
    }
    const frame = kind === "report"
      ? reportFrame(Number(seq), Number(select.value), note.value)
      : {
          type: "moderate", action: kind, seq: Number(seq), guideline: Number(select.value),
          reason: note.value, minutes: minutes ? Number(minutes.value) : null,
        };
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    close();
  });
  li.append(form);
  // The whole form in view inside the message list (its Send button too, not only the
  // guideline the focus goes to), also when it opens on the last message; where the list
  // is shorter than the form (a laptop's 720 px), its end, with the guideline and Send.
  const fits = form.offsetHeight <= chat.clientHeight;
  form.scrollIntoView({ block: fits ? "nearest" : "end" });
  select.focus({ preventScroll: true });
}

// A report in an encrypted room carries what this page read and the message's franking
// key: the server checks them against the commitment it stored before a facilitator sees it.
function reportFrame(seq, guideline, note) {
  const frame = { type: "report", seq, guideline, note };
  const text = readable.get(seq);
  if (encrypted && text) {
    frame.plaintext = text.body;
    frame.franking_key = text.frankingKey;
  }
  return frame;
}

chat.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-kind]");
  if (button) openActionForm(button);
});

// --- keyboard: one Tab stop for the list --------------------------------------------------
// A roving tabindex: the list is one Tab stop (the message last focused, else the newest),
// Up/Down/Home/End move between messages, Right/Left between the focused message's
// actions (Report, Hide, ...), so the message box is a few Tabs away however long the
// meeting.

function messages() {
  return [...chat.querySelectorAll(":scope > li")];
}

function makeTabStop(li) {
  for (const other of chat.querySelectorAll(':scope > li[tabindex="0"]')) other.tabIndex = -1;
  li.tabIndex = 0;
}

// A new message becomes the Tab stop unless the person is moving around the list.
function offerTabStop(li) {
  if (!chat.contains(document.activeElement) || !chat.querySelector(':scope > li[tabindex="0"]')) {
    makeTabStop(li);
  }
}

chat.addEventListener("focusin", (event) => {
  const li = event.target.closest("#chat > li");
  if (li) makeTabStop(li);
});

chat.addEventListener("keydown", (event) => {
  if (event.target.closest(".chat__form")) return; // typing in a report or moderation form
  const li = event.target.closest("#chat > li");
  if (!li) return;
  const all = messages();
  const actions = [...li.querySelectorAll(".chat__actions button")];
  const here = actions.indexOf(event.target);
  let target = null;
  if (event.key === "ArrowDown") target = all[all.indexOf(li) + 1];
  else if (event.key === "ArrowUp") target = all[all.indexOf(li) - 1];
  else if (event.key === "Home") target = all[0];
  else if (event.key === "End") target = all[all.length - 1];
  else if (event.key === "ArrowRight") target = actions[here + 1];
  else if (event.key === "ArrowLeft") target = here > 0 ? actions[here - 1] : li;
  else return;
  event.preventDefault();
  if (target) {
    target.focus();
    target.scrollIntoView({ block: "nearest" });
  }
});

document.getElementById("announce-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("announce-text");
  if (field.value.trim() && socket?.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "announce", text: field.value.trim() }));
    field.value = "";
  }
});

document.getElementById("close-room")?.addEventListener("click", () => {
  if (window.confirm("Close the meeting for everyone now?") && socket?.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "close_room" }));
  }
});

function scrollDown() {
  chat.scrollTop = chat.scrollHeight;
}

function acceptMessage(frame, { live }) {
  if (frame.seq <= lastSeq) return; // already shown
  if (frame.seq > lastSeq + 1 || loadingLatest) {
    early.set(frame.seq, frame);
    requestResume();
    return;
  }
  showMessage(frame, { live });
}

function showMessage(frame, { live }) {
  const li = renderMessage(frame);
  li.dataset.seq = String(frame.seq);
  remember(frame);
  if (oldestShown === null) oldestShown = frame.seq;
  const pending = frame.client_id ? pendingElement(frame.client_id) : null;
  if (pending) pending.remove();
  chat.append(li);
  offerTabStop(li);
  lastSeq = frame.seq;
  if (frame.client_id) {
    saveOutbox(loadOutbox().filter((item) => item.client_id !== frame.client_id));
  }
  if (live && !frame.mine) {
    const shown = seen(frame);
    announcer.textContent = `${shown.author}: ${shown.kind === "hidden" ? "hidden message" : shown.body}`;
  }
  scrollDown();
  const next = early.get(lastSeq + 1);
  if (next) {
    early.delete(next.seq);
    acceptMessage(next, { live });
  }
}

// --- encrypted rooms: what was read, what could not be, and who is who -----------------------

// Keeps what a report needs of a message read here, and which ones could not be read
// (they are read again when new keys arrive).
function remember(frame) {
  if (!frame.view) return;
  if (frame.view.kind === "ok") {
    readable.set(frame.seq, { body: frame.view.body, frankingKey: frame.view.frankingKey });
    unreadable.delete(frame.seq);
  } else if (frame.view.kind === "before" || frame.view.kind === "locked") {
    unreadable.set(frame.seq, frame);
  }
  countLocked();
}

// The room header counts the messages that should open here but do not.
function countLocked() {
  if (!lockedLine) return;
  let count = 0;
  for (const frame of unreadable.values()) if (frame.view.kind === "locked") count += 1;
  lockedLine.hidden = count === 0;
  lockedLine.textContent = count === 0 ? ""
    : `${count === 1 ? "1 message" : `${count} messages`} could not be unlocked in this browser yet. ` +
      `This browser has asked the sender's browser again for what it needs to open ${count === 1 ? "it" : "them"}.`;
}

// New keys arrived (`keys`: "device:epoch" in `opened`), or devices became known (their
// ids in `opened`): messages they may open are read again and shown in place.
async function readAgain(opened) {
  for (const [seq, frame] of [...unreadable]) {
    const e2ee = frame.e2ee;
    if (!e2ee) continue;
    const waiting = frame.view && frame.view.waitingFor;
    if (!opened.has(`${e2ee.sender_device}:${e2ee.epoch}`) && !(waiting && opened.has(waiting))) continue;
    frame.view = await keys.read(frame);
    const old = chat.querySelector(`li[data-seq="${seq}"]`);
    if (!old) {
      unreadable.delete(seq);
      continue;
    }
    const li = renderMessage(frame);
    li.dataset.seq = String(seq);
    li.tabIndex = old.tabIndex;
    const hadFocus = old === document.activeElement;
    old.replaceWith(li);
    if (hadFocus) li.focus();
    if (frame.view.kind !== "before" && frame.view.kind !== "locked") unreadable.delete(seq);
    remember(frame);
  }
  countLocked();
}

// Reads every message of a frame before it is shown (in order: one at a time).
async function read(messages) {
  if (!encrypted) return;
  for (const message of messages) {
    if (!message.view) message.view = await keys.read(message);
  }
}

// "Here now": each name, and in an encrypted room each of their devices' safety codes,
// to compare face to face.
function showPresent() {
  const open = new Set([...presentList.querySelectorAll("details[open]")].map((d) => d.dataset.name));
  presentList.replaceChildren(
    ...presentNames.map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      const codes = keys && keysReady
        ? [...keys.devices.values()].filter((d) => d.pseudonym === name && d.present && d.allowed).map((d) => d.code)
        : [];
      if (codes.length) {
        const details = document.createElement("details");
        details.className = "safety-code";
        details.dataset.name = name;
        details.open = open.has(name);
        const summary = document.createElement("summary");
        summary.textContent = "Safety code";
        const whose = document.createElement("span");
        whose.className = "visually-hidden";
        whose.textContent = ` of ${name}`;
        summary.append(whose);
        details.append(summary);
        for (const code of codes) {
          const p = document.createElement("p");
          p.className = "safety-code__digits";
          p.textContent = code;
          details.append(p);
        }
        li.append(" ", details);
      }
      return li;
    }),
  );
}

// A line in the conversation that is not a message (a participant's device changed).
function showNotice(text) {
  const li = document.createElement("li");
  li.className = "chat__notice";
  li.tabIndex = -1;
  const p = document.createElement("p");
  p.className = "chat__body";
  p.textContent = text;
  li.append(p);
  chat.append(li);
  offerTabStop(li);
  announcer.textContent = text;
  scrollDown();
}

function devicesChanged(devices, myDevice, changed) {
  showPresent();
  for (const { pseudonym, code } of changed) {
    showNotice(
      `${pseudonym} is now here from another browser or phone, so their safety code is ` +
      `now ${code}. If they tell you that was not them, tell a facilitator.`,
    );
  }
}

// This browser cannot keep keys (no WebCrypto, or IndexedDB refused): say so plainly,
// and offer no room that would half work.
function cannotEncrypt() {
  finish(
    "This meeting is end-to-end encrypted, so this browser has to keep secret keys, and it " +
    "cannot here (private browsing, or a setting that blocks site storage, often stops it). " +
    "Please join from another browser, or from this one outside private browsing.",
    { href: room.dataset.groupUrl, text: "Back to the group" },
  );
  chat.hidden = true;
  composer.hidden = true;
  earlierButton.hidden = true;
}

// Messages held back that the server says are next (nothing is stored between them).
function showEarlyUpTo(seq) {
  for (const held of [...early.keys()].sort((a, b) => a - b)) {
    if (held > seq) break;
    const frame = early.get(held);
    early.delete(held);
    if (held > lastSeq) showMessage(frame, { live: false });
  }
}

function requestResume() {
  if (resuming || loadingLatest || !socket || socket.readyState !== WebSocket.OPEN) return;
  resuming = true;
  socket.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
}

function requestHistory(beforeSeq) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const frame = { type: "history", limit: HISTORY_PAGE };
  if (beforeSeq !== null) frame.before_seq = beforeSeq;
  socket.send(JSON.stringify(frame));
}

function showEarlier(frame) {
  loadingEarlier = false;
  earlierButton.disabled = false;
  const first = chat.querySelector("li[data-seq]");
  const fromBottom = chat.scrollHeight - chat.scrollTop;
  const items = frame.messages
    .filter((message) => oldestShown === null || message.seq < oldestShown)
    .map((message) => {
      const li = renderMessage(message);
      li.dataset.seq = String(message.seq);
      remember(message);
      return li;
    });
  if (first) first.before(...items);
  else chat.prepend(...items);
  if (items.length && !chat.querySelector(':scope > li[tabindex="0"]')) makeTabStop(items.at(-1));
  if (items.length) oldestShown = frame.messages[0].seq;
  // Keep the messages being read where they were.
  chat.scrollTop = chat.scrollHeight - fromBottom;
  earlierButton.hidden = !frame.more;
  if (items.length) announcer.textContent = `${items.length} earlier messages shown.`;
}

earlierButton.addEventListener("click", () => {
  if (loadingEarlier || oldestShown === null) return;
  loadingEarlier = true;
  earlierButton.disabled = true;
  requestHistory(oldestShown);
});

function showAnnouncement(text) {
  announcement.hidden = !text;
  announcement.textContent = text ? `Announcement: ${text}` : "";
}

function setStatus(text) {
  statusLine.textContent = text;
}

// A thank-you or a confirmation in the status line, which then says again how the
// connection is (unless something else was said meanwhile).
function setPassingStatus(text) {
  setStatus(text);
  window.setTimeout(() => {
    if (statusLine.textContent === text && socket && socket.readyState === WebSocket.OPEN) {
      setStatus("Connected.");
    }
  }, 8000);
}

const untilFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});

// Why and until when (the server's `muted`, PROTOCOL.md), in words.
function muteText(muted) {
  const parts = ["A facilitator has muted you"];
  if (muted?.until) {
    const until = new Date(muted.until);
    const sameDay = until.toDateString() === new Date().toDateString();
    parts.push(` until ${sameDay ? timeFormat.format(until) : untilFormat.format(until)}`);
  } else {
    parts.push(" until a facilitator lifts it");
  }
  // Quoted words keep their own full stop; the sentence gets one only if they have none.
  const quoted = (text) => `“${text}”${/[.!?…]$/.test(text) ? "" : "."}`;
  if (muted?.guideline) {
    parts.push(`, under guideline ${muted.guideline.number}: ${quoted(muted.guideline.text)}`);
  } else {
    parts.push(".");
  }
  if (muted?.reason) parts.push(` Their words: ${quoted(muted.reason)}`);
  parts.push(" You can read but not send until then.");
  return parts.join("");
}

const mutedNotice = document.getElementById("muted-notice");

function setCanSend(value, muted = null) {
  canSend = value;
  input.disabled = !value;
  sendButton.disabled = !value;
  mutedNotice.hidden = value || finished;
  mutedNotice.textContent = value || finished ? "" : muteText(muted);
}

const SIGNED_OUT_TEXT = {
  idle: "You were signed out after a while without activity, to keep your account safe.",
  absolute: "You were signed out because this session had lasted a long time.",
  password_changed: "You were signed out because the password was changed.",
  two_factor_changed: "You were signed out because two-factor authentication was changed.",
  credentials_renewal:
    "You were signed out: please sign in, choose a new password and set up two-factor authentication again.",
};

// The session is over: say so, and keep what was not sent yet for when they are back.
function signedOut(text) {
  if (leaving()) return;
  const waiting = loadOutbox().length;
  finish(
    text + (waiting ? ` Your ${waiting === 1 ? "message that was not sent yet is" : `${waiting} messages that were not sent yet are`} kept in this tab and will be sent when you are back.` : ""),
    { href: `/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`, text: "Sign in again" },
  );
}

// The account socket on this page also hears the sign-out: the room tells the person.
document.addEventListener("sg:signed-out", (event) => event.preventDefault());

function finish(text, link) {
  finished = true;
  setCanSend(false);
  composerError.textContent = "";
  statusLine.replaceChildren(text);
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    statusLine.append(" ", a);
  }
}

// --- the socket -------------------------------------------------------------------------------

const handlers = {
  async hello(frame) {
    if (encrypted) {
      // The keys first: nothing is read or sent before they are.
      keysReady = false;
      if (!frame.e2ee) {
        cannotEncrypt();
        return;
      }
      setStatus("Setting up encryption in this browser…");
      try {
        await keys.connect(frame.e2ee, frame.last_seq);
      } catch {
        setStatus("Could not set up encryption in this browser. Trying again…");
        socket.close();
        return;
      }
      keysReady = true;
      showPresent();
    }
    reconnectDelay = 1000;
    myName.textContent = frame.you.pseudonym;
    isFacilitator = frame.you.is_facilitator;
    guidelines = frame.guidelines;
    showAnnouncement(frame.announcement);
    setCanSend(frame.you.can_send, frame.you.muted);
    setStatus("Connected.");
    maxLength = frame.limits.max_length;
    clearInterval(heartbeat);
    heartbeat = setInterval(() => {
      // Only a page someone can see keeps the session alive (as a page load would).
      const visible = document.visibilityState === "visible";
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping", visible }));
    }, frame.limits.heartbeat_seconds * 1000);
    helloLastSeq = frame.last_seq;
    resuming = false;
    if (!loaded && lastSeq === 0) {
      // First time in: the latest messages, not the room's first thousand.
      loadingLatest = true;
      requestHistory(null);
    } else {
      requestResume();
    }
  },
  async message(frame) {
    if (encrypted) {
      if (frame.seq <= lastSeq) return; // already shown: nothing to read
      await read([frame]);
    }
    acceptMessage(frame, { live: !resuming });
  },
  async history(frame) {
    if (encrypted) await read(frame.messages);
    if (!loadingLatest) {
      showEarlier(frame);
      return;
    }
    loadingLatest = false;
    loaded = true;
    for (const message of frame.messages) {
      if (message.seq > lastSeq) showMessage(message, { live: false });
    }
    lastSeq = Math.max(lastSeq, frame.last_seq);
    earlierButton.hidden = !frame.more;
    // Then whatever was posted since, and the outbox, as after any reconnect.
    showEarlyUpTo(lastSeq);
    requestResume();
  },
  resumed(frame) {
    resuming = false;
    loaded = true;
    // Everything stored up to last_seq has been sent: what was held back until then is
    // next, whatever its number.
    showEarlyUpTo(frame.last_seq);
    lastSeq = Math.max(lastSeq, frame.last_seq);
    const next = early.get(lastSeq + 1);
    if (next) {
      early.delete(next.seq);
      acceptMessage(next, { live: false });
    }
    if (frame.more || lastSeq < helloLastSeq || early.size) {
      requestResume();
      return;
    }
    for (const item of loadOutbox()) {
      showPending(item);
      sendItem(item);
    }
  },
  ack(frame) {
    const pending = pendingElement(frame.client_id);
    if (pending) pending.querySelector(".chat__meta").lastChild.textContent = " · sent";
    if (frame.seq > lastSeq) window.setTimeout(() => { if (frame.seq > lastSeq) requestResume(); }, 1500);
  },
  message_changed(frame) {
    if (frame.hidden) {
      readable.delete(frame.seq);
      unreadable.delete(frame.seq);
      countLocked();
    }
    const li = chat.querySelector(`li[data-seq="${frame.seq}"]`);
    if (!li) return;
    const body = li.querySelector(".chat__body");
    if (frame.hidden) {
      body.className = "chat__body";
      delete li.dataset.unread;
      body.classList.add("chat__body--hidden");
      body.textContent = "Hidden by a facilitator.";
      // Leave nothing of it for a screen reader to read out later.
      announcer.textContent = "";
      // Nothing is left to hide or report (a Report form already open goes too).
      li.querySelector('button[data-kind="hide"]')?.remove();
      li.querySelector('button[data-kind="report"]')?.remove();
      li.querySelector(".chat__form")?.remove();
    }
  },
  announcement(frame) {
    showAnnouncement(frame.text);
  },
  reported(frame) {
    composerError.textContent = "";
    // The message shows that it was reported, so nobody reports it twice by mistake.
    const button = chat.querySelector(`li[data-seq="${frame.seq}"] button[data-kind="report"]`);
    if (button) button.replaceWith(reportedMark());
    setPassingStatus("Thank you. The facilitators will look at your report.");
  },
  moderated() {
    setPassingStatus("Done.");
  },
  presence(frame) {
    presentNames = frame.present;
    showPresent();
  },
  status(frame) {
    setCanSend(frame.can_send, frame.muted);
    if (frame.pseudonym) myName.textContent = frame.pseudonym;
  },
  error(frame) {
    if (encrypted && encryptionError(frame)) return;
    lastError = frame;
    if (frame.client_id) {
      const item = loadOutbox().find((entry) => entry.client_id === frame.client_id);
      saveOutbox(loadOutbox().filter((entry) => entry.client_id !== frame.client_id));
      const pending = pendingElement(frame.client_id);
      if (pending) pending.remove();
      // Nothing typed is lost: a refused message goes back into the box.
      if (item && !input.value) input.value = item.body;
    }
    composerError.textContent = frame.message;
  },
  closed(frame) {
    if (frame.reason === "agreement_required") {
      finish("The group's agreement has changed. Please sign it to come back in.",
        { href: room.dataset.signUrl, text: "Read and sign" });
    } else if (frame.reason === "meeting_closed" || frame.reason === "meeting_ended") {
      finish("The meeting has ended. Thank you for being here.",
        { href: room.dataset.groupUrl, text: "Back to the group" });
    } else {
      finish(frame.message || "You can't take part in this meeting now.",
        { href: room.dataset.groupUrl, text: "Back to the group" });
    }
  },
  pong() {},
  signed_out(frame) {
    // This session's device keys are of no use any more: none are left behind.
    if (encrypted) clearDeviceKeys();
    signedOut(SIGNED_OUT_TEXT[frame.reason] || "You have been signed out.");
  },
  refused(frame) {
    if (["signed_out", "idle", "absolute", "two_factor_required"].includes(frame.reason)) {
      if (encrypted && frame.reason !== "two_factor_required") clearDeviceKeys();
      signedOut(frame.message);
    } else if (frame.reason === "agreement_required") {
      finish(frame.message, { href: room.dataset.signUrl, text: "Read and sign" });
    } else {
      finish(frame.message, { href: room.dataset.groupUrl, text: "Back to the group" });
    }
  },
};

// Refusals about keys, answered here rather than shown: true when handled.
function encryptionError(frame) {
  // My message needs its epoch shared first (or a new epoch): then it is sent again.
  const handled = frame.client_id && keys.handleSendError(frame, () => {
    const item = loadOutbox().find((entry) => entry.client_id === frame.client_id);
    if (item) sendItem(item);
  });
  if (handled) return true;
  if (frame.code === "device_required" || frame.code === "invalid_device") {
    // The server no longer knows this device: connect again, which registers one.
    keysReady = false;
    socket.close();
    return true;
  }
  // A refused share or key request changes nothing on the page: the message it was
  // for stays counted as not unlocked.
  return ["invalid_keys", "came_after_epoch", "key_request_refused"].includes(frame.code);
}

function dispatch(frame) {
  const handler = handlers[frame.type];
  if (!encrypted) {
    if (handler) handler(frame);
    return;
  }
  if (keys.handle(frame) || !handler) return;
  inbox = inbox.then(() => handler(frame)).catch(() => {});
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}${room.dataset.socketPath}`);
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    dispatch(frame);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(heartbeat);
    if (encrypted) {
      keysReady = false;
      keys?.disconnected();
    }
    if (finished) return;
    if (event.code === SIGNED_OUT) {
      if (encrypted) clearDeviceKeys();
      signedOut("You have been signed out.");
      return;
    }
    if (event.code === ROOM_CLOSED || event.code === MEMBERSHIP_CHANGED) {
      // A refused send or replay says why just before the close: show those words.
      if (lastError && lastError.code === "agreement_required") {
        finish(lastError.message, { href: room.dataset.signUrl, text: "Read and sign" });
      } else {
        finish(lastError?.message || "You are no longer in this meeting.",
          { href: room.dataset.groupUrl, text: "Back to the group" });
      }
      return;
    }
    if (event.code === NOT_ALLOWED) {
      // The refused frame before it said why; this is only for a server that did not.
      finish("You can't join this meeting now. It may not be open, or you may need to sign in again.",
        { href: window.location.pathname, text: "Try again" });
      return;
    }
    setStatus("Connection lost. Reconnecting…");
    window.setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 30000);
  });
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = input.value.trim();
  if (!body || !canSend) return;
  const length = [...body].length; // characters, as the server counts them
  if (length > maxLength) {
    composerError.textContent =
      `That message is ${length} characters long; the limit is ${maxLength}. ` +
      "Please shorten it or send it in parts.";
    return;
  }
  composerError.textContent = "";
  const item = { client_id: newClientId(), body };
  saveOutbox([...loadOutbox(), item]);
  input.value = "";
  showPending(item);
  sendItem(item);
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

// The room fills the screen under the header, the message box in view (site.css).
const roomMain = room.querySelector(".room__main");
function fitRoom() {
  const top = roomMain.getBoundingClientRect().top + window.scrollY;
  document.documentElement.style.setProperty("--room-top", `${Math.round(top)}px`);
}
fitRoom();
window.addEventListener("resize", fitRoom);

// Opening the room puts the person in the message box (the skip link also leads there).
input.focus({ preventScroll: true });
if (!encrypted) {
  connect();
} else if (!cryptoAvailable() || !storageAvailable()) {
  cannotEncrypt();
} else {
  keys = new EncryptedRoom({
    meeting: meetingId,
    member: room.dataset.member,
    send: sendFrame,
    onDevices: devicesChanged,
    onKeys: (opened) => {
      inbox = inbox.then(() => readAgain(opened)).catch(() => {});
    },
  });
  keys.open().then(connect, cannotEncrypt);
}
