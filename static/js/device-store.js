// This browser's meeting device keys (issue 19), kept in IndexedDB: CryptoKey objects
// are stored as they are (structured clone), so the private keys, made non-extractable,
// never exist as bytes a script could read or send. One record per device, keyed by the
// id the server gave it. "Leave quickly" and signing out delete the whole database.
//
// Loaded by every page (quick-exit.js, account-socket.js), so it holds no crypto itself.

const DATABASE = "sg-meeting-keys";
const STORE = "devices";

export function storageAvailable() {
  try {
    return typeof window.indexedDB === "object" && window.indexedDB !== null;
  } catch {
    return false; // some private modes throw on the mere access
  }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error || new Error("IndexedDB request failed"));
  });
}

// Opens the database, with a connection that steps aside when another tab (or Leave
// quickly) deletes it.
export function openStore() {
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = window.indexedDB.open(DATABASE, 1);
    } catch (error) {
      reject(error);
      return;
    }
    req.onupgradeneeded = () => {
      req.result.createObjectStore(STORE, { keyPath: "id" });
    };
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = () => reject(req.error || new Error("IndexedDB cannot be opened"));
    req.onblocked = () => reject(new Error("IndexedDB is blocked"));
  });
}

export async function loadDevice(db, id) {
  const tx = db.transaction(STORE, "readonly");
  return (await request(tx.objectStore(STORE).get(id))) || null;
}

export async function saveDevice(db, record) {
  const tx = db.transaction(STORE, "readwrite");
  await request(tx.objectStore(STORE).put(record));
}

// Deletes every device key of this browser. Resolves when done, or after `waitMs` at
// most (the deletion carries on in the browser after the page has gone).
export function clearDeviceKeys(waitMs = 300) {
  if (!storageAvailable()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, waitMs);
    const done = () => {
      window.clearTimeout(timer);
      resolve();
    };
    try {
      const req = window.indexedDB.deleteDatabase(DATABASE);
      req.onsuccess = done;
      req.onerror = done;
    } catch {
      done();
    }
  });
}
