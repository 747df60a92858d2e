"""Rootwrap latency probe (field notes section 2): the DHCP agent's per-port
call directly, through oslo-rootwrap and through the rootwrap daemon, on this
machine. Checks the field finding's shape (rootwrap many times slower than
direct, the daemon close to it) and reports the measured ratios."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text
from tests.perf.conftest import Figures

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 (network namespaces)")

SAMPLES = 100

SCENARIO = f"""\
name: perf-rootwrap
kind: rootwrap
params: {{modes: [direct, rootwrap, daemon], samples: {SAMPLES}, warmup: 5}}
"""


def test_rootwrap_probe_ratios(benchmark: BenchmarkFixture,
                               tmp_path_factory: pytest.TempPathFactory,
                               figures: Figures) -> None:
    scenario = parse_scenario(load_text(SCENARIO, "perf-rootwrap.yaml"))
    options = RunOptions(results_dir=tmp_path_factory.mktemp("r"), seed=1)
    result = benchmark.pedantic(lambda: asyncio.run(Runner(scenario, options).run()),
                                rounds=1, iterations=1)
    assert result.status == "completed", result.cases[0].error
    m = result.cases[0].metrics
    modes = results.load(result.path).table("modes").set_index("mode")
    benchmark.extra_info.update({k: round(v, 3) for k, v in m.items() if v == v})
    # The field finding's shape (theirs: 15x; Debian 12: ~32x and ~2x).
    assert m["rootwrap_ratio"] >= 5
    assert m["daemon_ratio"] <= 5
    assert m["rootwrap_ratio"] > m["daemon_ratio"]
    figures("rootwrap probe, p50 per call",
            f"direct {m['direct_p50_ms']:.1f} ms, rootwrap {m['rootwrap_p50_ms']:.1f} ms, "
            f"daemon {m['daemon_p50_ms']:.1f} ms (start-up {m['daemon_startup_ms']:.0f} ms); "
            f"{SAMPLES} samples per mode")
    figures("rootwrap probe, ratio to direct",
            f"rootwrap {m['rootwrap_ratio']:.1f}x [{m['rootwrap_ratio_ci_low']:.1f}, "
            f"{m['rootwrap_ratio_ci_high']:.1f}], daemon {m['daemon_ratio']:.2f}x "
            f"[{m['daemon_ratio_ci_low']:.2f}, {m['daemon_ratio_ci_high']:.2f}] (95 % bootstrap); "
            f"MAD outliers {int(modes['outliers'].sum())}")
