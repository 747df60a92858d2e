"""Nothing is left on the cloud after a normal end, an SLA failure, SIGINT or
SIGTERM in each phase of a run, or kill -9 followed by `osbench cleanup RUN`; and
cleanup never deletes a server the run did not create."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from osbench.results import load as load_run
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml

ROOT = Path(__file__).resolve().parents[2]

def osbench(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "osbench", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def setup(sim: SimThread, tmp_path: Path, count: int = 20,
          sla: str = "phone_home_ok_pct == 100") -> tuple[Path, dict[str, str]]:
    scenario = tmp_path / "boot.yaml"
    scenario.write_text(boot_yaml(count, poll="3s", sla=sla))
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE":
           str(sim.write_clouds_yaml(tmp_path / "clouds.yaml"))}
    env.pop("OS_CLOUD", None)
    return scenario, env


def run_dir(results: Path) -> Path:
    (only,) = results.iterdir()
    return only


def wait_for_table(results: Path, table: str, timeout_s: float = 60) -> None:
    """Until the run's journal has a row of `table` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = list(results.glob("*/events.jsonl"))
        if events and f'"table":"{table}"' in events[0].read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {table} row within {timeout_s} s")


def test_sla_failure_still_cleans_up(tmp_path: Path) -> None:
    with SimThread(time_scale=60) as sim:
        scenario, env = setup(sim, tmp_path, sla="p95(time_to_phone_home_s) <= 1")
        proc = osbench("run", str(scenario), "--cloud", CLOUD_NAME,
                       "--results", str(tmp_path / "r"), env=env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert "FAIL p95(time_to_phone_home_s) <= 1: measured" in out
        assert sim.leftovers() == ([], [])


#: Where a signal lands, each proven by the journal row the run writes on entering it
#: (signalled as soon as the row is seen): the cleanup is registered and the create
#: about to go out or in flight; the create answered and the servers building, none
#: phoned home yet; guests phoning home, the tracker still waiting for its next poll
#: (3 s: the first guest phones home about 1.4 s after the create, so at least
#: 1.5 s of the run is left whichever row the signal follows).
MID_RUN_ROWS = ("resources", "creates", "phone_home")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_in_every_phase_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    with SimThread(time_scale=60) as sim:
        for row in MID_RUN_ROWS:
            results = tmp_path / f"r-{row}"
            scenario, env = setup(sim, tmp_path)
            proc = osbench("run", str(scenario), "--cloud", CLOUD_NAME,
                           "--results", str(results), env=env)
            wait_for_table(results, row)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 130, f"after {row}: {err}"  # it was mid-run
            assert "Traceback" not in err
            run = load_run(run_dir(results))
            assert run.manifest["status"] == "interrupted", row
            assert "instances" not in run.tables, f"after {row}: the tracking had finished"
            assert sim.leftovers() == ([], []), f"after {row}"


def test_kill_9_then_cleanup_command(tmp_path: Path) -> None:
    with SimThread(time_scale=60) as sim:
        scenario, env = setup(sim, tmp_path)
        results = tmp_path / "r"
        proc = osbench("run", str(scenario), "--cloud", CLOUD_NAME, "--results",
                       str(results), env=env)
        wait_for_table(results, "creates")
        proc.kill()
        proc.communicate(timeout=60)
        servers, _ = sim.leftovers()
        assert len(servers) == 20

        # A server that carries the run's name prefix but not its metadata.
        conn: Any = sim.sim.connect()
        try:
            foreign_name = servers[0].rsplit("-", 1)[0] + "-999"
            conn.compute.create_server(name=foreign_name, image_id=sim.sim.image_id,
                                       flavor_id=sim.sim.flavor_id,
                                       networks=[{"uuid": sim.sim.network_id}])
        finally:
            conn.close()

        dry = osbench("cleanup", str(run_dir(results)), "--cloud", CLOUD_NAME, "--dry-run",
                      env=env)
        out, err = dry.communicate(timeout=120)
        assert dry.returncode == 0, err
        assert "would delete 20 server(s)" in out
        assert len(sim.leftovers()[0]) == 21

        clean = osbench("cleanup", str(run_dir(results)), "--cloud", CLOUD_NAME, env=env)
        out, err = clean.communicate(timeout=300)
        assert clean.returncode == 0, err
        assert "deleted 20 server(s)" in out
        assert "1 server(s) with the prefix but not this run's metadata left alone" in out
        assert sim.leftovers()[0] == [foreign_name]
