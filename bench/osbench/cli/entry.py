"""The `osbench` command's entry point: signal handling first, then the CLI.

Importing the CLI and its command takes from a tenth of a second to seconds on
a busy machine, and a SIGINT or SIGTERM in that moment must end like any other
interrupt: one line and exit 130 (issue 13: a KeyboardInterrupt traceback, or a
silent -15). So this module imports only what the interpreter has already
loaded (os, signal, sys) before it installs the handler.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130


def sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: raise KeyboardInterrupt, as SIGINT does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def say_interrupted(exc: BaseException) -> None:
    print(f"osbench: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)


def main() -> None:
    """`osbench` and `python -m osbench`."""
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    try:
        from osbench.cli import main_and_exit
    except KeyboardInterrupt as exc:
        say_interrupted(exc)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    main_and_exit()
