"""A logging filter that lets the same message through once per interval,
with a count of the ones it held back.

Under attack one cause repeats per event: asyncio's accept loop logged
"socket.accept() out of system resource" with a traceback for every attempt
while the process was out of file descriptors, 233 MB of stderr in 100 s.
One line per interval says the same thing, and its count says how often.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Distinct messages remembered at once; past this, windows that have ended
#: are forgotten (messages are keyed by template, so a few dozen is usual).
_MAX_KEYS = 1024
#: The part of a message that identifies it: its first line, this long.
#: asyncio's exception handler appends the socket's repr, different each time.
_KEY_CHARS = 200


@dataclass
class _Window:
    start: float
    held: int = 0


class Throttle(logging.Filter):
    """Pass a record only if no record like it passed in the last `interval_s`.

    Records are alike when they come from the same logger at the same level
    with the same first line of their (unformatted) message. The first one
    after a window ends is passed with "[N more like this in the last S s]"
    appended, so nothing is lost but the repetition.
    """

    def __init__(self, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self._clock = clock
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).partition("\n")[0][:_KEY_CHARS])
        now = self._clock()
        window = self._windows.get(key)
        if window is not None and now - window.start < self.interval_s:
            window.held += 1
            return False
        if window is not None and window.held:
            # Appended to the template: formatted with the record's own args.
            record.msg = (f"{record.msg} [{window.held} more like this in the last "
                          f"{now - window.start:.0f} s]")
        if window is None and len(self._windows) >= _MAX_KEYS:
            self._forget_ended(now)
        self._windows[key] = _Window(now)
        return True

    def _forget_ended(self, now: float) -> None:
        ended = [k for k, w in self._windows.items() if now - w.start >= self.interval_s]
        for key in ended or list(self._windows):
            del self._windows[key]

    def attach(self, *logger_names: str) -> None:
        """Filter these loggers (only what they log themselves, not their
        children's records); undo with `detach`."""
        for name in logger_names:
            logging.getLogger(name).addFilter(self)

    def detach(self, *logger_names: str) -> None:
        for name in logger_names:
            logging.getLogger(name).removeFilter(self)
