"""The `osbench` command: the only module that reads argv, prints for humans
and chooses the exit code.

Exit codes: 0 ok; 1 a check failed (SLA breach, regression); 2 a user error
(one line on stderr); 130 interrupted. Anything else is a bug and keeps its
traceback.

Every command is a module in `bench.commands` with `add_parser(subparsers)`
and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from bench import __version__
from bench.errors import UserError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

#: Command modules under bench.commands, in the order `--help` lists them.
COMMANDS = ("run", "validate", "report", "compare", "cleanup", "sim", "lab", "minicloud")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osbench",
        description="Benchmark and load-test harness for OpenStack clouds.",
    )
    parser.add_argument("--version", action="version", version=f"osbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"bench.commands.{name}")
        module.add_parser(subparsers)
    return parser


def quiet_sdk_warnings() -> None:
    """openstacksdk warns about its own internals on every connect and proxy call;
    users can do nothing about them, and they bury osbench's own output."""
    try:
        from openstack import warnings as sdk_warnings
    except ImportError:
        return
    for category in (sdk_warnings.RemovedInSDK50Warning, sdk_warnings.RemovedInSDK60Warning,
                     sdk_warnings.RemovedFieldWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_sdk_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"osbench: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("osbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
