"""One case's monitors: every source sampled each interval, every reading journaled.

The runner opens a session before the kind runs the case and closes it after
the case's cleanups (deletes are API load too), in every ending. Each sampler
runs in a task of its own, so a slow source never delays another: it samples
on the ticks `t0 + k * interval` of the case's clock, skips ticks it missed
while a sample was still running (a sample is bounded by the source's
timeout), and journals each reading as one `monitor` row.

A failed sample (an exception, a timeout, more series than the cap) is
counted; the first one of each source is journaled at once as a row of
`monitor_errors`, so a killed run still says which monitor failed and why.
Closing the session journals one `monitor_sources` row per source: samples
taken and failed, and the first and last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osbench.monitors.config import MAX_SERIES_PER_SAMPLE, MonitorsConfig
from osbench.monitors.sampler import MonitorError, Reading, Sampler

if TYPE_CHECKING:
    from osbench.hosts.base import Host
    from osbench.kinds.base import CaseContext
    from osbench.monitors.guru import GuruWatcher

log = logging.getLogger("osbench.monitors")

#: Longest error text journaled: the line that says what went wrong, not a page.
ERROR_CHARS = 300


def describe_error(exc: BaseException) -> str:
    """One line: the exception's type and first line, bounded."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = (text if text and isinstance(exc, MonitorError) else
            f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 3] + "..."


def monitor_row(t_s: float, source: str, reading: Reading) -> dict[str, Any]:
    """A reading as a `monitor` row: labels become `label.<name>` columns."""
    return {"t_s": t_s, "source": source, "metric": reading.metric, "value": reading.value,
            **{f"label.{k}": v for k, v in reading.labels.items()}}


@dataclass
class SourceStats:
    samples: int = 0
    failed: int = 0
    readings: int = 0
    first_error: str | None = None
    last_error: str | None = None


@dataclass
class MonitorSession:
    """The samplers of one case and the tasks that run them."""

    config: MonitorsConfig
    ctx: CaseContext
    samplers: list[Sampler]
    #: Called once when the session closes (e.g. detach from the cloud client).
    on_close: list[Callable[[], Any]] = field(default_factory=list)
    #: Hosts the session opened itself (closed with it).
    hosts: Mapping[str, Host] = field(default_factory=dict)
    stats: dict[str, SourceStats] = field(default_factory=dict)
    #: Fed every sample as it is journaled (a Guru Meditation trigger).
    watchers: list[GuruWatcher] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closing: bool = False

    def start(self) -> None:
        for sampler in self.samplers:
            self.stats[sampler.source] = SourceStats()
            self._tasks.append(asyncio.create_task(self._loop(sampler),
                                                   name=f"monitor {sampler.source}"))

    def t_s(self) -> float:
        """Now on the case's clock, from the case's start."""
        return self.ctx.clock.monotonic() - self.ctx.t0

    def failed(self, source: str, exc: BaseException | str) -> None:
        """Count a failed sample of `source`; journal the first one at once."""
        stats = self.stats.setdefault(source, SourceStats())
        text = exc if isinstance(exc, str) else describe_error(exc)
        stats.failed += 1
        stats.last_error = text
        if stats.first_error is None:
            stats.first_error = text
            self.ctx.record("monitor_errors", {"t_s": self.t_s(), "source": source,
                                               "error": text})
            log.warning("monitor %s failed (later failures are only counted): %s",
                        source, text)

    def record(self, source: str, t_s: float, readings: list[Reading]) -> None:
        stats = self.stats.setdefault(source, SourceStats())
        stats.samples += 1
        kept = readings[:MAX_SERIES_PER_SAMPLE]
        for reading in kept:
            if math.isfinite(reading.value):
                self.ctx.record("monitor", monitor_row(t_s, source, reading))
                stats.readings += 1
        if len(readings) > len(kept):
            self.failed(source, f"{len(readings)} series in one sample; kept the first "
                                f"{MAX_SERIES_PER_SAMPLE} (narrow the allow-list)")
        for watcher in self.watchers:
            watcher.observe(source, t_s, kept)

    async def _loop(self, sampler: Sampler) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that
        # arrives as the inner call finishes, and close() then waited for ever (seen:
        # a sampler still scraping an hour of modelled time after its case ended).
        clock, interval = self.ctx.clock, self.config.interval
        try:
            async with asyncio.timeout(sampler.timeout_s):
                await sampler.open()
        except Exception as exc:
            self.failed(sampler.source, exc)
        while not self._closing:
            t = self.t_s()
            try:
                async with asyncio.timeout(sampler.timeout_s):
                    readings = await sampler.sample()
            except Exception as exc:
                self.failed(sampler.source, exc)
            else:
                self.record(sampler.source, t, readings)
            now = self.t_s()
            next_tick = (math.floor(now / interval) + 1) * interval
            await clock.sleep(next_tick - now)

    async def close(self) -> None:
        """Stop every sampler, release what they hold, journal each source's totals."""
        self._closing = True  # a loop that missed its cancel stops at its next turn
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for sampler, result in zip(self.samplers, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError):
                self.failed(sampler.source, result)  # a bug in a sampler: said, not raised
        for watcher in self.watchers:  # before the hosts they use are closed
            with contextlib.suppress(Exception):
                await watcher.close()
        for sampler in self.samplers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(sampler.timeout_s):
                    await sampler.close()
        for action in self.on_close:
            with contextlib.suppress(Exception):
                action()
        if self.hosts:
            from osbench.hosts.ssh import close_all

            with contextlib.suppress(Exception):
                await close_all(self.hosts)
        for source, stats in self.stats.items():
            self.ctx.record("monitor_sources", {
                "source": source, "samples": stats.samples, "failed": stats.failed,
                "readings": stats.readings, "first_error": stats.first_error,
                "last_error": stats.last_error})


def inventory_hosts(config: MonitorsConfig, target: Any) -> tuple[dict[str, Host], bool]:
    """Hosts the sources may name, and whether the session opened them (and closes them)."""
    if config.inventory:
        from osbench.hosts.inventory import load_inventory
        from osbench.hosts.ssh import connect

        path = config.inventory
        if path == "lab":
            from osbench.hosts.target import lab_inventory

            path = str(lab_inventory())
        return dict(connect(load_inventory(Path(path)))), True
    return dict(getattr(target, "hosts", {}) or {}), False


async def open_session(config: MonitorsConfig, ctx: CaseContext) -> MonitorSession:
    """Build the samplers `config` names for this case's target, and start them."""
    from osbench.monitors import sources

    hosts, owned = inventory_hosts(config, ctx.target)
    session = MonitorSession(config=config, ctx=ctx, samplers=[],
                             hosts=hosts if owned else {})
    try:
        session.samplers = await sources.build(config, ctx, hosts, session)
    except BaseException:
        await session.close()
        raise
    session.start()
    return session
