"""Progress: plain rate-limited lines for CI logs, a live table on a terminal."""

from __future__ import annotations

import io

from bench.progress import Progress


def test_plain_lines_are_rate_limited_and_end_with_a_summary() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False, interval_s=3600)
    progress.start_case("count=10", 0, 2)
    progress.update(requested=10, active=0)
    progress.update(requested=10, active=5)  # within the interval: not printed
    progress.end_case("completed", "PASS x")
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "case 1/2 count=10: started",
        "case 1/2 count=10: requested=10 active=0",
        "case 1/2 count=10: completed (requested=10 active=5) PASS x",
    ]


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
