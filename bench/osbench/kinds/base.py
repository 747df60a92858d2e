"""The interface every scenario kind implements, and what the runner gives it.

A kind is one module: a frozen dataclass of parameters (its schema), a
`run_case` coroutine, the tables it writes, and the metrics its SLA criteria
may name. The runner owns everything else (expansion, journal, signals,
cleanup order, SLA judging).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:  # pandas: only for results; validating a scenario needs none
    import pandas as pd

    from osbench.clock import Clock
    from osbench.scenario.model import Case
    from osbench.targets import Target

#: What a kind runs against: an OpenStack cloud (real or simulated), or hosts
#: (SSH inventory or the local lab), or this machine only.
TargetKind = Literal["cloud", "hosts", "local"]


class CaseContext(ABC):
    """What a running case may use: its target, clock, journal, progress, cleanup."""

    case: Case
    run_id: str
    #: `--allow-large` was given: counts above a kind's ceiling are confirmed.
    allow_large: bool
    target: Target
    clock: Clock
    seed: int
    log: logging.Logger

    @abstractmethod
    def record(self, table: str, row: Mapping[str, Any]) -> None:
        """Journal one row of `table` now (the case id is added)."""

    @abstractmethod
    def progress(self, **counters: int) -> None:
        """Show the case's live counters, e.g. `requested=100, active=40`."""

    @abstractmethod
    def add_cleanup(self, action: Callable[[], Awaitable[None]], label: str) -> None:
        """Run `action` when the case ends, however it ends (last added runs first)."""


class Kind(ABC):
    """A scenario kind. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Frozen dataclass of the kind's `params`; its fields are the schema.
    params_type: ClassVar[type]
    target: ClassVar[TargetKind]
    #: Table whose numeric columns SLA aggregates (`p95(col)`) may name.
    sample_table: ClassVar[str]
    sample_columns: ClassVar[Mapping[str, str]]
    #: Scalar metrics SLA criteria may name, with what each means.
    metrics: ClassVar[Mapping[str, str]]

    def check(self, params: Any) -> None:  # noqa: B027 - optional hook
        """Cross-field checks of one case's params; raise ValueError naming the key."""

    @abstractmethod
    def plan(self, case: Case) -> list[str]:
        """Every action that would write to the target, for `--dry-run`."""

    @abstractmethod
    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        """Run one case, journaling each measurement as it is taken."""

    @abstractmethod
    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        """The scalar metrics of one case from its tables (for SLA and reports)."""
