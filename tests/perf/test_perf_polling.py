"""Nova API requests per poll cycle at N=10, 100 and 1000, next to what
per-server polling would cost.

osbench's tracker lists only what changed in the run's reservation
(`reservation_id` + `changes-since`) and the run's ports with one filtered
list, so its cost per cycle is flat in N. Per-server polling (Rally's
`wait_for_status`, openstacksdk's `wait_for_server`) makes one
`GET /servers/{id}` per instance per cycle: N requests. The boots run against
a SimThread through `--cloud`, the production path, so the simulator's request
counter sees every call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from osbench.runner import Runner, RunOptions, RunResult
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml
from tests.perf.conftest import Figures

#: One server listing and one port listing per cycle, whatever N
#: (tests/boot/test_polling.py checks the same at 10 and 1000).
REQUESTS_PER_CYCLE = 2.0


@pytest.mark.parametrize("count", [10, 100, 1000])
def test_poll_cost_per_cycle(count: int, benchmark: BenchmarkFixture, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch, figures: Figures) -> None:
    text = boot_yaml(count, poll="500ms", name=f"perf-polling-{count}")
    scenario = parse_scenario(load_text(text, f"perf-polling-{count}.yaml"))
    with SimThread(profile="rootwrap-daemon", time_scale=60) as sim:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(sim.write_clouds_yaml(tmp_path / "clouds.yaml")))
        monkeypatch.delenv("OS_CLOUD", raising=False)
        options = RunOptions(results_dir=tmp_path / "results",
                             target=TargetSpec(cloud=CLOUD_NAME))

        def boot() -> RunResult:
            return asyncio.run(Runner(scenario, options).run())

        result = benchmark.pedantic(boot, rounds=1, iterations=1)
        counts = sim.sim.request_counts()

    assert result.status == "completed", [c.error for c in result.cases]
    polls = results.load(result.path).table("polls")
    cycles = len(polls)
    assert cycles >= 3
    per_server = [k for k in counts if k[0] == "compute" and k[1] == "GET"
                  and k[2].startswith("/servers/") and k[2] != "/servers/detail"]
    assert not per_server, per_server
    # Every detail listing is a poll's except the one cleanup makes.
    nova_poll_requests = counts[("compute", "GET", "/servers/detail")] - 1
    nova_per_cycle = nova_poll_requests / cycles
    median_per_cycle = float(polls["requests"].median())
    assert median_per_cycle == REQUESTS_PER_CYCLE
    # Nova caps a page at 1000: a cycle in which all 1000 changed follows one
    # `next` link. That is the only extra request.
    assert nova_poll_requests - cycles <= 1

    benchmark.extra_info.update({
        "instances": count,
        "cycles": cycles,
        "requests_per_cycle_median": median_per_cycle,
        "nova_requests_per_cycle": round(nova_per_cycle, 3),
        "nova_poll_requests": nova_poll_requests,
        "per_server_polling_requests_per_cycle": count,
        "per_server_polling_requests": count * cycles,
        "nova_requests_total": sum(n for k, n in counts.items() if k[0] == "compute"),
    })
    figures(f"polling N={count}",
            f"{cycles} cycles; ours: {nova_per_cycle:.2f} Nova requests/cycle "
            f"({nova_poll_requests} in all, median {median_per_cycle:.0f} API requests/cycle "
            f"with the port listing); per-server polling: {count}/cycle "
            f"({count * cycles} in all)")
