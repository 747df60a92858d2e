"""Progress: plain rate-limited lines for CI logs, a live table on a terminal."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest

from osbench.progress import Progress

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class HandClock:
    """A clock that moves only when the test says; it starts where the test says."""

    modelled = False

    def __init__(self, start: float) -> None:
        self.t = start

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def lines_of(out: io.StringIO) -> list[str]:
    return [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]


# 0.0: a machine just booted (perf_counter counts from boot); 59.0: up for a minute,
# less than the hour of interval; 1e6: up for 11 days.
@pytest.mark.parametrize("uptime_s", [0.0, 59.0, 1e6])
def test_plain_lines_are_rate_limited_and_end_with_a_summary(uptime_s: float) -> None:
    out = io.StringIO()
    clock = HandClock(uptime_s)
    progress = Progress(out, live=False, interval_s=3600, clock=clock)
    progress.start_case("count=10", 0, 2)
    progress.update(requested=10, active=0)  # the first change: always printed
    clock.t += 3599
    progress.update(requested=10, active=5)  # within the interval: not printed
    clock.t += 1
    progress.update(requested=10, active=6)  # the interval has passed: printed
    progress.update(requested=10, active=7)  # within the interval again: not printed
    progress.end_case("completed", "PASS x")
    progress.start_case("count=20", 1, 2)
    progress.update(requested=10, active=6)  # a new case's first change: printed
    progress.end_case("completed")
    assert lines_of(out) == [
        "case 1/2 count=10: started",
        "case 1/2 count=10: requested=10 active=0",
        "case 1/2 count=10: requested=10 active=6",
        "case 1/2 count=10: completed (requested=10 active=7) PASS x",
        "case 2/2 count=20: started",
        "case 2/2 count=20: requested=10 active=6",
        "case 2/2 count=20: completed (requested=10 active=6)",
    ]
    stamps = [line.split("]", 1)[0].strip("[ ") for line in out.getvalue().splitlines()]
    assert stamps == ["0.0s", "0.0s", "3600.0s", "3600.0s", "3600.0s", "3600.0s", "3600.0s"]


def test_the_real_clock_shows_the_first_change_whatever_the_uptime() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False, interval_s=1e12)  # longer than any uptime
    progress.start_case("default", 0, 1)
    progress.update(requested=3)
    assert lines_of(out)[1:] == ["case 1/1 default: requested=3"]


def test_live_mode_keeps_start_and_summary_lines() -> None:
    out = io.StringIO()
    progress = Progress(out, live=True)
    progress.start_case("default", 0, 1)
    progress.update(requested=3, phoned_home=3)
    progress.end_case("completed")
    progress.close()
    text = out.getvalue()
    assert "case 1/1 default: started" in text
    assert "case 1/1 default: completed (requested=3 phoned_home=3)" in text
