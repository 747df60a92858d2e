"""A capacity search killed part-way leaves nothing in the cloud, and what it did
so far loads (issue 17).

The search runs as `python -m osbench run ... --cloud NAME` against `osbench sim
serve` in a process of its own, so the cloud outlives a kill -9 and is listed from
outside afterwards. The moment of each kill is read from the run's journal (after
the Nth `search` row, or the Nth `creates` row: a point's create answered, its
instances booting), N drawn from a seeded generator, so every trial lands where
it says, mid-search, whatever this machine's speed.

The scenario makes two searches (one per value of a swept poll interval), each
growing from 20 by doubling to the first failure on small pets (~90, finding 1),
so a kill always lands with a later search not yet started.
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
import yaml

from osbench import results
from osbench.progress import SilentProgress
from osbench.runner import Runner, RunOptions
from osbench.scenario import load_scenario
from osbench.sim import load_profile
from tests.boot.test_interrupted_create import CLOUD
from tests.support.served_sim import ServedSim

ROOT = Path(__file__).resolve().parents[2]
#: The served cloud's speed-up: a point of 20-160 instances takes ~2-4 s.
TIME_SCALE = 60

SEARCH = """\
name: search-kill
kind: boot
params:
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  count: 20
  phone_home_timeout_s: 10m
  phone_home_port: 0  # a named cloud defaults to 8000, which another run may hold
sweep:
  poll_interval_s: [3s, 4s]
search: {param: count, start: 20, max: 160, resolution: 20}
sla: ["phone_home_ok_pct == 100", "create_errors == 0"]
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedSim]:
    """`osbench sim serve` of small pets at TIME_SCALE, in a process of its own."""
    profile = tmp_path / "small-pets.yaml"
    profile.write_text(yaml.safe_dump({**load_profile("small-pets").as_dict(),
                                       "time_scale": TIME_SCALE}))
    sim = ServedSim(tmp_path / "clouds.yaml", "--profile", str(profile), cloud=CLOUD)
    try:
        yield sim
    finally:
        sim.stop()


