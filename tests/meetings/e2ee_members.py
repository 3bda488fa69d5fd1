"""A member in an E2EE room, as the socket tests drive one: a test Socket plus the reference
client's device (tests/e2ee_client.py), answering what a browser answers (devices, keys, key
requests, keys_needed, epoch_stale) while the test waits for what it is looking for."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.e2ee_client import E2EEDevice
from tests.meetings.conftest import build_world, cookie, give_place, make_person
from tests.sockets import Socket


def e2ee_world():
    """The meetings tests' world with E2EE meetings, and a third member, Moss."""
    world = build_world(e2ee_meetings=True)
    world.moss = give_place(world.group, make_person("moss-login-handle"), "Moss")
    return world


async def enter(world, membership, **kwargs) -> Member:  # noqa: ANN001
    """The membership's person opens the world's room (a new session) with a device."""
    return await Member.enter(world.path, await cookie(membership), world.meeting.pk, **kwargs)


@dataclass
class Member:
    socket: Socket
    device: E2EEDevice
    # Messages received, by seq (frames as sent), and what this device made of each.
    messages: dict[int, dict] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)

    @classmethod
    async def enter(cls, path: str, cookie: str, meeting_id: int, *, device=None) -> Member:  # noqa: ANN001
        """Open the room; register a device unless the session has this one already."""
        socket = await Socket(path, cookie).__aenter__()
        assert socket.connected, socket.refused
        member = cls(socket, device or E2EEDevice(meeting_id))
        e2ee = socket.hello["e2ee"]
        member.take_devices(e2ee["devices"])
        known = e2ee["device"]
        member.device.server_epoch = e2ee["epoch"] or 0
        if known is None or known["id"] != member.device.id:
            await socket.send(member.device.register_frame())
            registered = await member.wait_for("device_registered")
            member.device.id = registered["device"]["id"]
        return member

    async def leave(self) -> None:
        await self.socket.__aexit__(None, None, None)

    def take_devices(self, devices: list[dict]) -> None:
        self.device.devices = {d["id"]: d for d in devices}

    def present_others(self) -> list[str]:
        return [
            d["id"]
            for d in self.device.devices.values()
            if d["present"] and d["allowed"] and d["id"] != self.device.id
        ]

    async def start_epoch(self) -> dict:
        """A new sending key, shared with every present allowed device and this one."""
        self.device.new_epoch()
        return await self.share([self.device.id, *self.present_others()])

    async def share(self, recipients: list[str]) -> dict:
        await self.socket.send(self.device.share_frame(recipients))
        return await self.wait_for("keys_shared")

    async def say(self, body: str, client_id: str) -> dict:
        """Send a message as a browser does: answer keys_needed and epoch_stale, resend,
        until it is acknowledged. Returns the ack (with the franking key added)."""
        if self.device.sending is None:
            await self.start_epoch()
        for _ in range(5):
            frame, franking_key = self.device.seal(body, client_id)
            await self.socket.send(frame)
            answer = await self.wait_for("ack", "error")
            if answer["type"] == "ack":
                return {**answer, "franking_key": franking_key}
            if answer["code"] == "keys_needed":
                # A device that came a moment ago may not be in our list yet.
                while not set(answer["devices"]) <= set(self.device.devices):
                    await self.wait_for("devices")
                await self.share(answer["devices"])
            elif answer["code"] == "epoch_stale":
                await self.start_epoch()
            else:
                raise AssertionError(answer)
        raise AssertionError("never acknowledged")

    async def wait_for(self, *kinds: str, timeout: float = 2) -> dict:
        """The next frame of one of these types, taking in every other frame meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.socket.receive(timeout=max(deadline - time.monotonic(), 0.01))
            self.take(frame)
            if frame["type"] in kinds:
                return frame

    async def read_until(self, seq: int, timeout: float = 2) -> None:
        deadline = time.monotonic() + timeout
        while seq not in self.messages:
            await self.wait_for("message", timeout=max(deadline - time.monotonic(), 0.01))

    async def drain(self, quiet: float = 0.3) -> None:
        """Take in whatever arrives until the socket is quiet."""
        while not await self.socket.communicator.receive_nothing(timeout=quiet):
            self.take(await self.socket.receive())

    def take(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "devices":
            self.take_devices(frame["devices"])
        elif kind == "keys":
            self.device.take_keys(frame["shares"])
        elif kind == "message":
            self.messages[frame["seq"]] = frame
        elif kind == "error":
            self.errors.append(frame)

    def read(self, seq: int) -> dict:
        return self.device.open(self.messages[seq])
