// The live room. Protocol: meetings/PROTOCOL.md.
//
// The server numbers every message (seq) after saving it. This page renders messages
// strictly in seq order: older or repeated ones are ignored, a gap asks the server to
// resume from the last one shown. Messages being sent wait in an outbox kept in
// sessionStorage with their client id, so a reload or a lost connection resends them
// and the server stores each once.

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

const meetingId = room.dataset.meeting;
const OUTBOX_KEY = `sg-outbox-${meetingId}`;
const SIGNED_OUT = 4001;
const NOT_ALLOWED = 4003;
const ROOM_CLOSED = 4004;
const MEMBERSHIP_CHANGED = 4005;

let socket = null;
let lastSeq = 0;
let resuming = false;
let reconnectDelay = 1000;
let heartbeat = null;
let finished = false;
let canSend = false;
const early = new Map(); // seq -> frame that arrived before the ones before it

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
  scrollDown();
}

function sendItem(item) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "send", client_id: item.client_id, body: item.body }));
  }
}

// --- rendering ------------------------------------------------------------------------------

function renderMessage(frame) {
  const li = document.createElement("li");
  li.className = "chat__message" + (frame.mine ? " chat__message--mine" : "");
  const meta = document.createElement("p");
  meta.className = "chat__meta";
  const author = document.createElement("strong");
  author.textContent = frame.author;
  meta.append(author);
  if (frame.sent_at) {
    const time = document.createElement("time");
    time.dateTime = frame.sent_at;
    time.textContent = timeFormat.format(new Date(frame.sent_at));
    meta.append(" ", time);
  }
  const body = document.createElement("p");
  body.className = "chat__body";
  if (frame.hidden) {
    body.classList.add("chat__body--hidden");
    body.textContent = "Hidden by a facilitator.";
  } else {
    body.textContent = frame.body; // text only: markup in messages is never interpreted
  }
  li.append(meta, body);
  return li;
}

function scrollDown() {
  chat.scrollTop = chat.scrollHeight;
}

function acceptMessage(frame, { live }) {
  if (frame.seq <= lastSeq) return; // already shown
  if (frame.seq > lastSeq + 1) {
    early.set(frame.seq, frame);
    requestResume();
    return;
  }
  const li = renderMessage(frame);
  li.dataset.seq = String(frame.seq);
  const pending = frame.client_id ? pendingElement(frame.client_id) : null;
  if (pending) pending.remove();
  chat.append(li);
  lastSeq = frame.seq;
  if (frame.client_id) {
    saveOutbox(loadOutbox().filter((item) => item.client_id !== frame.client_id));
  }
  if (live && !frame.mine) {
    announcer.textContent = `${frame.author}: ${frame.hidden ? "hidden message" : frame.body}`;
  }
  scrollDown();
  const next = early.get(lastSeq + 1);
  if (next) {
    early.delete(next.seq);
    acceptMessage(next, { live });
  }
}

function requestResume() {
  if (resuming || !socket || socket.readyState !== WebSocket.OPEN) return;
  resuming = true;
  socket.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
}

function setStatus(text) {
  statusLine.textContent = text;
}

function setCanSend(value) {
  canSend = value;
  input.disabled = !value;
  sendButton.disabled = !value;
  if (!value) composerError.textContent = "A facilitator has muted you: you can read but not send.";
  else if (composerError.textContent.startsWith("A facilitator has muted")) composerError.textContent = "";
}

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
  hello(frame) {
    reconnectDelay = 1000;
    myName.textContent = frame.you.pseudonym;
    setCanSend(frame.you.can_send);
    setStatus("Connected.");
    input.maxLength = frame.limits.max_length;
    clearInterval(heartbeat);
    heartbeat = setInterval(() => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
    }, frame.limits.heartbeat_seconds * 1000);
    resuming = false;
    requestResume();
  },
  message(frame) {
    acceptMessage(frame, { live: !resuming });
  },
  resumed() {
    resuming = false;
    if (early.size) requestResume();
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
  presence(frame) {
    presentList.replaceChildren(
      ...frame.present.map((name) => {
        const li = document.createElement("li");
        li.textContent = name;
        return li;
      }),
    );
  },
  status(frame) {
    setCanSend(frame.can_send);
    if (frame.pseudonym) myName.textContent = frame.pseudonym;
  },
  error(frame) {
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
  signed_out() {
    window.location.replace("/accounts/login/");
  },
};

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
    const handler = handlers[frame.type];
    if (handler) handler(frame);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(heartbeat);
    if (finished) return;
    if (event.code === SIGNED_OUT) {
      window.location.replace("/accounts/login/");
      return;
    }
    if (event.code === ROOM_CLOSED || event.code === MEMBERSHIP_CHANGED) {
      finish("You are no longer in this meeting.", { href: room.dataset.groupUrl, text: "Back to the group" });
      return;
    }
    if (event.code === NOT_ALLOWED) {
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

connect();
