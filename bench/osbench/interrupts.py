"""A SIGINT or SIGTERM that arrives before a run has its own handlers in place.

While the interpreter imports (seconds on a busy machine), a signal handler's
KeyboardInterrupt is raised in whatever Python code runs. When that is a weakref
callback or a `__del__` (importlib's module-lock callback is one), CPython prints
"Exception ignored in ..." with a traceback, and goes on: the interrupt is lost
and the run would start anyway (seen once among ~50 start-up signals of test runs
beside busy loops). So the command line's start-up handler also remembers the
signal, and each later step asks `pending()`: the CLI before it runs a command,
the runner once its own handlers are in place. `quiet_unraisable()` keeps that
traceback off the terminal: the interrupt still ends as one line and exit 130.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

_received: list[str] = []


def remember_and_raise(signum: int, frame: FrameType | None) -> None:
    """Signal handler: note the signal, then raise KeyboardInterrupt as SIGINT does."""
    name = signal.Signals(signum).name
    _received.append(name)
    raise KeyboardInterrupt(name)


def pending() -> str | None:
    """The name of the first signal received since `clear()`, or None."""
    return _received[0] if _received else None


def clear() -> None:
    _received.clear()


def quiet_unraisable() -> None:
    """Install a `sys.unraisablehook` that drops the KeyboardInterrupt of a signal
    `remember_and_raise` has noted (it is acted on through `pending()`), and passes
    anything else on to the hook before it."""
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received:
            return
        previous(unraisable)

    sys.unraisablehook = hook
