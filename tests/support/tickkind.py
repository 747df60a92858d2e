"""`tick`: a scenario kind for testing the runner itself.

It records one row per tick on this machine and can fail, hang or leave a
cleanup marker on demand, so the runner's journal, signal handling, cleanup
order and SLA judging can be tested without a cloud. It is registered only by
tests (and by `tests/support/osbench_tick.py` for subprocess tests).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from osbench import kinds
from osbench.errors import TargetError
from osbench.kinds import CaseContext, Kind, KindSpec
from osbench.scenario import Case
from osbench.scenario.schema import Duration, NonNegativeInt, PositiveInt


@dataclass(frozen=True)
class TickParams:
    ticks: PositiveInt
    interval_s: Duration = 0.0
    value: float = 1.0
    #: Raise a TargetError after this many ticks (0: never).
    fail_after: NonNegativeInt = 0
    #: A case of at least this many ticks raises a TargetError at its last (0: never):
    #: an error that only larger points of a search meet.
    fail_from: NonNegativeInt = 0
    #: A file the case's cleanup appends the case id to.
    cleanup_marker: str | None = None
    #: How long the cleanup takes (to test signals that arrive during it).
    cleanup_delay_s: Duration = 0.0
    #: Print "recorded N" on stderr after each tick, for the kill tests.
    announce: bool = False

    def __post_init__(self) -> None:
        if self.fail_after > self.ticks:
            raise ValueError(f"fail_after ({self.fail_after}) is beyond ticks ({self.ticks})")


class TickKind(Kind):
    def plan(self, case: Case) -> list[str]:
        p: TickParams = case.params
        return [f"append to {p.cleanup_marker}"] if p.cleanup_marker else []

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: TickParams = case.params
        if p.cleanup_marker:
            marker = Path(p.cleanup_marker)

            async def mark() -> None:
                await asyncio.sleep(p.cleanup_delay_s)
                await asyncio.to_thread(_append_line, marker, case.case_id)

            ctx.add_cleanup(mark, f"marker {marker}")
        for i in range(p.ticks):
            if p.fail_after and i == p.fail_after:
                raise TargetError(f"tick {i}: injected failure")
            if p.fail_from and p.ticks >= p.fail_from and i == p.ticks - 1:
                raise TargetError(f"tick {i} of {p.ticks}: injected failure")
            ctx.record("ticks", {"i": i, "value": p.value * (i + 1), "t": ctx.clock.monotonic()})
            ctx.progress(ticks=i + 1)
            if p.announce:
                print(f"recorded {i + 1}", file=sys.stderr, flush=True)
            await ctx.clock.sleep(p.interval_s)

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        return {"ticks_done": float(len(tables.get("ticks", pd.DataFrame())))}


def _append_line(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text + "\n")


TICK = KindSpec(
    name="tick", description="records one row per tick (runner tests only)",
    params_type=TickParams, target="local", sample_table="ticks",
    sample_columns={"value": "the tick's value"}, metrics={"ticks_done": "ticks recorded"},
    implementation=TickKind)


def register() -> None:
    kinds.register(TICK)
