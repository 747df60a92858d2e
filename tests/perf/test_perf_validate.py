"""`osbench validate` over every shipped scenario, as a user runs it: a fresh process.

Side by side in the same session: the floor, a bare `python -c` that only parses
the same files with PyYAML (what any validator must at least do). The ratio is
the figure to watch; the absolute time depends on the machine's load. Before
issue 14, validating a boot file imported pandas, openstacksdk and aiohttp
(~1.0 s on the reference machine).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from tests.perf.conftest import Figures

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("*.yaml"))
ROUNDS = 7
PARSE_ONLY = ("import sys, yaml\n"
              "for path in sys.argv[1:]:\n"
              "    with open(path) as f:\n"
              "        yaml.safe_load(f)")


def _run(argv: list[str]) -> None:
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, timeout=120)


def test_validate_every_shipped_scenario(benchmark: BenchmarkFixture, figures: Figures) -> None:
    parse_only = []
    for _ in range(ROUNDS):  # the floor, measured in the same session
        started = time.perf_counter()
        _run([sys.executable, "-c", PARSE_ONLY, *SCENARIOS])
        parse_only.append(time.perf_counter() - started)
    benchmark.pedantic(_run, args=([sys.executable, "-m", "osbench", "validate", *SCENARIOS],),
                       rounds=ROUNDS, iterations=1)
    ours = benchmark.stats.stats.median
    floor = sorted(parse_only)[len(parse_only) // 2]
    benchmark.extra_info.update({"files": len(SCENARIOS), "median_s": round(ours, 3),
                                 "yaml_parse_only_median_s": round(floor, 3),
                                 "ratio": round(ours / floor, 2)})
    figures("validate, every shipped scenario",
            f"{len(SCENARIOS)} files: median {ours * 1000:.0f} ms; PyYAML parse only "
            f"{floor * 1000:.0f} ms ({ours / floor:.1f}x), {ROUNDS} rounds each")
