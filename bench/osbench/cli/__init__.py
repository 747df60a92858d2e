"""The `osbench` command line: `entry` (the console script: signal handling before
any import), `program` (argv, printing, exit codes) and one module per command.

This package's own import is light on purpose: the entry point imports it before
it can install its signal handlers. Its names load `program` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_PROGRAM_NAMES = frozenset({"main", "main_and_exit", "build_parser", "EXIT_OK",
                            "EXIT_CHECK_FAILED", "EXIT_USER_ERROR", "EXIT_CLEANUP_INCOMPLETE",
                            "COMMANDS", "SDK_COMMANDS"})


def __getattr__(name: str) -> Any:
    if name not in _PROGRAM_NAMES:
        raise AttributeError(f"module 'osbench.cli' has no attribute {name!r}")
    return getattr(importlib.import_module("osbench.cli.program"), name)
