"""What a scenario kind is: a light `KindSpec` (what validation, the CLI, the pytest
plugin and compare need) and the `Kind` that runs its cases (imported only to run).

A kind is one package under `osbench/kinds/` whose `__init__.py` defines `SPEC`.
Everything heavy (the cloud SDK, aiohttp, pandas, matplotlib) is named in the spec
as a "module:attribute" string and imported on first use, so `osbench validate`
and the pytest plugin's start-up import none of it. The runner owns everything
else (expansion, journal, signals, cleanup order, SLA judging).
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pandas: only for results; validating a scenario needs none
    from pathlib import Path

    import pandas as pd

    from osbench.clock import Clock
    from osbench.monitors.attribution import Symptom
    from osbench.report.model import Section
    from osbench.report.story import Chapter
    from osbench.scenario.model import Case, TargetSpec
    from osbench.targets import Target

#: What a kind runs against: an OpenStack cloud (real or simulated), or hosts
#: (SSH inventory or the local lab), or this machine only.
TargetKind = Literal["cloud", "hosts", "local"]

@dataclass(frozen=True)
class MetricSpec:
    """One metric `osbench compare` compares between two runs of a kind."""

    name: str
    table: str
    #: "samples": compare the column's values (median shown); "rate": the share
    #: of rows whose `column` equals `success` (percent shown).
    kind: Literal["samples", "rate"]
    column: str
    lower_is_better: bool = True
    #: Relative change (samples) or percentage points (rate) below which a
    #: difference is never called worse or better.
    default_threshold_pct: float = 10.0
    success: str = "ok"
    #: Compare separately per value of this column (e.g. rootwrap's mode).
    split_by: str | None = None


@dataclass(frozen=True)
class KindOption:
    """A command-line option (`osbench run`, and the pytest plugin) a kind needs.

    `name` gives the flag (`phone_home_url` -> `--phone-home-url`). With `metavar`
    the option takes a value, checked by `parse` (raise ValueError saying what is
    wrong); without, it is an on/off flag. With `param`, the value replaces that
    field of every scenario of the kind; otherwise the kind reads it from
    `CaseContext.options`.
    """

    name: str
    help: str
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    param: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class KindSpec:
    """Everything about a kind that needs no heavy import, and where the rest lives."""

    name: str
    description: str
    #: Frozen dataclass of the kind's `params`; its fields are the schema.
    params_type: type
    target: TargetKind
    #: Table whose numeric columns SLA aggregates (`p95(col)`) may name.
    sample_table: str
    sample_columns: Mapping[str, str]
    #: Scalar metrics SLA criteria may name, with what each means.
    metrics: Mapping[str, str]
    #: The `Kind` that runs cases: a class, or "module:Class" imported when needed.
    implementation: type[Kind] | str
    #: What `osbench compare` compares.
    compare: tuple[MetricSpec, ...] = ()
    #: Options the CLI and the pytest plugin offer for this kind.
    options: tuple[KindOption, ...] = ()
    #: "module:function": `sections(runs, options) -> list[Section]` for reports
    #: (None: the report shows the runs' provenance and SLA verdicts only).
    report: str | Callable[..., list[Section]] | None = None
    #: "module:ATTR": story name -> the chapters this kind tells in it.
    chapters: str | Mapping[str, Sequence[Chapter]] | None = None
    #: "module:function": `cleanup(run, cloud) -> CleanupReport-like` for
    #: `osbench cleanup RUN` (None: the kind leaves nothing behind).
    cleanup: str | Callable[..., Any] | None = None
    #: "module:function": `symptoms(tables) -> list[Symptom]`, what went wrong in one
    #: case from its own tables (each cut to the case's rows), for the monitors'
    #: attribution (None: the kind names no symptom, so no bottleneck either).
    symptoms: str | Callable[..., Sequence[Symptom]] | None = None
    #: Cross-field checks of one case's params; raise ValueError naming the key.
    check: Callable[[Any], None] | None = field(default=None, compare=False)
    #: The target one case's params need, when that depends on them (the audit:
    #: no cloud for a versions-only audit); None: always `target`.
    target_of: Callable[[Any], TargetKind] | None = field(default=None, compare=False)

    def target_kind(self, params: Any) -> TargetKind:
        """What a case with these params runs against."""
        return self.target_of(params) if self.target_of is not None else self.target

    def kind(self) -> Kind:
        """The implementation, imported on first use."""
        impl = self.implementation
        cls = _resolve(impl) if isinstance(impl, str) else impl
        return cls()

    def report_sections(self) -> Callable[..., list[Section]] | None:
        return _resolve(self.report) if isinstance(self.report, str) else self.report

    def story_chapters(self) -> Mapping[str, Sequence[Chapter]]:
        if self.chapters is None:
            return {}
        return _resolve(self.chapters) if isinstance(self.chapters, str) else self.chapters

    def cleanup_function(self) -> Callable[..., Any] | None:
        return _resolve(self.cleanup) if isinstance(self.cleanup, str) else self.cleanup

    def symptom_function(self) -> Callable[..., Sequence[Symptom]] | None:
        return _resolve(self.symptoms) if isinstance(self.symptoms, str) else self.symptoms


def _resolve(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


class CaseContext(ABC):
    """What a running case may use: its target, clock, journal, progress, cleanup."""

    case: Case
    run_id: str
    #: Values of the kind's options given to this run (`KindSpec.options`).
    options: Mapping[str, Any]
    target: Target
    #: The case's target settings with the command line's on top: what `target`
    #: was opened from (`--hosts FILE` is `target_spec.hosts`).
    target_spec: TargetSpec
    clock: Clock
    #: The case's start on `clock`: every `t_s` of the case is measured from it.
    t0: float
    seed: int
    log: logging.Logger
    #: The run's directory (results/<run-id>/), for files kept with the run; read-only.
    run_path: Path

    @abstractmethod
    def record(self, table: str, row: Mapping[str, Any]) -> None:
        """Journal one row of `table` now (the case id is added)."""

    def record_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Journal rows of `table` now, from any thread (the registration server's
        own): the runner's context writes them at once under the journal's lock."""
        for row in rows:
            self.record(table, row)

    @abstractmethod
    def progress(self, **counters: int) -> None:
        """Show the case's live counters, e.g. `requested=100, active=40`."""

    @abstractmethod
    def add_cleanup(self, action: Callable[[], Awaitable[None]], label: str) -> None:
        """Run `action` when the case ends, however it ends (last added runs first)."""


class Kind(ABC):
    """How a kind runs: the part of a kind that may import heavy libraries."""

    @abstractmethod
    def plan(self, case: Case) -> list[str]:
        """Every action that would write to the target, for `--dry-run`."""

    @abstractmethod
    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        """Run one case, journaling each measurement as it is taken."""

    async def preflight(self, case: Case, target: Target,  # noqa: B027 - optional
                        options: Mapping[str, Any]) -> None:
        """Checks before a capacity search's first point, `case` being the search at its
        max (boot: the quotas); raise an OsbenchError saying what would not fit."""

    @abstractmethod
    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        """The scalar metrics of one case from its tables (for SLA and reports)."""
