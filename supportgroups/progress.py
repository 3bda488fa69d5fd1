"""A dependency-free progress line for long management commands."""

import time


class ProgressBar:
    def __init__(self, stream, *, label: str, total: int | None = None, enabled: bool = True):
        self.stream = stream
        self.label = label
        self.total = total
        self.enabled = enabled and stream.isatty() if hasattr(stream, "isatty") else enabled
        self._last_draw = 0.0
        self.count = 0

    def update(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if self.enabled and now - self._last_draw > 0.2:
            self._last_draw = now
            self._draw()

    def advance(self, by: int = 1) -> None:
        self.update(self.count + by)

    def _draw(self) -> None:
        if self.total:
            width = 30
            done = int(width * min(self.count, self.total) / self.total)
            bar = "#" * done + "-" * (width - done)
            self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total}", ending="")
        else:
            self.stream.write(f"\r{self.label}: {self.count}", ending="")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.count:
            self._draw()
            self.stream.write("")
