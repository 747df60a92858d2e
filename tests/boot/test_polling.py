"""API cost per poll cycle does not grow with the number of instances."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench import results
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml


async def requests_per_cycle(count: int, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    # 500 ms of real time: a named cloud runs on the real clock.
    text = boot_yaml(count, poll="500ms", name=f"polling-{count}")
    scenario = parse_scenario(load_text(text, f"polling-{count}.yaml"))
    with SimThread(profile="rootwrap-daemon", time_scale=60) as sim:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(sim.write_clouds_yaml(tmp_path / f"clouds-{count}.yaml")))
        options = RunOptions(results_dir=tmp_path / "results",
                             target=TargetSpec(cloud=CLOUD_NAME))
        result = await Runner(scenario, options).run()
        counts = sim.sim.request_counts()
    assert result.status == "completed"
    run = results.load(result.path)
    polls = run.table("polls")
    cycles = len(polls)
    assert cycles >= 3
    # No per-server GET anywhere, by the tracker or the cleanup.
    assert not [k for k in counts if k[0] == "compute" and k[1] == "GET"
                and k[2].startswith("/servers/") and k[2] != "/servers/detail"]
    # Cleanup makes one detail listing of its own; every other one is a poll's.
    detail = counts[("compute", "GET", "/servers/detail")] - 1
    return {"median_per_cycle": float(polls["requests"].median()),
            "extra_detail_pages": float(detail - cycles)}


async def test_requests_per_cycle_same_at_10_and_1000(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    small = await requests_per_cycle(10, tmp_path, monkeypatch)
    large = await requests_per_cycle(1000, tmp_path, monkeypatch)
    # One server listing and one port listing per cycle, whatever N.
    assert small["median_per_cycle"] == large["median_per_cycle"] == 2.0
    # Nova caps a page at 1000: a cycle in which all 1000 changed follows one
    # `next` link (an empty page). That is the only extra request.
    assert small["extra_detail_pages"] == 0
    assert large["extra_detail_pages"] <= 1
