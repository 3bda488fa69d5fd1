"""Start Daphne for this app: ``python -m supportgroups.serve [daphne's options] APP``.

Daphne as it is, but with one change to its websockets: a message larger than
``CHAT_MAX_FRAME_BYTES`` is read to its end without being kept, and answered with the
protocol's ``error`` frame (``frame_too_large``) on a socket that stays open.

Plain Daphne drops the connection (no close frame: the browser sees 1006 and retries)
for a message over its own limit (1 MiB, ``--websocket-max-message-size``), so the
app's answer to an oversized frame was only ever seen between 16 KiB and 1 MiB. Here
memory stays bounded by the app's own limit whatever a client sends, and Daphne's own
limits are not needed.
"""

import json

from daphne import ws_protocol
from daphne.cli import CommandLineInterface
from django.conf import settings

FRAME_TOO_LARGE = json.dumps(
    {"type": "error", "code": "frame_too_large", "message": "That frame is too large."}
).encode()


class BoundedWebSocketProtocol(ws_protocol.WebSocketProtocol):
    oversized = False

    def onConnect(self, request):
        # Our own limit below replaces autobahn's, which fails the connection.
        self.maxMessagePayloadSize = 0
        self.maxFramePayloadSize = 0
        return super().onConnect(request)

    def onMessageBegin(self, isBinary):  # noqa: N803 - autobahn's names
        super().onMessageBegin(isBinary)
        self.oversized = False

    def onMessageFrameBegin(self, length):
        super().onMessageFrameBegin(length)
        if self.message_data_total_length > settings.CHAT_MAX_FRAME_BYTES:
            self.oversized = True
            self.message_data = []

    def onMessageFrameData(self, payload):
        if not self.oversized:
            super().onMessageFrameData(payload)

    def onMessageFrameEnd(self):
        if self.oversized:
            self.frame_data = None
            return
        super().onMessageFrameEnd()

    def onMessageEnd(self):
        if not self.oversized:
            return super().onMessageEnd()
        self.oversized = False
        self.message_data = []
        if not self.muted and self.state == self.STATE_OPEN:
            self.sendMessage(FRAME_TOO_LARGE, False)
        return len(self.data) > 0


def main() -> None:
    ws_protocol.WebSocketFactory.protocol = BoundedWebSocketProtocol
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
