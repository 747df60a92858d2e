"""osbench's own exceptions.

Every seam to an outside system (cloud, hosts, HTTP, files, tools on this
machine) translates the third-party exceptions it sees into these, so results
group failures by our types and the CLI can map them to exit codes without
knowing library internals:

- UserError (exit 2): what was asked, or how: an option, a file, a missing
  `sudo`, a machine osbench refuses to touch. Fixed by changing the command.
- MachineError (exit 1): this machine, or a tool osbench ran on it, failed: a
  package install, a service that will not start, a namespace that cannot be
  made, a tool that is not installed. Fixed by repairing the machine.
- TargetError: the cloud or host under test failed (the case records it).
- CleanupIncomplete (exit 3): a run's cleanup could not prove it is done.
"""

from __future__ import annotations

from collections.abc import Iterable


class OsbenchError(Exception):
    """Base of every error osbench raises on purpose; `hint`, if any, says what to do."""

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class UserError(OsbenchError):
    """Bad input from the user: a scenario, an option, an unknown cloud, a command
    that needs root run without it.

    The CLI prints the message on one line (plus `hint`, if any) and exits 2;
    no traceback. The message says what was wrong and how to fix it.
    """


class MachineError(OsbenchError):
    """This machine, or an outside tool osbench ran on it, failed: `apt-get`, a
    service that exits during start-up, `ip netns add`, a tool not installed.

    The CLI prints it on one line (plus `hint`, if any) and exits 1, no traceback.
    The message names the tool or command that failed and ends with the tail of
    its output, on one line.
    """


class StillRunning(MachineError):
    """Processes signalled to stop outlived SIGKILL (in D state, say); `pids`."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = sorted(pids)
        super().__init__(f"pids {self.pids} outlived SIGKILL")


class ScenarioError(UserError):
    """A scenario or inventory file is invalid.

    `file`, `line` and `key_path` locate the mistake; the message names the
    bad value and what would be valid.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.key_path = key_path
        self.bare_message = message

    def __str__(self) -> str:
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.key_path}:" if self.key_path else ""
        text = f"{where}:{key} {self.bare_message}"
        return f"{text} ({self.hint})" if self.hint else text


class TargetError(OsbenchError):
    """The target (cloud or host) failed in a way that ends the case."""


class CloudError(TargetError):
    """An OpenStack API call failed; `status_code` is the HTTP status if any."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HostError(TargetError):
    """A command on a host (local, namespace or SSH) failed or could not run."""

    def __init__(self, message: str, *, host: str, command: str | None = None) -> None:
        super().__init__(f"{host}: {message}" + (f" (command: {command})" if command else ""))
        self.host = host
        self.command = command


class CloudOutcomeUnknown(CloudError):
    """A create whose outcome is unknown (proxy 504, read timeout): the servers may
    exist. Reconcile by listing; never send the create again."""


class CleanupIncomplete(OsbenchError):
    """Cleanup ended without proof that everything the run created is gone: a
    create still unanswered, servers a create of unknown outcome may still add,
    or deletions that did not finish. `osbench cleanup RUN` finds the rest."""
