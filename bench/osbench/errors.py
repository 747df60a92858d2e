"""osbench's own exceptions.

Every seam to an outside system (cloud, hosts, HTTP, files) translates the
third-party exceptions it sees into these, so results group failures by our
types and the CLI can map them to exit codes without knowing library internals.
"""

from __future__ import annotations


class OsbenchError(Exception):
    """Base of every error osbench raises on purpose."""


class UserError(OsbenchError):
    """Bad input from the user: a scenario, an option, an unknown cloud.

    The CLI prints the message on one line (plus `hint`, if any) and exits 2;
    no traceback. The message says what was wrong and how to fix it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


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
