"""Journal append throughput: small rows, each handed to the OS as recorded.

A 1000-instance boot journals a few rows per instance and per poll; what
matters is that recording never delays the phone-home reply it sits in front
of (RegistrationServer calls its `journal` before answering).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from osbench.journal import Journal
from tests.perf.conftest import Figures

ROWS = 100_000
ROUNDS = 3


def test_journal_append_100k(benchmark: BenchmarkFixture, tmp_path: Path,
                             figures: Figures) -> None:
    run_numbers = itertools.count()
    journals: list[Journal] = []
    stamp = datetime.now(UTC)

    def new_journal() -> tuple[tuple[Journal], dict[str, object]]:
        journal = Journal.create(tmp_path, f"perf-journal-{next(run_numbers)}",
                                 {"scenario": {"name": "perf-journal"}})
        journals.append(journal)
        return (journal,), {}

    def append(journal: Journal) -> None:
        # A phone-home-sized row: ids, a wall stamp, a float, a flag.
        for i in range(ROWS):
            journal.record("phone_home", {"instance_id": f"inst-{i:06d}",
                                          "hostname": f"host-{i:06d}", "arrived_at": stamp,
                                          "monotonic": i * 0.001, "known": True})

    benchmark.pedantic(append, setup=new_journal, teardown=lambda journal: journal.close(),
                       rounds=ROUNDS, iterations=1)

    assert len(journals) == ROUNDS
    for journal in journals:
        assert journal.events_written == ROWS
        lines = (journal.path / "events.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == ROWS
    rows_per_s = ROWS / benchmark.stats.stats.mean
    benchmark.extra_info.update({"rows": ROWS, "rows_per_s": round(rows_per_s),
                                 "us_per_row": round(1e6 / rows_per_s, 3)})
    figures("journal append",
            f"{rows_per_s:,.0f} rows/s ({1e6 / rows_per_s:.1f} µs per row), "
            f"{ROUNDS} rounds of {ROWS:,} rows")