def osbench(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "osbench", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal_rows(results_dir: Path, table: str) -> list[dict[str, Any]]:
    rows = []
    for events in results_dir.glob("*/events.jsonl"):
        for line in events.read_text().splitlines():
            if line.strip():  # a line being written may be cut short: skip it
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if row.get("table") == table:
                    rows.append(row)
    return rows


def wait_for_rows(results_dir: Path, table: str, count: int, proc: subprocess.Popen[str],
                  timeout_s: float = 120) -> None:
    """Until the run has journaled `count` rows of `table` (one read per 50 ms, bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(journal_rows(results_dir, table)) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {count} {table} rows: "
                                 f"{proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} {table} rows within {timeout_s} s")


def start(tmp_path: Path, sim: ServedSim, name: str) -> tuple[subprocess.Popen[str], Path]:
    scenario = tmp_path / "search.yaml"
    scenario.write_text(SEARCH)
    out = tmp_path / name
    return osbench("run", str(scenario), "--cloud", CLOUD, "--results", str(out),
                   env=sim.env()), out


def the_run(results_dir: Path) -> Path:
    (only,) = results_dir.iterdir()
    return only


#: Where each signal lands: after the Nth point's verdict (between points: the next
#: point's create is about to go out), or after the Nth create was answered (a later
#: point's instances booting). Both N are drawn from the seeded generator below.
MOMENTS = ("search", "creates")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_mid_search_leaves_nothing_and_an_interrupted_summary(
        tmp_path: Path, served: ServedSim, sig: signal.Signals) -> None:
    rng = random.Random(f"search-kills-{sig.name}")
    for table in MOMENTS:
        nth = rng.randint(1, 3) if table == "search" else rng.randint(2, 4)
        proc, out = start(tmp_path, served, f"{table}-{nth}")
        wait_for_rows(out, table, nth, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=240)
        where = f"{sig.name} after {table} row {nth}"
        assert proc.returncode == 130, f"{where}: {err}"
        assert "Traceback" not in err, err
        assert served.leftovers() == ([], []), where

        run = results.load(the_run(out))
        assert not run.incomplete
        assert run.status == "interrupted", where
        # The search that was running ends interrupted, with the points it decided;
        # the second search never started, so it has no summary at all.
        (summary,) = run.table("search_summary").to_dict("records")
        assert summary["search"] == "poll_interval_s=3.0", where
        assert summary["status"] == "interrupted", where
        points = run.table("search")
        decided = points[points["verdict"].isin(["pass", "fail"])]
        assert len(decided) >= (nth if table == "search" else nth - 1), where
        assert summary["points"] in (len(decided), len(decided) + 1), where
        assert set(points["verdict"]) <= {"pass", "fail", "interrupted"}, where
        cleanup = run.table("cleanup")
        assert (cleanup[["leftover_servers", "leftover_ports", "unaccounted"]] == 0).all().all()


@pytest.mark.slow
def test_kill_9_mid_search_then_cleanup_leaves_nothing(tmp_path: Path,
                                                       served: ServedSim) -> None:
    rng = random.Random("search-kills-SIGKILL")
    nth = rng.randint(2, 4)
    proc, out = start(tmp_path, served, f"creates-{nth}")
    wait_for_rows(out, "creates", nth, proc)
    proc.kill()
    proc.communicate(timeout=60)
    servers, _ = served.leftovers()
    assert servers, "the kill landed after the point's cleanup: nothing to clean up"

    run = results.load(the_run(out))
    assert run.incomplete and run.status == "running"
    assert "search_summary" not in run.tables  # killed before any search ended
    assert len(run.table("search")) >= nth - 1

    clean = osbench("cleanup", str(the_run(out)), "--cloud", CLOUD, env=served.env())
    stdout, err = clean.communicate(timeout=240)
    assert clean.returncode == 0, err
    assert f"deleted {len(servers)} server(s)" in stdout
    assert served.leftovers() == ([], [])

    # The partial search renders, marked incomplete.
    report = osbench("report", str(the_run(out)), "--out", str(tmp_path / "report"),
                     "--format", "md", env=served.env())
    _, err = report.communicate(timeout=120)
    assert report.returncode == 0, err
    (markdown,) = (tmp_path / "report").glob("*.md")
    assert "INCOMPLETE" in markdown.read_text()


TICK_SEARCH = """\
name: tick-search
kind: tick
params: {ticks: 1, interval_s: 0s}
sweep: {value: [1.0, 2.0]}
search: {param: ticks, start: 1, max: 8, resolution: 1}
sla: ["ticks_done >= 1"]
"""


class StopAt(SilentProgress):
    """Stops the run as the Nth case ends (between points), or at a case's Nth tick."""

    def __init__(self, *, case_end: int = 0, tick: int = 0) -> None:
        self.runner: Runner | None = None
        self.case_end, self.tick, self.ended = case_end, tick, 0

    def end_case(self, status: str, detail: str = "") -> None:
        self.ended += 1
        if self.ended == self.case_end and self.runner is not None:
            self.runner.request_stop("SIGINT")

    def update(self, **counters: int) -> None:
        if counters.get("ticks") == self.tick and self.runner is not None:
            self.runner.request_stop("SIGINT")


@pytest.mark.parametrize(("stop", "verdicts"), [
    (StopAt(case_end=2), ["pass", "pass"]),              # between the 2nd and 3rd points
    (StopAt(tick=3), ["pass", "pass", "interrupted"]),   # inside the 3rd point (4 ticks)
], ids=["between-points", "mid-point"])
async def test_a_stop_ends_the_running_search_only(tmp_path: Path, stop: StopAt,
                                                   verdicts: list[str]) -> None:
    """The running search journals one summary, interrupted; its point cut short says
    so (not "error"); the next search, never started, journals nothing."""
    scenario = tmp_path / "tick.yaml"
    scenario.write_text(TICK_SEARCH)
    runner = Runner(load_scenario(scenario), RunOptions(results_dir=tmp_path / "r"),
                    progress=stop)
    stop.runner = runner
    result = await runner.run()
    assert result.status == "interrupted"
    run = results.load(result.path)
    assert list(run.table("search")["verdict"]) == verdicts
    (summary,) = run.table("search_summary").to_dict("records")
    assert (summary["search"], summary["status"]) == ("value=1.0", "interrupted")
    assert (summary["capacity"], summary["points"], summary["cases"]) == (2, len(verdicts),
                                                                          len(verdicts))
    assert result.searches == [summary | {"error": None}]
