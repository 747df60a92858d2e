"""What every monitor source is: a Sampler that returns readings, or raises.

The session (`session.py`) calls `sample()` every interval, bounded by the
source's timeout, and journals what it returns; the sampler itself journals
nothing and never sleeps. It raises MonitorError (or anything else) for a
failed reading: the session records the first error of each source once,
counts the rest, and carries on.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from osbench.errors import OsbenchError


class MonitorError(OsbenchError):
    """A sample could not be taken or read (unreachable, timed out, garbage)."""


@dataclass(frozen=True)
class Reading:
    """One value of one metric (one row of the `monitor` table once journaled)."""

    metric: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


class Sampler(ABC):
    """One source: `open` once per case, `sample` each interval, `close` at the end."""

    #: The `source` column of its rows, e.g. "processes@local", "prometheus:sim".
    source: str
    #: Real seconds one `sample()` may take before it counts as failed.
    timeout_s: float = 10.0

    async def open(self) -> None:  # noqa: B027 - optional
        """Connect or prepare; an error here is recorded like a failed sample."""

    @abstractmethod
    async def sample(self) -> list[Reading]:
        """Take one reading of every metric now; raise on failure."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release what `open` took; must not raise."""


def host_script(function: Callable[..., object], call: str) -> str:
    """`function`'s own source and the line `call` that prints its result as JSON: a
    probe for `python3 -c` on a host, in one command. Build it once per process
    (`functools.cache` at the caller): reading the source is file I/O."""
    return ("from __future__ import annotations\n" + inspect.getsource(function)
            + "import json, sys\n" + call + "\n")
