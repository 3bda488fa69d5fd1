// The end-to-end encrypted side of the room (issue 19; meetings/PROTOCOL.md, "End-to-end
// encrypted meetings"). room.js keeps the order of messages, the outbox and the page;
// this keeps the keys:
//
// - this browser's device for the membership (IndexedDB, device-store.js), registered
//   over the socket when there is none the server knows;
// - the chain keys other devices shared with it (fetched again after every (re)connect,
//   so a reload or a server restart loses nothing), and its own sending chain, a new
//   epoch at every (re)connect and whenever a device that held the current one is no
//   longer allowed in the room;
// - sharing the sending chain, at the index it will use next, with every device present
//   (on `devices` frames, and when the server says `keys_needed`), and from index 0 to a
//   device that asks again (`key_request`, which the server only relays to devices that
//   were there when the epoch began).
//
// Every message is read here: verified against its sender device's signing key first
// (a message that fails is never shown under the claimed name), then decrypted, then its
// franking commitment checked (so what is shown is what a report can prove).

import {
  ReceivedChain,
  Uncommitted,
  b64,
  chainStep,
  makeDevice,
  newChainKey,
  openMessage,
  safetyCode,
  sealMessage,
  unb64,
  unwrapChainKey,
  verifyMessage,
  wrapChainKey,
} from "./e2ee.js";
import { loadDevice, openStore, saveDevice } from "./device-store.js";

const SHARES_PER_FRAME = 50;
const ANSWER_TIMEOUT_MS = 15000;
const MAX_RESENDS = 5; // per message, after keys_needed / epoch_stale

export class EncryptedRoom {
  constructor({ meeting, member, send, onDevices, onKeys }) {
    this.meeting = String(meeting);
    this.member = String(member);
    this.send = send; // (frame) => void, on the room's socket
    this.onDevices = onDevices; // (devices, myDeviceId, changed: [{pseudonym, code}]) => void
    this.onKeys = onKeys; // (Set of "device:epoch", or of device ids now known) => void: re-read what they open
    this.db = null;
    this.device = null; // {id, ecdhPrivate, ecdsaPrivate, ecdhPublic, ecdsaPublic}
    this.joinedAfterSeq = 0;
    this.devices = new Map(); // id -> {id, pseudonym, ecdh, ecdsa (bytes), present, allowed, code}
    this.received = new Map(); // "device:epoch" -> ReceivedChain
    this.seenShares = new Set(); // share ids already opened
    this.waitingShares = []; // shares from devices not in the list yet
    this.chain = null; // my sending chain: {epoch, index, chainKey, recipients: Set}
    this.highestEpoch = 0;
    this.chainWork = Promise.resolve(); // sharing and sealing, one at a time, in order
    this.waiters = new Map(); // frame type -> [resolve, reject]
    this.requested = new Set(); // "device:epoch" asked for again on this connection
    this.resends = new Map(); // client id -> attempts
    this.knownDevicesOf = new Map(); // pseudonym -> Set of device ids seen on this page
  }

  // Throws when IndexedDB cannot be opened (some private modes): no half-working room.
  async open() {
    this.db = await openStore();
  }

  // --- answers the room waits for --------------------------------------------------------------

