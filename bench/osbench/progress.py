"""Live progress: a redrawn table on a terminal, plain log lines otherwise (CI).

Plain mode prints a case's counters when they change, at most once every
`interval_s` seconds (5 s: readable in a CI log of a 20-minute run), and
always at case start and end. The first change is always printed: the rate
limit counts from the last printed line, never from the clock's origin
(`perf_counter` counts from boot, so a machine up for less than `interval_s`
would otherwise print none).
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from osbench.clock import Clock, RealClock


class ProgressSink(Protocol):
    """Where a run reports its progress: cases starting and ending, live counters,
    and messages (a stop requested, a cleanup that failed)."""

    def message(self, text: str) -> None: ...
    def start_case(self, case_id: str, index: int, total: int) -> None: ...
    def update(self, **counters: int) -> None: ...
    def end_case(self, status: str, detail: str = "") -> None: ...
    def close(self) -> None: ...


class SilentProgress:
    """The library's default sink: counters are dropped, messages go to logging."""

    log = logging.getLogger("osbench.progress")

    def message(self, text: str) -> None:
        self.log.warning("%s", text)

    def start_case(self, case_id: str, index: int, total: int) -> None:
        self.log.info("case %d/%d %s", index + 1, total, case_id)

    def update(self, **counters: int) -> None:
        pass

    def end_case(self, status: str, detail: str = "") -> None:
        self.log.info("case %s%s", status, f": {detail}" if detail else "")

    def close(self) -> None:
        pass


class Progress:
    """Shows per-case counters and elapsed time; `rich` on a TTY, lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None,
                 interval_s: float = 5.0, clock: Clock | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval_s = interval_s
        # Real time even against the simulated cloud: the limit is for readers of the log.
        self._clock = clock or RealClock()
        self._start = self._clock.monotonic()
        self._case: str | None = None
        self._label = ""
        self._counters: dict[str, int] = {}
        self._last_line: float | None = None  # when the last counters line was printed
        self._last_text = ""
        self._rich: Live | None = None
        self._console = Console(file=self.stream) if self.live else None

    def _elapsed(self, now: float | None = None) -> str:
        now = self._clock.monotonic() if now is None else now
        return f"{now - self._start:7.1f}s"

    def message(self, text: str, *, now: float | None = None) -> None:
        """A one-off line (warnings, signals, cleanup); `now` if the caller read the clock."""
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(f"[{self._elapsed(now)}] {text}", file=self.stream, flush=True)

    def start_case(self, case_id: str, index: int, total: int) -> None:
        self._case, self._counters = case_id, {}
        self._last_line, self._last_text = None, ""  # a case's first change is shown
        self._label = f"case {index + 1}/{total} {case_id}"
        if self._console is not None:
            self._rich = Live(self._render(), console=self._console, refresh_per_second=4,
                              transient=True)
            self._rich.start()
        self.message(f"{self._label}: started")

    def update(self, **counters: int) -> None:
        self._counters.update(counters)
        if self._rich is not None:
            self._rich.update(self._render())
            return
        now = self._clock.monotonic()
        text = self._counter_text()
        due = self._last_line is None or now - self._last_line >= self.interval_s
        if text != self._last_text and due:
            self._last_line, self._last_text = now, text
            self.message(f"{self._label}: {text}", now=now)

    def end_case(self, status: str, detail: str = "") -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        summary = self._counter_text()
        self.message(f"{self._label}: {status}" + (f" ({summary})" if summary else "")
                     + (f" {detail}" if detail else ""))
        self._case = None

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def _counter_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self._counters.items())

    def _render(self) -> Table:
        table = Table(title=f"{self._label}  elapsed {self._elapsed().strip()}", expand=False)
        for key in self._counters or {"waiting": 0}:
            table.add_column(key, justify="right")
        table.add_row(*(str(v) for v in (self._counters or {"waiting": 0}).values()))
        return table
