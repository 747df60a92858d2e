"""What every host transport shares: the result of a command, the Host protocol,
and the one way a failed command becomes a HostError."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from osbench.clock import RealClock
from osbench.errors import HostError

#: Durations of commands come from the project's one timing primitive.
CLOCK = RealClock()

#: How much of stderr a failure message quotes: enough for the error line of
#: ethtool, iperf3 or a shell, not a whole log.
STDERR_TAIL_CHARS = 400


@dataclass(frozen=True)
class CommandResult:
    """A finished command: where it ran, what it printed, how it ended."""

    host: str
    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float


class Host(Protocol):
    """A machine (or namespace) that runs commands: LocalHost or SSHHost."""

    name: str

    async def run(self, argv: Sequence[str], *, timeout_s: float = 60.0,
                  check: bool = True) -> CommandResult:
        """Run `argv` (quoted safely, never through a local shell) with no stdin.

        With `check`, a non-zero exit status raises HostError; a command still
        running after `timeout_s` is killed and raises HostError either way.
        """
        ...

    async def close(self) -> None:
        """Release connections; the host may not be used afterwards."""
        ...


def command_text(argv: Sequence[str]) -> str:
    """`argv` as one shell-safe line, for SSH and for error messages."""
    return shlex.join(argv)


def stderr_tail(stderr: str) -> str:
    """The end of `stderr` on one line, for an error message."""
    text = " ".join(stderr.split())
    if len(text) > STDERR_TAIL_CHARS:
        text = "..." + text[-STDERR_TAIL_CHARS:]
    return text


def checked(result: CommandResult, check: bool) -> CommandResult:
    """`result`, or a HostError when `check` and it exited non-zero."""
    if check and result.exit_status != 0:
        tail = stderr_tail(result.stderr)
        raise HostError(
            f"exit status {result.exit_status}" + (f": {tail}" if tail else " (no stderr)"),
            host=result.host,
            command=command_text(result.argv),
        )
    return result


def timed_out(host: str, argv: Sequence[str], timeout_s: float) -> HostError:
    """The error for a command killed after `timeout_s`."""
    return HostError(f"timed out after {timeout_s:g} s and was killed",
                     host=host, command=command_text(argv))
