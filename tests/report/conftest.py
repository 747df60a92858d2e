"""Runs for the report tests: journal-written ones with known contents (fast,
exact), and real runs of the seed-replay scenarios on the embedded simulated
cloud (made once per session, ~10 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from osbench import results
from tests.report.runs import boot_run, netsweep_run

ROOT = Path(__file__).resolve().parents[2]

#: Finding 1 and its fix: 100 instances on small pets (4-7 never start), then on
#: big pets (all start). 4 s each at time scale 60.
SEED_REPLAY = ("scenarios/seed-replay/01-small-pets-100.yaml",
               "scenarios/seed-replay/02-big-pets-100.yaml")


@pytest.fixture(scope="session")
def sim_runs(tmp_path_factory: pytest.TempPathFactory) -> list[results.Run]:
    out = tmp_path_factory.mktemp("sim-results")
    proc = subprocess.run(
        [sys.executable, "-m", "osbench", "run", *SEED_REPLAY, "--results", str(out),
         "--time-scale", "60"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == 0, proc.stderr
    return [results.load(d) for d in sorted(out.iterdir())]


@pytest.fixture
def boot(tmp_path: Path) -> results.Run:
    return results.load(boot_run(tmp_path, "boot-run"))


@pytest.fixture
def killed_boot(tmp_path: Path) -> results.Run:
    return results.load(boot_run(tmp_path, "killed-run", finish=False))


@pytest.fixture
def netsweep(tmp_path: Path) -> results.Run:
    return results.load(netsweep_run(tmp_path, "net-run", failed_round=True))
