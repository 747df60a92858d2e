"""Sweep overhead per point beyond the traffic itself (goal: under 1 s).

One point = read channels, set and verify them over SSH, settle, `runs` runs of
parallel iperf3 streams (each `duration_s`), restore and read back. Overhead
is the point's wall time minus runs x duration_s (settle_s is 0 here).
"""

from __future__ import annotations

import asyncio

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import lab, results
from osbench.lab import LabConfig
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.perf.conftest import Figures
from tests.support.lab import needs_root, running_lab

pytestmark = needs_root

DURATION_S = 1.0
RUNS = 3
POINTS = "[1, 2, 4, 8]"

SCENARIO = f"""\
name: perf-netsweep
kind: netsweep
params: {{duration_s: {DURATION_S}, runs: {RUNS}, settle_s: 0}}
sweep: {{queues: {POINTS}}}
"""


def test_sweep_overhead_per_point(benchmark: BenchmarkFixture,
                                  tmp_path_factory: pytest.TempPathFactory,
                                  figures: Figures) -> None:
    config = LabConfig(targets=6, ports_per_target=1, prefix="osbp-", mgmt_net=205,
                       state_dir=tmp_path_factory.mktemp("lab"))
    with running_lab(config):
        scenario = parse_scenario(load_text(SCENARIO, "perf-netsweep.yaml"))
        options = RunOptions(results_dir=tmp_path_factory.mktemp("r"),
                             target=TargetSpec(hosts=str(lab.inventory_path(config.state_dir))))
        result = benchmark.pedantic(lambda: asyncio.run(Runner(scenario, options).run()),
                                    rounds=1, iterations=1)
    assert result.status == "completed"
    cases = results.load(result.path).table("cases")
    overhead = cases["wall_duration_s"] - RUNS * DURATION_S
    benchmark.extra_info.update({
        "points": len(cases), "overhead_s_mean": round(float(overhead.mean()), 3),
        "overhead_s_max": round(float(overhead.max()), 3)})
    figures("netsweep overhead per point",
            f"mean {overhead.mean():.2f} s, max {overhead.max():.2f} s beyond {RUNS} x "
            f"{DURATION_S:g} s of traffic (goal < 1 s), {len(cases)} points, 6 targets")
