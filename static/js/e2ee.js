// The cryptography of end-to-end encrypted meetings (issue 19), with WebCrypto only.
// The byte layouts are the contract in meetings/PROTOCOL.md ("End-to-end encrypted
// meetings"): the server and its Python reference client compute the same bytes.
//
// - A device: an ECDH P-256 pair (to receive chain keys) and an ECDSA P-256 pair (to
//   sign), private keys non-extractable.
// - A sender chain per device and epoch: CK_0 random; MK_i = HMAC(CK_i, 0x01),
//   CK_{i+1} = HMAC(CK_i, 0x02). Shared wrapped per recipient device with
//   ECDH -> HKDF-SHA256 -> AES-256-GCM, at the index the sender will use next, so a
//   device that joins later cannot go back to what was sent before it.
// - A message: AES-256-GCM under MK_index with aad binding meeting, sender device,
//   client id, epoch and index; a franking commitment; an ECDSA signature over it all.

const subtle = () => window.crypto.subtle;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const ECDH = { name: "ECDH", namedCurve: "P-256" };
const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
const HMAC = { name: "HMAC", hash: "SHA-256" };

export function cryptoAvailable() {
  return Boolean(window.isSecureContext !== false && window.crypto && window.crypto.subtle);
}

// --- encodings -----------------------------------------------------------------------------

// Standard base64 with padding (RFC 4648 section 4).
export function b64(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    text += String.fromCharCode(...view.subarray(i, i + 0x8000));
  }
  return window.btoa(text);
}

export function unb64(text) {
  if (typeof text !== "string") throw new Error("not base64");
  const raw = window.atob(text); // throws on anything that is not base64
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// lp(f1, f2, ...): each field as a 4-byte big-endian length and its UTF-8 bytes;
// numbers as decimal strings.
export function lp(...fields) {
  const parts = fields.map((field) => encoder.encode(typeof field === "number" ? String(field) : field));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + 4 + part.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const part of parts) {
    view.setUint32(at, part.length);
    out.set(part, at + 4);
    at += 4 + part.length;
  }
  return out;
}

function random(length) {
  const bytes = new Uint8Array(length);
  window.crypto.getRandomValues(bytes);
  return bytes;
}

function concat(...arrays) {
  const out = new Uint8Array(arrays.reduce((sum, a) => sum + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

// --- devices ---------------------------------------------------------------------------------

// A new device: its private keys cannot be exported, its public keys are raw points.
export async function makeDevice() {
  const ecdh = await subtle().generateKey(ECDH, false, ["deriveBits"]);
  const ecdsa = await subtle().generateKey(ECDSA, false, ["sign", "verify"]);
  return {
    ecdhPrivate: ecdh.privateKey,
    ecdsaPrivate: ecdsa.privateKey,
    ecdhPublic: new Uint8Array(await subtle().exportKey("raw", ecdh.publicKey)),
    ecdsaPublic: new Uint8Array(await subtle().exportKey("raw", ecdsa.publicKey)),
  };
}

// Twelve digits in groups of four from SHA-256(ecdsa public ‖ ecdh public), compared
// face to face: the first five bytes as a 40-bit number, modulo 10^12.
export async function safetyCode(ecdsaRaw, ecdhRaw) {
  const digest = new Uint8Array(await subtle().digest("SHA-256", concat(ecdsaRaw, ecdhRaw)));
  let number = 0n;
  for (const byte of digest.subarray(0, 5)) number = (number << 8n) | BigInt(byte);
  const digits = (number % 1000000000000n).toString().padStart(12, "0");
  return `${digits.slice(0, 4)} ${digits.slice(4, 8)} ${digits.slice(8)}`;
}

const publicKeys = new Map(); // "kind:b64" -> CryptoKey

async function publicKey(kind, raw) {
  const id = `${kind}:${b64(raw)}`;
  if (!publicKeys.has(id)) {
    const algorithm = kind === "ecdh" ? ECDH : ECDSA;
    const usages = kind === "ecdh" ? [] : ["verify"];
    publicKeys.set(id, subtle().importKey("raw", raw, algorithm, false, usages));
  }
  return publicKeys.get(id);
}

// --- chains ----------------------------------------------------------------------------------

async function hmac(keyBytes, message) {
  const key = await subtle().importKey("raw", keyBytes, HMAC, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", key, message));
}

const ONE = new Uint8Array([1]);
const TWO = new Uint8Array([2]);

// One step of a chain: the message key at this index and the chain key at the next.
export async function chainStep(chainKey) {
  const [messageKey, next] = await Promise.all([hmac(chainKey, ONE), hmac(chainKey, TWO)]);
  return { messageKey, next };
}

export function newChainKey() {
  return random(32);
}

// A chain received from a sender: opens messages at its first index and after, never before.
export class ReceivedChain {
  constructor(firstIndex, chainKey) {
    this.firstIndex = firstIndex;
    this.chainKeys = [chainKey]; // chainKeys[k] = CK_{firstIndex + k}
    this.extending = Promise.resolve(); // one walk along the chain at a time
  }

  async messageKey(index) {
    if (!Number.isSafeInteger(index) || index < this.firstIndex) return null;
    // A sane bound: nobody sends this many messages in one epoch of a meeting.
    const offset = index - this.firstIndex;
    if (offset > 100000) return null;
    const walk = this.extending.then(async () => {
      while (this.chainKeys.length <= offset) {
        const { next } = await chainStep(this.chainKeys.at(-1));
        this.chainKeys.push(next);
      }
    });
    this.extending = walk.catch(() => {});
    await walk;
    return (await chainStep(this.chainKeys[offset])).messageKey;
  }
}

// --- wrapping a chain key for one recipient device ----------------------------------------------

async function wrapKey({ ecdhPrivate, peerEcdhRaw, meeting, senderDevice, recipientDevice, epoch, firstIndex }) {
  const peer = await publicKey("ecdh", peerEcdhRaw);
  const secret = await subtle().deriveBits({ name: "ECDH", public: peer }, ecdhPrivate, 256);
  const ikm = await subtle().importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return subtle().deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: encoder.encode("sg-wrap-v1"),
      info: lp("sg-wrap-v1", meeting, senderDevice, recipientDevice, epoch, firstIndex),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

export async function wrapChainKey(params) {
  const kek = await wrapKey(params);
  const iv = random(12);
  const sealed = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv }, kek, params.chainKey));
  return b64(concat(iv, sealed));
}

// The chain key in a share addressed to me (ECDH with the sender's public key), or an error.
export async function unwrapChainKey(params) {
  const kek = await wrapKey(params);
  const bytes = unb64(params.wrapped);
  if (bytes.length !== 12 + 32 + 16) throw new Error("wrapped key of the wrong size");
  const chainKey = await subtle().decrypt({ name: "AES-GCM", iv: bytes.subarray(0, 12) }, kek, bytes.subarray(12));
  return new Uint8Array(chainKey);
}

// --- messages --------------------------------------------------------------------------------

// The franking commitment: HMAC-SHA256(franking key, lp("sg-frank-v1", body, meeting,
// sender device, client id)).
export function commitmentOf(frankingKey, body, meeting, senderDevice, clientId) {
  return hmac(frankingKey, lp("sg-frank-v1", body, meeting, senderDevice, clientId));
}

function signedInput(meeting, senderDevice, clientId, epoch, index, iv, ciphertext, commitment) {
  return lp("sg-sig-v1", meeting, senderDevice, clientId, epoch, index, iv, ciphertext, commitment);
}

// The `e2ee` object of a send frame (all base64) for one message at (epoch, index).
export async function sealMessage({ body, meeting, senderDevice, clientId, epoch, index, messageKey, ecdsaPrivate }) {
  const frankingKey = random(32);
  const payload = encoder.encode(JSON.stringify({ b: body, f: b64(frankingKey) }));
  const iv = random(12);
  const key = await subtle().importKey("raw", messageKey, "AES-GCM", false, ["encrypt"]);
  const aad = lp("sg-msg-v1", meeting, senderDevice, clientId, epoch, index);
  const ciphertext = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, payload));
  const commitment = await commitmentOf(frankingKey, body, meeting, senderDevice, clientId);
  const e2ee = {
    sender_device: senderDevice,
    epoch,
    index,
    iv: b64(iv),
    ciphertext: b64(ciphertext),
    commitment: b64(commitment),
  };
  const signature = await subtle().sign(
    SIGN,
    ecdsaPrivate,
    signedInput(meeting, senderDevice, clientId, epoch, index, e2ee.iv, e2ee.ciphertext, e2ee.commitment),
  );
  e2ee.signature = b64(signature);
  return e2ee;
}

