"""The `osbench` command: the only module that reads argv, prints for humans
and chooses the exit code.

Exit codes: 0 ok; 1 a check failed (SLA breach, regression), or this machine
or a tool it ran failed (MachineError: one line on stderr naming the tool,
with the tail of its output); 2 a user error (one line on stderr); 3 cleanup
could not prove that everything the run created is gone (`osbench cleanup
RUN` finds the rest); 130 interrupted. Anything else is a bug and keeps its
traceback.

Every command is a module in `osbench.cli.commands` with `add_parser(subparsers)`
and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from osbench import __version__, interrupts
from osbench.cli.entry import EXIT_INTERRUPTED, say_interrupted
from osbench.errors import MachineError, UserError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_CLEANUP_INCOMPLETE = 3

#: Command modules under osbench.cli.commands, in the order `--help` lists them.
COMMANDS = ("run", "validate", "report", "compare", "cleanup", "sim", "lab", "minicloud")
#: The commands that call OpenStack APIs through openstacksdk.
SDK_COMMANDS = frozenset({"run", "cleanup", "sim", "minicloud"})


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given `argv` naming a command, only that command's module
    is imported (the others pull in pandas, scipy, matplotlib, openstacksdk: 3 s
    of start-up that `osbench validate` does not need)."""
    parser = argparse.ArgumentParser(
        prog="osbench",
        description="Benchmark and load-test harness for OpenStack clouds.",
    )
    parser.add_argument("--version", action="version", version=f"osbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    named = words[0] if words and words[0] in COMMANDS else None
    for name in COMMANDS if named is None else (named,):
        module = importlib.import_module(f"osbench.cli.commands.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # osbench.cli.entry already did this for the command; again here for callers of
    # main() in-process (their handlers are put back at the end). A signal while
    # parsing or importing the command ends as an interrupt (one line, 130), even
    # one whose KeyboardInterrupt an import swallowed (osbench.interrupts); a
    # running scenario routes both signals to its own handlers.
    interrupts.clear()
    previous = {sig: signal.signal(sig, interrupts.remember_and_raise)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.command in SDK_COMMANDS:  # importing openstacksdk costs ~0.5 s
            from osbench.cloudclient import quiet_sdk_warnings

            quiet_sdk_warnings()
        if (name := interrupts.pending()) is not None:  # swallowed while importing
            raise KeyboardInterrupt(name)
        return int(args.func(args))
    except UserError as exc:
        print(f"osbench: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MachineError as exc:  # apt-get, ip, a service that would not start
        print(f"osbench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except KeyboardInterrupt as exc:
        say_interrupted(exc)
        return EXIT_INTERRUPTED
    except ImportError as exc:
        # A signal inside a C extension's initialisation (matplotlib's, while
        # start-up imports) surfaces as "ImportError: initialization failed".
        interrupt = _interrupt_behind(exc)
        if interrupt is None:
            raise
        say_interrupted(interrupt)
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that caused `exc`, if any (bounded walk of its chain)."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None or isinstance(cause, KeyboardInterrupt):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def main_and_exit() -> None:
    """The `osbench` command and `python -m osbench`: `main`, then exit with its code.
    A signal that lands once the code is chosen (during interpreter shutdown) is
    ignored: before, one could still turn a handled 130 into a death by SIGINT.
    Worker threads stuck on a silent API do not hold the exit."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stuck = any(t.is_alive() and not t.daemon for t in threading.enumerate()
                if t is not threading.main_thread())
    # A worker still in an SDK call to a silent API (it ends at api_timeout) would
    # hold the exit; and after a KeyboardInterrupt that went through C code run by
    # PyRun_* during start-up imports (1 in ~20 SIGINTs at 0.5 s), CPython still
    # ends the process by SIGINT (-2), whatever code we return. Everything
    # osbench wrote is on disk: exit now.
    if stuck or code == EXIT_INTERRUPTED:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
