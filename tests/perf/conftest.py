"""The benchmarks of osbench itself (issue 8), run by `nox -s perf`.

They take minutes (a 1000-instance simulated boot, 1000-connection bursts),
so a plain `pytest` does not collect them: set OSBENCH_PERF=1, as the `perf`
session does. Each benchmark adds its headline figures with the `figures`
fixture; they are printed at the end of the session, so `nox -s perf` shows
them without -s or --benchmark-json.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

#: The switch `nox -s perf` sets.
PERF_ENV = "OSBENCH_PERF"

if os.environ.get(PERF_ENV) != "1":
    collect_ignore_glob = ["test_*.py"]

_FIGURES = pytest.StashKey[list[tuple[str, str]]]()

Figures = Callable[[str, str], None]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """`figures(benchmark_name, line)` keeps one line for the closing summary."""
    kept = request.config.stash.setdefault(_FIGURES, [])

    def add(name: str, line: str) -> None:
        kept.append((name, line))

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    kept = config.stash.get(_FIGURES, [])
    if not kept:
        return
    terminalreporter.section("osbench perf figures")
    width = max(len(name) for name, _ in kept)
    for name, line in kept:
        terminalreporter.write_line(f"{name:<{width}}  {line}")
