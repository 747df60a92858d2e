"""Commands on this machine, optionally inside a network namespace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence

from osbench.errors import HostError
from osbench.hosts.base import CLOCK, CommandResult, checked, command_text, timed_out
from osbench.netns import exec_argv


class LocalHost:
    """This machine as a Host: asyncio subprocesses, never a shell.

    With `netns`, every command runs as `ip netns exec NETNS ...` (needs root).
    Each command gets its own process group, so a timeout kills the whole of
    it, children included.
    """

    def __init__(self, name: str = "local", netns: str | None = None) -> None:
        self.name = name
        self.netns = netns

    def __repr__(self) -> str:
        return f"LocalHost({self.name!r}, netns={self.netns!r})"

    async def run(self, argv: Sequence[str], *, timeout_s: float = 60.0,
                  check: bool = True) -> CommandResult:
        argv = tuple(argv)
        if not argv:
            raise ValueError("empty command")
        full = exec_argv(self.netns, argv)
        start = CLOCK.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *full, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except FileNotFoundError:
            raise HostError(f"command not found: {full[0]!r}", host=self.name,
                            command=command_text(argv)) from None
        except OSError as exc:
            raise HostError(f"cannot start command: {exc}", host=self.name,
                            command=command_text(argv)) from None
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            await _kill_group(proc)
            raise timed_out(self.name, argv, timeout_s) from None
        except asyncio.CancelledError:
            await _kill_group(proc)
            raise
        result = CommandResult(
            host=self.name, argv=argv, exit_status=_exit_status(proc.returncode),
            stdout=stdout.decode(errors="replace"), stderr=stderr.decode(errors="replace"),
            duration_s=CLOCK.monotonic() - start)
        return checked(result, check)

    async def close(self) -> None:
        """Nothing to release: every command is its own process."""


def _exit_status(returncode: int | None) -> int:
    """A shell-style status: killed by signal N reads as 128 + N, like ssh reports it."""
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
