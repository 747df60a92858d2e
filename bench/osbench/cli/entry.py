"""The `osbench` command's entry point: signal handling first, then the CLI.

Importing the CLI and its command takes from a tenth of a second to seconds on
a busy machine, and a SIGINT or SIGTERM in that moment must end like any other
interrupt: one line and exit 130 (issue 13: a KeyboardInterrupt traceback, or a
silent -15). So before it installs its handlers this module imports only what
the interpreter has already loaded (os, signal, sys) and osbench's light package
modules (`osbench`, `osbench.cli`, `osbench.interrupts`: no third-party import).
"""

from __future__ import annotations

import os
import signal
import sys

from osbench.interrupts import pending, quiet_unraisable, remember_and_raise

EXIT_INTERRUPTED = 130


def say_interrupted(exc: BaseException) -> None:
    print(f"osbench: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)


def main() -> None:
    """`osbench` and `python -m osbench`."""
    quiet_unraisable()
    signal.signal(signal.SIGTERM, remember_and_raise)
    signal.signal(signal.SIGINT, remember_and_raise)
    try:
        from osbench.cli.program import main_and_exit

        if (name := pending()) is not None:  # its KeyboardInterrupt was swallowed
            raise KeyboardInterrupt(name)
    except KeyboardInterrupt as exc:
        say_interrupted(exc)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    main_and_exit()
