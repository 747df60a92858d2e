"""A simulated 1000-instance boot end to end through osbench's own runner.

Issue 3's goal: finishing it, phone-homes included, in under 60 s of wall time
on the 2-core reference machine. That is reported, not asserted: a loaded CI
machine must not fail the suite; `--benchmark-compare` shows a regression.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from bench import results
from bench.runner import Runner, RunOptions, RunResult
from bench.scenario import parse_scenario
from bench.scenario.source import load_text
from tests.perf.conftest import Figures

COUNT = 1000
#: Issue 3: "finishes in under 60 s of wall time on this 2-core machine".
GOAL_WALL_S = 60.0

# Finding 6's case (scenarios/seed-replay/06-rootwrap-daemon-1000.yaml) at the
# profile's own time scale, as `osbench run` would run it with no --cloud.
SCENARIO = f"""\
name: perf-boot-{COUNT}
kind: boot
params:
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  key_name: mykey
  count: {COUNT}
target:
  sim_profile: rootwrap-daemon
sla:
  - phone_home_ok_pct == 100
"""


def _rss_mib() -> float:
    """Resident set size now (Linux /proc), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def test_boot_1000_simulated(benchmark: BenchmarkFixture, tmp_path: Path,
                             figures: Figures) -> None:
    scenario = parse_scenario(load_text(SCENARIO, f"perf-boot-{COUNT}.yaml"))
    options = RunOptions(results_dir=tmp_path / "results")
    measured: dict[str, float] = {}

    def boot() -> RunResult:
        measured["rss_before_mib"] = _rss_mib()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = asyncio.run(Runner(scenario, options).run())
        # process_time counts every thread: the runner's loop, openstacksdk's
        # pool and the embedded simulator all run in this process.
        measured["wall_s"] = time.perf_counter() - wall0
        measured["cpu_s"] = time.process_time() - cpu0
        # ru_maxrss (KiB on Linux) is this process's peak over its lifetime.
        measured["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result

    result = benchmark.pedantic(boot, rounds=1, iterations=1)

    assert result.status == "completed", [c.error for c in result.cases]
    run = results.load(result.path)
    instances = run.table("instances")
    arrivals = run.table("phone_home")
    assert len(instances) == COUNT
    all_ok = bool((instances["outcome"] == "ok").all())
    phoned_home = int(arrivals["instance_id"].nunique()) if len(arrivals) else 0
    assert all_ok
    assert phoned_home == COUNT
    assert set(arrivals["instance_id"]) == set(instances["instance_id"])

    per_instance_ms = 1000 * measured["wall_s"] / COUNT
    benchmark.extra_info.update({
        "instances": COUNT,
        "wall_s": round(measured["wall_s"], 3),
        "cpu_s": round(measured["cpu_s"], 3),
        "wall_ms_per_instance": round(per_instance_ms, 3),
        "peak_rss_mib": round(measured["peak_rss_mib"], 1),
        "rss_before_mib": round(measured["rss_before_mib"], 1),
        "all_ok": all_ok,
        "phone_homes_recorded": len(arrivals),
        "goal_wall_s": GOAL_WALL_S,
        "goal_met": measured["wall_s"] < GOAL_WALL_S,
        "time_scale": run.manifest["targets"][0].get("time_scale"),
    })
    verdict = "met" if measured["wall_s"] < GOAL_WALL_S else "MISSED"
    figures("boot 1000 (sim)",
            f"wall {measured['wall_s']:.1f} s (goal < {GOAL_WALL_S:.0f} s: {verdict}), "
            f"CPU {measured['cpu_s']:.1f} s, peak RSS {measured['peak_rss_mib']:.0f} MiB "
            f"(before {measured['rss_before_mib']:.0f} MiB), "
            f"{phoned_home}/{COUNT} phoned home")
