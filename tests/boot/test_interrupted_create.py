"""SIGINT and SIGTERM at random moments, most of them while the multi-create is
still inside nova-api, against a simulated cloud that outlives the run
(`osbench sim serve`, a process of its own): nothing may remain, without
`osbench cleanup` (issue 13: 8 of 41 such runs leaked 90-140 servers each).

The simulated nova-api takes 2 modelled s per instance (0.1 s real at 20x), so
a create of 30 is in flight for ~3 s; on one profile the proxy answers 504
after 40 modelled s while nova-api goes on creating, so cleanup must wait for
servers that appear after the 504.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.boot.conftest import boot_yaml
from tests.boot.test_cleanup import wait_for_table
from tests.support.served_sim import ServedSim

ROOT = Path(__file__).resolve().parents[2]
CLOUD = "served"

SLOW_CREATE = """\
name: slow-create{suffix}
description: nova-api takes 2 s per instance of a multi-create
time_scale: 20
control_plane: {{cores: 16, memory_gb: 32}}
nova_api: {{per_instance_s: 2.0, proxy_timeout_s: {proxy_timeout_s}}}
neutron: {{root_helper: daemon, privileged_call_s: 0.048}}
compute: {{vif_plugging_is_fatal: true, vif_plugging_timeout_s: 300}}
"""

#: Trials per (profile, signal); 2 profiles x 2 signals x 5 = 20 runs (the issue asks >= 20).
TRIALS = 5
COUNT = 30


@pytest.fixture(params=[10_000, 40], ids=["202", "proxy-504"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedSim]:
    profile = tmp_path / "slow-create.yaml"
    profile.write_text(SLOW_CREATE.format(suffix=request.param, proxy_timeout_s=request.param))
    sim = ServedSim(tmp_path / "clouds.yaml", "--profile", str(profile), cloud=CLOUD)
    try:
        yield sim
    finally:
        sim.stop()


def journal_rows(results: Path, table: str) -> list[dict[str, Any]]:
    rows = []
    for events in results.glob("*/events.jsonl"):
        for line in events.read_text().splitlines():
            row = json.loads(line)
            if row.get("table") == table:
                rows.append(row)
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_during_the_create_leaves_nothing(tmp_path: Path, served: ServedSim,
                                                 sig: signal.Signals) -> None:
    rng = random.Random(f"interrupted-create-{sig.name}-{served.clouds}")
    scenario = tmp_path / "boot.yaml"
    scenario.write_text(boot_yaml(COUNT, poll="3s"))
    env = served.env()
    in_flight = interrupted = 0
    for trial in range(TRIALS):
        results = tmp_path / f"r{trial}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "osbench", "run", str(scenario), "--cloud", CLOUD,
             "--results", str(results)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if trial % 3 == 0:  # any moment from start-up (imports: 1-4 s) on
            time.sleep(rng.uniform(0.2, 5.0))
        else:  # while the create is in flight: its first server exists, the reply
            # comes 2 s (proxy 504) or 3 s (202) of real time after it was sent
            served.wait_for_a_server()
            time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=240)
        assert proc.returncode in (130, 0), f"trial {trial}: rc {proc.returncode}: {err}"
        assert "Traceback" not in err, err
        interrupted += proc.returncode == 130
        assert served.leftovers() == ([], []), f"trial {trial}: {err}"
        for row in journal_rows(results, "cleanup"):
            assert row["leftover_servers"] == row["unaccounted"] == 0, row
            in_flight += row["creates_in_flight"]
    assert interrupted >= TRIALS // 2, "the signals did not land mid-run"
    assert in_flight >= 1, "no signal landed while a create was in flight: widen the window"


@pytest.mark.slow
@pytest.mark.parametrize("served", [40], ids=["proxy-504"], indirect=True)
def test_servers_appearing_after_the_wait_make_it_loud(tmp_path: Path,
                                                       served: ServedSim) -> None:
    """A 504, then a signal, and a wait shorter than nova-api's work: the run does not
    claim it left nothing. It exits 3, names `osbench cleanup RUN`, and that finds
    the rest."""
    scenario = tmp_path / "boot.yaml"
    scenario.write_text(boot_yaml(COUNT, poll="3s", extra="  create_outcome_wait_s: 1s"))
    env = served.env()
    results = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "osbench", "run", str(scenario), "--cloud", CLOUD,
         "--results", str(results)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_table(results, "creates")  # the 504, at 40 of nova-api's 60 modelled s
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    (run_dir,) = results.iterdir()
    assert f"run `osbench cleanup {run_dir}`" in err
    assert "server(s) a create of unknown outcome may still add" in err
    (row,) = journal_rows(results, "cleanup")
    assert row["unaccounted"] > 0
    assert len(row["unaccounted_names"]) == min(row["unaccounted"], 20)
    time.sleep(3)  # nova-api finishes the create (60 modelled s at 20x)
    assert len(served.leftovers()[0]) == row["unaccounted"]
    clean = subprocess.run([sys.executable, "-m", "osbench", "cleanup", str(run_dir)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert served.leftovers() == ([], [])