  expect(type) {
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.waiters.delete(type);
        reject(new Error(`no ${type} from the server`));
      }, ANSWER_TIMEOUT_MS);
      this.waiters.set(type, [
        (frame) => {
          window.clearTimeout(timer);
          resolve(frame);
        },
        (error) => {
          window.clearTimeout(timer);
          reject(error);
        },
      ]);
    });
  }

  settle(type, frame) {
    const waiter = this.waiters.get(type);
    if (!waiter) return;
    this.waiters.delete(type);
    waiter[0](frame);
  }

  // The socket dropped: nothing it was asked will be answered.
  disconnected() {
    for (const [type, waiter] of this.waiters) {
      this.waiters.delete(type);
      waiter[1](new Error("connection lost"));
    }
  }

  // --- (re)connect ---------------------------------------------------------------------------------

  // After `hello`: this browser's device, every key shared with it, a new epoch shared
  // with everyone present. Throws if the server does not answer (the room reconnects).
  async connect(hello, lastSeq) {
    this.requested.clear();
    this.resends.clear();
    this.chain = null;
    await this.updateDevices(hello.devices || [], { initial: !this.devices.size });
    const known = hello.device;
    let device = null;
    if (known && this.device && this.device.id === known.id) {
      device = this.device;
    } else if (known) {
      const stored = await loadDevice(this.db, known.id);
      if (stored && b64(stored.ecdhPublic) === known.ecdh && b64(stored.ecdsaPublic) === known.ecdsa) {
        device = stored;
      }
    }
    if (device) {
      this.device = device;
      this.joinedAfterSeq = hello.joined_after_seq ?? lastSeq;
      // The server says which epoch this device is at in this meeting (null before its
      // first): the next one is one more, whatever this page remembers.
      this.highestEpoch = Number(hello.epoch ?? 0);
    } else {
      await this.register();
    }
    this.addMyself();
    await this.fetchKeys();
    await this.onChain(() => this.startEpoch());
  }

  async register() {
    const fresh = await makeDevice();
    const answer = this.expect("device_registered");
    this.send({ type: "device_register", ecdh: b64(fresh.ecdhPublic), ecdsa: b64(fresh.ecdsaPublic) });
    const frame = await answer;
    const record = { ...fresh, id: frame.device.id, member: this.member, meeting: this.meeting, created: Date.now() };
    await saveDevice(this.db, record);
    // A new device has sent nothing yet: its epochs start again from 1.
    this.device = record;
    this.highestEpoch = 0;
    this.joinedAfterSeq = frame.joined_after_seq ?? 0;
    // Keys held for an earlier device of mine are of no use to this one.
    this.received.clear();
    this.seenShares.clear();
  }

  addMyself() {
    const me = this.devices.get(this.device.id);
    if (me) {
      me.present = true;
      return;
    }
    this.devices.set(this.device.id, {
      id: this.device.id, pseudonym: null, ecdh: this.device.ecdhPublic, ecdsa: this.device.ecdsaPublic,
      present: true, allowed: true, code: null,
    });
  }

  async fetchKeys() {
    let after = null;
    for (;;) {
      const answer = this.expect("keys");
      const frame = after === null ? { type: "keys_fetch" } : { type: "keys_fetch", after };
      this.send(frame);
      const page = await answer;
      await this.takeShares(page.shares || []);
      if (!page.more || !page.cursor) return;
      after = page.cursor;
    }
  }

  // --- frames --------------------------------------------------------------------------------------

  // Frames about keys and devices, handled as they come (room.js's `hello` waits on
  // some of them). True when the frame was one of these.
  handle(frame) {
    switch (frame.type) {
      case "device_registered":
        this.settle("device_registered", frame);
        return true;
      case "keys":
        // Keys pushed live and the answer to keys_fetch look alike: every one is opened.
        this.takeShares(frame.shares || []).then(() => this.settle("keys", frame));
        return true;
      case "keys_shared":
        return true;
      case "error":
        // My share went to a device the server says may no longer hold keys (its member
        // was removed a moment ago and this page's devices frame is still on the way):
        // take the server's word for it and share again without it.
        if (frame.code !== "invalid_keys" || !Array.isArray(frame.devices)) return false;
        for (const id of frame.devices) {
          const device = this.devices.get(id);
          if (device) device.allowed = false;
        }
        this.onChain(() => this.reconcile());
        return true;
      case "devices":
        this.updateDevices(frame.devices || [], { initial: false }).then(() => {
          if (this.chain) this.onChain(() => this.reconcile());
          this.askAgain();
        });
        return true;
      case "key_request":
        this.onChain(() => this.answerKeyRequest(frame));
        return true;
      default:
        return false;
    }
  }

  // keys_needed / epoch_stale for one of my messages: share (or start a new epoch), then
  // `resend()`. True when handled; false lets room.js treat it as any refusal.
  handleSendError(frame, resend) {
    if (frame.code !== "keys_needed" && frame.code !== "epoch_stale") return false;
    const attempts = (this.resends.get(frame.client_id) || 0) + 1;
    if (attempts > MAX_RESENDS) return false;
    this.resends.set(frame.client_id, attempts);
    this.onChain(async () => {
      // Give the room's devices frame time to arrive before trying again.
      if (attempts > 1) await new Promise((resolve) => window.setTimeout(resolve, 200 * attempts));
      if (frame.code === "epoch_stale" || !this.chain) {
        await this.startEpoch();
      } else {
        const missing = (frame.devices || []).filter((id) => !this.chain.recipients.has(id));
        // A device this page has not heard of yet: the devices frame is on its way.
        if (missing.some((id) => !this.devices.has(id))) {
          await new Promise((resolve) => window.setTimeout(resolve, 300 * attempts));
        }
        await this.share(frame.devices || []);
      }
    }).then(resend);
    return true;
  }

  // Work on my sending chain, one piece at a time and in order (a share is always at the
  // index the next message will use).
  onChain(work) {
    const next = this.chainWork.then(work);
    this.chainWork = next.catch(() => {});
    return next;
  }

  async updateDevices(list, { initial }) {
    const changed = [];
    for (const raw of list) {
      let ecdh;
      let ecdsa;
      try {
        ecdh = unb64(raw.ecdh);
        ecdsa = unb64(raw.ecdsa);
      } catch {
        continue;
      }
      const old = this.devices.get(raw.id);
      const device = {
        id: raw.id,
        pseudonym: raw.pseudonym,
        ecdh,
        ecdsa,
        present: Boolean(raw.present),
        allowed: Boolean(raw.allowed),
        code: old && old.code ? old.code : await safetyCode(ecdsa, ecdh),
      };
      this.devices.set(raw.id, device);
      // A participant's device changed: a new device of someone seen with another one.
      const seen = this.knownDevicesOf.get(raw.pseudonym) || new Set();
      if (!initial && !seen.has(raw.id) && seen.size && raw.allowed && (!this.device || raw.id !== this.device.id)) {
        changed.push({ pseudonym: raw.pseudonym, code: device.code });
      }
      seen.add(raw.id);
      this.knownDevicesOf.set(raw.pseudonym, seen);
    }
    if (this.device) this.addMyself();
    // Messages from devices that were not known yet may be read now.
    if (!initial) this.onKeys(new Set(list.map((raw) => raw.id)));
    const waiting = this.waitingShares;
    this.waitingShares = [];
    await this.takeShares(waiting);
    this.onDevices(this.devices, this.device ? this.device.id : null, changed);
  }

  // --- my sending chain ----------------------------------------------------------------------------

  // Devices that must be able to read what I send now: everyone allowed and present, and me.
  targets() {
    const ids = [];
    for (const device of this.devices.values()) {
      if (device.allowed && device.present) ids.push(device.id);
    }
    if (!ids.includes(this.device.id)) ids.push(this.device.id);
    return ids;
  }

  async startEpoch() {
    const epoch = this.highestEpoch + 1;
    this.highestEpoch = epoch;
    const chainKey = newChainKey();
    this.chain = { epoch, index: 0, chainKey, recipients: new Set() };
    // My own messages of this epoch open with what I keep (and, after a reload, with
    // the share to myself).
    this.received.set(`${this.device.id}:${epoch}`, new ReceivedChain(0, chainKey));
    await this.share(this.targets());
  }

  // Wraps my current chain, at the index I will use next, for these devices.
  async share(ids) {
    const chain = this.chain;
    const shares = [];
    for (const id of new Set(ids)) {
      const device = this.devices.get(id);
      if (!device || !device.allowed) continue;
      shares.push({
        recipient_device: id,
        first_index: chain.index,
        wrapped: await wrapChainKey({
          ecdhPrivate: this.device.ecdhPrivate, peerEcdhRaw: device.ecdh, meeting: this.meeting,
          senderDevice: this.device.id, recipientDevice: id, epoch: chain.epoch,
          firstIndex: chain.index, chainKey: chain.chainKey,
        }),
      });
      chain.recipients.add(id);
    }
    for (let i = 0; i < shares.length; i += SHARES_PER_FRAME) {
      this.send({ type: "keys_share", epoch: chain.epoch, shares: shares.slice(i, i + SHARES_PER_FRAME) });
    }
  }

  // After a change in the room: a device that held my epoch may no longer be here (start
  // a new one without it), or someone arrived (share from my next index on, so they
  // cannot read what came before).
  async reconcile() {
    if (!this.chain) return;
    const gone = [...this.chain.recipients].some((id) => !this.devices.get(id)?.allowed);
    if (gone) {
      await this.startEpoch();
      return;
    }
    const missing = this.targets().filter((id) => !this.chain.recipients.has(id));
    if (missing.length) await this.share(missing);
  }

  async answerKeyRequest(frame) {
    const epoch = Number(frame.epoch);
    const device = this.devices.get(frame.requester_device);
    if (!this.device || !device || !device.allowed) return;
    let chainKey;
    let firstIndex;
    if (this.chain && this.chain.epoch === epoch) {
      const own = this.received.get(`${this.device.id}:${epoch}`);
      [chainKey, firstIndex] = [own.chainKeys[0], own.firstIndex];
    } else {
      const own = this.received.get(`${this.device.id}:${epoch}`);
      if (!own) return; // an epoch this device no longer holds
      [chainKey, firstIndex] = [own.chainKeys[0], own.firstIndex];
    }
    const wrapped = await wrapChainKey({
      ecdhPrivate: this.device.ecdhPrivate, peerEcdhRaw: device.ecdh, meeting: this.meeting,
      senderDevice: this.device.id, recipientDevice: device.id, epoch, firstIndex, chainKey,
    });
    this.send({ type: "keys_share", epoch, shares: [{ recipient_device: device.id, first_index: firstIndex, wrapped }] });
    if (this.chain && this.chain.epoch === epoch) this.chain.recipients.add(device.id);
  }

  // The `e2ee` object of a send frame for this outbox item, sealed now with the next
  // index of my chain.
  seal(item) {
    return this.onChain(async () => {
      if (!this.chain) throw new Error("no sending chain yet");
      const { epoch, index, chainKey } = this.chain;
      const { messageKey, next } = await chainStep(chainKey);
      this.chain.chainKey = next;
      this.chain.index = index + 1;
      const e2ee = await sealMessage({
        body: item.body, meeting: this.meeting, senderDevice: this.device.id, clientId: item.client_id,
        epoch, index, messageKey, ecdsaPrivate: this.device.ecdsaPrivate,
      });
      return e2ee;
    });
  }

  // --- keys shared with me -------------------------------------------------------------------------

  async takeShares(shares) {
    const opened = new Set();
    for (const share of shares) {
      if (share.id !== undefined && this.seenShares.has(share.id)) continue;
      const sender = this.devices.get(share.sender_device);
      if (!sender || !this.device) {
        this.waitingShares.push(share);
        continue;
      }
      try {
        const chainKey = await unwrapChainKey({
          ecdhPrivate: this.device.ecdhPrivate, peerEcdhRaw: sender.ecdh, meeting: this.meeting,
          senderDevice: share.sender_device, recipientDevice: this.device.id, epoch: share.epoch,
          firstIndex: share.first_index, wrapped: share.wrapped,
        });
        if (share.id !== undefined) this.seenShares.add(share.id);
        const key = `${share.sender_device}:${share.epoch}`;
        const held = this.received.get(key);
        // The share reaching furthest back is kept (a later one may start further on).
        if (!held || share.first_index < held.firstIndex) {
          this.received.set(key, new ReceivedChain(Number(share.first_index), chainKey));
          opened.add(key);
        }
        if (share.sender_device === this.device.id) {
          // Another tab of this browser (the same device) started an epoch meanwhile.
          this.highestEpoch = Math.max(this.highestEpoch, Number(share.epoch));
        }
      } catch {
        // Not for this device's keys (or damaged): nothing it can open.
        if (share.id !== undefined) this.seenShares.add(share.id);
      }
    }
    if (opened.size) this.onKeys(opened);
  }

  // Ask the senders again for keys this device should have had (only asked once per
  // connection and sender epoch, again when the room changes).
  requestKey(senderDevice, epoch) {
    const key = `${senderDevice}:${epoch}`;
    if (this.requested.has(key) || this.received.has(key)) return;
    this.requested.add(key);
    this.send({ type: "key_request", sender_device: senderDevice, epoch });
  }

  askAgain() {
    const pending = [...this.requested].filter((key) => !this.received.has(key));
    this.requested.clear();
    for (const key of pending) {
      const [device, epoch] = key.split(":");
      if (this.devices.get(device)?.present) this.requestKey(device, Number(epoch));
      else this.requested.add(key);
    }
  }

  // --- reading a message ---------------------------------------------------------------------------

  // What the page shows for a message frame: {kind, author, body, frankingKey}, kind one of
  // "ok", "hidden", "removed", "unverified", "before" (sent before this device joined),
  // "locked" (should open here but does not: counted, and asked for again).
  async read(frame) {
    if (frame.hidden) return { kind: "hidden", author: frame.author };
    const e2ee = frame.e2ee;
    if (!e2ee) return { kind: "removed", author: frame.author };
    const clientId = e2ee.client_id ?? frame.client_id;
    const sender = this.devices.get(e2ee.sender_device);
    // A device the room has not described to this page yet (its `devices` frame is on the
    // way, sent a moment after the message): not a forgery, so it waits like a locked
    // message and is read again when the device is known.
    if (!sender) return { kind: "locked", author: "Checking who sent this…", waitingFor: e2ee.sender_device };
    if (typeof clientId !== "string") return { kind: "unverified" };
    const genuine = await verifyMessage({ e2ee, meeting: this.meeting, clientId, ecdsaRaw: sender.ecdsa });
    if (!genuine) return { kind: "unverified" };
    const author = sender.pseudonym || frame.author;
    const before = frame.seq <= this.joinedAfterSeq;
    const chain = this.received.get(`${e2ee.sender_device}:${e2ee.epoch}`);
    const messageKey = chain ? await chain.messageKey(Number(e2ee.index)) : null;
    if (!messageKey) {
      if (before) return { kind: "before", author };
      this.requestKey(e2ee.sender_device, e2ee.epoch);
      return { kind: "locked", author };
    }
    try {
      const { body, frankingKey } = await openMessage({ e2ee, meeting: this.meeting, clientId, messageKey });
      return { kind: "ok", author, body, frankingKey: b64(frankingKey) };
    } catch (error) {
      if (error instanceof Uncommitted) return { kind: "unverified" };
      if (before) return { kind: "before", author };
      this.requestKey(e2ee.sender_device, e2ee.epoch);
      return { kind: "locked", author };
    }
  }
}