// Whether the sender device's key signed this message (nothing is decrypted).
export async function verifyMessage({ e2ee, meeting, clientId, ecdsaRaw }) {
  try {
    const key = await publicKey("ecdsa", ecdsaRaw);
    const signature = unb64(e2ee.signature);
    if (signature.length !== 64) return false;
    const input = signedInput(
      meeting, e2ee.sender_device, clientId, e2ee.epoch, e2ee.index, e2ee.iv, e2ee.ciphertext, e2ee.commitment,
    );
    return await subtle().verify(SIGN, key, signature, input);
  } catch {
    return false;
  }
}

export class Unreadable extends Error {}
export class Uncommitted extends Error {}

// Decrypts a verified message with its message key and checks its franking commitment:
// {body, frankingKey}. Unreadable: the key does not open it; Uncommitted: it opens, but
// the commitment outside does not match what is inside (it could not be reported).
export async function openMessage({ e2ee, meeting, clientId, messageKey }) {
  let payload;
  try {
    const key = await subtle().importKey("raw", messageKey, "AES-GCM", false, ["decrypt"]);
    const aad = lp("sg-msg-v1", meeting, e2ee.sender_device, clientId, e2ee.epoch, e2ee.index);
    const plain = await subtle().decrypt(
      { name: "AES-GCM", iv: unb64(e2ee.iv), additionalData: aad }, key, unb64(e2ee.ciphertext),
    );
    payload = JSON.parse(decoder.decode(plain));
  } catch {
    throw new Unreadable("this key does not open the message");
  }
  if (!payload || typeof payload.b !== "string" || typeof payload.f !== "string") {
    throw new Uncommitted("the message does not carry a body and a franking key");
  }
  let frankingKey;
  try {
    frankingKey = unb64(payload.f);
  } catch {
    throw new Uncommitted("bad franking key");
  }
  const expected = await commitmentOf(frankingKey, payload.b, meeting, e2ee.sender_device, clientId);
  let commitment;
  try {
    commitment = unb64(e2ee.commitment);
  } catch {
    throw new Uncommitted("bad commitment");
  }
  if (frankingKey.length !== 32 || !equalBytes(expected, commitment)) {
    throw new Uncommitted("the commitment does not match");
  }
  return { body: payload.b, frankingKey };
}
