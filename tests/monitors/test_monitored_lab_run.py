"""A whole run with process monitors over SSH to a lab host (a namespace with its own
sshd): the `monitor` table holds the real CPU of a process the test keeps busy
there; then the host's sshd is killed mid-case, and the run still completes, with
that source's failure recorded once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbench import procs, results
from osbench.hosts import close_all, connect, load_inventory
from osbench.lab import LabConfig
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text
from tests.support.lab import needs_root, running_lab

pytestmark = [needs_root, pytest.mark.root]

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end:\n    pass\n"
#: The case: 14 ticks of 1 s; sshd dies after KILL_AFTER_S.
TICKS = 14
KILL_AFTER_S = 7.0


@pytest.fixture(scope="module")
def lab_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    with running_lab(LabConfig(targets=1, ports_per_target=1, prefix="osbm-", mgmt_net=212,
                               state_dir=tmp_path_factory.mktemp("lab"))) as config:
        yield config


def _kill_sshd(config: LabConfig) -> None:
    daemon = int((config.state_dir / "hosts" / "target1" / "sshd.pid").read_text())
    for pid in [daemon, *(s.pid for s in procs.stats() if s.ppid == daemon)]:
        os.kill(pid, signal.SIGKILL)


async def test_a_monitored_run_journals_real_cpu_and_survives_a_dead_host(
        lab_config: LabConfig, tmp_path: Path) -> None:
    mark = f"osbench-busy-{random.getrandbits(48):012x}"
    sc = parse_scenario(load_text(f"""\
name: monitored lab run
kind: tick
params: {{ticks: {TICKS}, interval_s: 1}}
monitors:
  interval: 1s
  inventory: {lab_config.inventory_file}
  processes:
    - {{host: target1, presets: [], services: {{busy: "{mark}"}}, timeout: 4s}}
""", str(tmp_path / "lab-run.yaml")))
    hosts = connect(load_inventory(lab_config.inventory_file))
    busy = asyncio.create_task(hosts["target1"].run([sys.executable, "-c", BUSY, mark],
                                                    timeout_s=40, check=False))

    async def kill_later() -> None:
        await asyncio.sleep(KILL_AFTER_S)
        _kill_sshd(lab_config)

    killer = asyncio.create_task(kill_later())
    try:
        result = await Runner(sc, RunOptions(results_dir=tmp_path / "results")).run()
    finally:
        await killer
        busy.cancel()
        await asyncio.gather(busy, return_exceptions=True)
        await close_all(hosts)
    assert result.status == "completed", result.cases

    run = results.load(result.path)
    monitor = run.table("monitor")
    cpu = monitor[(monitor["metric"] == "service_cpu_pct") & (monitor["label.service"] == "busy")]
    assert (cpu["source"] == "processes@target1").all()
    # The busy loop wants a core; a loaded machine gives it less, never next to none.
    busy_samples = cpu[cpu["value"] >= 10]
    assert len(busy_samples) >= 3, cpu[["t_s", "value"]].to_string()
    assert (cpu["value"] <= 110).all(), cpu["value"].tolist()
    assert cpu["t_s"].max() < KILL_AFTER_S + 3  # nothing read after sshd died

    errors = run.table("monitor_errors")
    assert errors["source"].tolist() == ["processes@target1"], errors  # once
    assert errors["error"].iloc[0].startswith("target1: "), errors["error"].iloc[0]
    sources = run.table("monitor_sources").set_index("source")
    assert sources.loc["processes@target1", "failed"] >= 2  # every later sample failed
    assert len(run.table("ticks")) == TICKS  # the case itself ran to its end
