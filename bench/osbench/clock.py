"""The one timing primitive: every duration osbench records comes from a Clock.

Durations use a monotonic source; wall stamps are timezone-aware UTC; the two
are never mixed. Against the simulated cloud the clock runs in *modelled*
seconds (`ScaledClock`), so poll intervals, deadlines and every reported
duration are in the model's time while the run takes `1/time_scale` of it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where durations and wall stamps come from."""

    #: True when seconds are modelled seconds of the simulated cloud.
    modelled: bool

    def monotonic(self) -> float:
        """Seconds since an arbitrary fixed point; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """Current wall time, timezone-aware UTC (modelled wall time when modelled)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` of this clock's time."""
        ...


class RealClock:
    """Wall-clock time: `perf_counter` for durations, UTC for stamps."""

    modelled = False

    def monotonic(self) -> float:
        return time.perf_counter()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Modelled time running `time_scale` times faster than real time.

    Modelled time starts at 0 when the clock is made; the modelled wall clock
    starts at the real UTC time of that moment.
    """

    modelled = True

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self.time_scale = time_scale
        self._origin = time.perf_counter()
        self._wall_origin = datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.perf_counter() - self._origin) * self.time_scale

    def now(self) -> datetime:
        return self._wall_origin + timedelta(seconds=self.monotonic())

    @property
    def wall_origin(self) -> datetime:
        """The modelled wall time at modelled time 0: `now()` minus `monotonic()`."""
        return self._wall_origin

    def to_real(self, modelled_seconds: float) -> float:
        """Real seconds that `modelled_seconds` of this clock take."""
        return modelled_seconds / self.time_scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.time_scale)
