"""Issue 19: what end-to-end encryption costs the browser, per message, in Chromium.

    python -m bench.e2ee_client_cost [--messages N] [--length CHARS]

Measures, with the app's own static/js/e2ee.js in the system Chromium (headless):

- send: one step of the sender's chain (the message key), sealing (AES-256-GCM, a fresh
  franking key and its HMAC commitment) and signing (ECDSA P-256) one message, as the
  room does at every (re)send;
- read: verifying the signature, deriving the message key from a received chain, and
  decrypting and checking the commitment, as the room does for every message it shows.

The page is served by a small static file server of this process (only static/, on
127.0.0.1, a secure context for WebCrypto), so no database or Daphne is needed and
`make bench` can call `measure()` beside its other steps. Prints the figures and returns
them as a dict: mean, median, p95 and p99 in milliseconds for each step.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import threading
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

# Runs in the page: N messages sealed by one device on one chain, then read by another
# device that holds the chain from index 0, each step timed alone.
MEASURE = """async ([count, length]) => {
  const m = await import("/js/e2ee.js");
  const sender = await m.makeDevice();
  const chainKey = m.newChainKey();
  const body = "x".repeat(length);
  const percentile = (values, p) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  };
  // performance.now() is coarse in a page that is not cross-origin isolated (0.1 ms):
  // the mean over all messages is the precise figure, the percentiles show the tail.
  const summary = (values) => ({
    mean_ms: values.reduce((a, b) => a + b, 0) / values.length,
    median_ms: percentile(values, 50),
    p95_ms: percentile(values, 95),
    p99_ms: percentile(values, 99),
  });
  const sealed = [];
  const send = [];
  let key = chainKey;
  for (let index = 0; index < count; index += 1) {
    const clientId = `bench-${index.toString().padStart(8, "0")}`;
    const started = performance.now();
    const step = await m.chainStep(key);
    key = step.next;
    const e2ee = await m.sealMessage({
      body, meeting: "1", senderDevice: "YmVuY2gtc2VuZGVyLWRldmlj", clientId, epoch: 1, index,
      messageKey: step.messageKey, ecdsaPrivate: sender.ecdsaPrivate,
    });
    send.push(performance.now() - started);
    sealed.push({ e2ee, clientId });
  }
  const chain = new m.ReceivedChain(0, chainKey);
  const read = [];
  for (const { e2ee, clientId } of sealed) {
    const started = performance.now();
    const ecdsaRaw = sender.ecdsaPublic;
    const ok = await m.verifyMessage({ e2ee, meeting: "1", clientId, ecdsaRaw });
    const messageKey = await chain.messageKey(e2ee.index);
    const opened = await m.openMessage({ e2ee, meeting: "1", clientId, messageKey });
    read.push(performance.now() - started);
    if (!ok || opened.body !== body) throw new Error("a message did not verify or open");
  }
  return { messages: count, body_chars: length, send: summary(send), read: summary(read),
           user_agent: navigator.userAgent };
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def static_server():
    handler = functools.partial(_Quiet, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure(messages: int = 500, length: int = 280) -> dict:
    """The per-message costs in Chromium (see the module's docstring)."""
    from playwright.sync_api import sync_playwright

    with static_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            # Any page of this origin will do: the module is imported into it.
            page.goto(base + "/favicon.svg")
            return page.evaluate(MEASURE, [messages, length])
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--length", type=int, default=280, help="characters per message")
    args = parser.parse_args()
    result = measure(args.messages, args.length)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
