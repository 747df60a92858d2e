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

#: Finding 1 and its fix: 100 instances on small pets (a few never start), then on
#: big pets (all start). 4 s each at time scale 60.
SEED_REPLAY = ("scenarios/seed-replay/01-small-pets-100.yaml",
               "scenarios/seed-replay/02-big-pets-100.yaml")


def _run(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osbench", "run", *args, "--results", str(out),
         "--time-scale", "60"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False)


@pytest.fixture(scope="session")
def sim_runs(tmp_path_factory: pytest.TempPathFactory) -> list[results.Run]:
    out = tmp_path_factory.mktemp("sim-results")
    proc = _run(*SEED_REPLAY, out=out)
    assert proc.returncode == 0, proc.stderr
    return [results.load(d) for d in sorted(out.iterdir())]


@pytest.fixture(scope="session")
def big_pets_on_small(tmp_path_factory: pytest.TempPathFactory) -> results.Run:
    """A run that contradicts finding 1's fix, made for real: the big-pets scenario on
    the small pets' profile (`--sim-profile small-pets`), so some of its 100 never
    start. Its SLA fails (exit 1): that is the point."""
    out = tmp_path_factory.mktemp("sim-contradiction")
    proc = _run(SEED_REPLAY[1], "--sim-profile", "small-pets", out=out)
    assert proc.returncode == 1 and "FAIL phone_home_ok_pct == 100" in proc.stdout, (
        proc.stdout + proc.stderr)
    (run,) = out.iterdir()
    return results.load(run)


@pytest.fixture
def boot(tmp_path: Path) -> results.Run:
    return results.load(boot_run(tmp_path, "boot-run"))


@pytest.fixture
def killed_boot(tmp_path: Path) -> results.Run:
    return results.load(boot_run(tmp_path, "killed-run", finish=False))


@pytest.fixture
def netsweep(tmp_path: Path) -> results.Run:
    return results.load(netsweep_run(tmp_path, "net-run", failed_round=True))
