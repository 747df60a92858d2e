"""How far does each fix go? The capacity searches of scenarios/capacity/
seed-replay-search.yaml on the embedded simulated cloud, for seed 0 (issue 17).

Each seed's run is `python -m osbench run` in a process of its own (all at once:
most of a run is waiting on the modelled clock), at the scenario's 60x.
The capacities must follow from the simulator's model, so each search is also
replayed on the model alone (`model_search`: the same strategy, the same
ControlPlaneModel the simulated cloud keeps for the whole search, the same SLA)
and the run must find exactly what the replay finds. The mechanisms, as
arithmetic (profile numbers from bench/osbench/sim/profiles/):
- small pets: 4 conductor workers at 1.5 s x 2.02 (swapping: 8 of a 10 GB working
  set) = 3.03 s a build, one every 0.76 s, while nova-api makes a record every
  0.1 s: the k-th build waits ~0.66 k s and passes the 60 s RPC timeout at k ~ 91;
- big pets: 16 workers keep up; the one DHCP agent spends 3 x (0.713 + 0.01) =
  2.17 s on a port, so the k-th port waits ~2.07 k s, and a guest's DHCP client
  gives up ~388 s after its port was made (75 s disk, 3 s spawn, 10 s boot, 300 s):
  k ~ 187, fewer for a short disk preparation and as the agent's host file grows
  over the search's earlier points;
- vif-fatal: Nova gives up 300 s after plugging, ~375 s after the port was made,
  13 s before big pets' DHCP client would: the same seed draws the same queues, so
  whatever fails on big pets fails here too (vif-fatal <= big pets);
- the daemon: 3 x (0.048 + 0.01) = 0.174 s a port, a wait of 0.074 k s (44 s at
  600, far inside 375 s; 0.44 s a port by the search's last points, whose host
  file holds the ~4400 ports of the earlier ones: the last phone-home at ~310 s
  instead of ~200); nova-api answers after 0.05 + 0.1 N s and the proxy answers
  504 past 60 s, from N = 600: capacity 599, found as 593 to within 10.
What the replay finds holds across seeds (small pets < vif-fatal <= big pets <
rootwrap daemon), and each search stops where its finding says.

The session's runs are shared with tests/search/test_capacity_story.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from osbench import results
from osbench.kinds.boot.params import VIF_FAILURE
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, load_scenario
from osbench.scenario.search import SearchSpec
from osbench.search import Strategy, max_points
from osbench.sim import load_profile
from osbench.sim.model import RPC_FAULT, ControlPlaneModel

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "capacity" / "seed-replay-search.yaml"
#: One seed end to end (~2.5 min of the suite); the order is checked on the model alone
#: for 20 seeds (test_the_order_holds_on_the_model_for_20_seeds) and each run must find
#: exactly what the model finds for its seed, so a second seed end to end (issue 17's
#: first version ran three, then two) bought ~1 min of the suite's 15 and no more proof.
SEEDS = (0,)
#: The scenario's own speed-up (its target's time_scale). Outcomes are planned in
#: modelled time, but phone-homes arrive in real time: at 60x the latest one of a
#: passing point (big pets at 175: ~410 of the 600 modelled s allowed) has >= 3 s of
#: real time to spare with three runs sharing two cores and other work beside
#: them. At 120x (~100 s instead of ~180 s) a loaded machine (load average 4) lost
#: phone-homes of points that pass on the model.
TIME_SCALE = 60
#: Bounds a hung run only: one takes ~2.5 min on 2 cores (three at once took ~3).
RUN_TIMEOUT_S = 600
PROFILES = ("small-pets", "big-pets", "vif-fatal", "rootwrap-daemon")

#: The session's runs, or why they could not be made (each test that needs them says it).
_made: dict[str, Any] = {}


#: The sweep split in two processes of about the same length (seed 0 at 60x, alone:
#: small pets 19 s + daemon 53 s; big pets 53 s + vif-fatal 44 s), ~1.7 min instead of
#: one process's 2 min 50 s. One process per profile would be shorter still, but four
#: at once on 2 cores eat the phone-homes' real-time margin (see TIME_SCALE).
HALVES = (("small-pets", "rootwrap-daemon"), ("big-pets", "vif-fatal"))

Searched = dict[tuple[int, str], results.Run]


def searched_runs(folder: Path) -> Searched:
    """(seed, profile) -> the run that searched it (run once per test session)."""
    if "error" in _made:
        raise AssertionError(f"the session's search runs failed: {_made['error']}")
    if "runs" not in _made:
        try:
            _made["runs"] = _run_searches(folder)
        except Exception as exc:  # a failed or hung run: not again for the next test
            _made["error"] = f"{type(exc).__name__}: {exc}"
            raise
    runs: Searched = _made["runs"]
    return runs


def distinct(runs: Searched) -> list[results.Run]:
    """Each run once, in its seed's and sweep's order."""
    out: dict[Path, results.Run] = {}
    for run in runs.values():
        out.setdefault(run.path, run)
    return list(out.values())


def _half(folder: Path, profiles: tuple[str, ...]) -> Path:
    """The scenario file with its sweep cut to `profiles` (all else as written)."""
    text = SCENARIO.read_text()
    sweep = "  sim_profile: [" + ", ".join(PROFILES) + "]\n"
    assert sweep in text, f"{SCENARIO} no longer sweeps {PROFILES} on one line"
    path = folder / f"{'-'.join(profiles)}.yaml"
    path.write_text(text.replace(sweep, "  sim_profile: [" + ", ".join(profiles) + "]\n"))
    return path


def _run_searches(folder: Path) -> Searched:
    started = time.monotonic()
    procs = {(seed, half): subprocess.Popen(
        [sys.executable, "-m", "osbench", "run", str(_half(folder, half)), "--seed", str(seed),
         "--time-scale", str(TIME_SCALE), "--results", str(folder / f"seed-{seed}-{i}")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in SEEDS for i, half in enumerate(HALVES)}
    runs: Searched = {}
    try:
        for (seed, half), proc in procs.items():
            left = max(1.0, RUN_TIMEOUT_S - (time.monotonic() - started))
            out, err = proc.communicate(timeout=left)
            assert proc.returncode == 0, f"seed {seed} {half}: exit {proc.returncode}: " \
                f"{out[-1500:]}\n{err[-1500:]}"
            (path,) = (folder / f"seed-{seed}-{HALVES.index(half)}").iterdir()
            run = results.load(path)
            for profile in half:
                runs[(seed, profile)] = run
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return dict(sorted(runs.items(), key=lambda kv: (kv[0][0], PROFILES.index(kv[0][1]))))


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Searched:
    return searched_runs(tmp_path_factory.mktemp("capacity-searches"))


def model_search(profile_name: str, seed: int, spec: SearchSpec,
                 phone_home_timeout_s: float) -> tuple[int | None, int | None, int]:
    """(capacity, first fail, points) of the search replayed on the model alone.

    As the simulated cloud does for one search: one ControlPlaneModel seeded with the
    run's seed plans every point's create in turn (each batch draws its own numbers;
    the DHCP agent's host file keeps every port it ever served). A point passes when
    every instance phones home within the timeout and the proxy answers the create.
    """
    profile = load_profile(profile_name)
    model = ControlPlaneModel(profile, seed)
    strategy = Strategy(spec.start, spec.max, spec.resolution, spec.factor)
    t0 = 0.0
    while (value := strategy.next_value()) is not None:
        count = int(value)
        plan = model.plan_batch(t0, count, [f"s{i}" for i in range(count)])
        passed = plan.api_seconds <= profile.nova_api.proxy_timeout_s and all(
            tl.phone_home_at is not None and tl.phone_home_at - t0 <= phone_home_timeout_s
            for tl in plan.timelines)
        strategy.record(value, passed)
        t0 += 10_000.0  # the next point comes after this one's cleanup: queues idle
    capacity, first_fail = strategy.capacity, strategy.first_fail
    return (None if capacity is None else int(capacity),
            None if first_fail is None else int(first_fail), len(strategy.steps))


def capacities(run: results.Run) -> dict[str, dict[str, Any]]:
    """Profile -> its search_summary row."""
    table = run.table("search_summary")
    return {str(row["search"]).removeprefix("sim_profile="): {str(k): v for k, v in row.items()}
            for row in table.to_dict("records")}


def _spec() -> SearchSpec:
    spec = load_scenario(SCENARIO).search
    assert spec is not None
    return spec


@pytest.mark.slow
def test_the_capacities_are_the_models_in_the_field_order(runs: Searched) -> None:
    spec = _spec()
    timeout = load_scenario(SCENARIO).params.phone_home_timeout_s
    bound = max_points(spec.start, spec.max, spec.resolution, spec.factor)
    assert all(run.status == "completed" for run in distinct(runs))
    for seed in SEEDS:
        found = {profile: capacities(runs[(seed, profile)])[profile] for profile in PROFILES}
        for profile, row in found.items():
            assert row["status"] == "done", (seed, profile)
            assert row["points"] == row["cases"] <= bound
            assert 0 < float(row["first_fail"]) - float(row["capacity"]) <= spec.resolution
            assert (row["capacity"], row["first_fail"], row["points"]) == model_search(
                profile, seed, spec, timeout), (seed, profile)
        small, big, vif, daemon = (int(found[p]["capacity"]) for p in PROFILES)
        assert small < vif <= big < daemon, (seed, small, big, vif, daemon)


def test_the_order_holds_on_the_model_for_20_seeds() -> None:
    """The same searches on the model alone (~0.07 s of CPU a seed): a simulated finding
    counts only if it holds across seeds. Over seeds 0-19: small pets 87 or 93, vif-fatal
    168 or 175, big pets 168-181, the daemon 593 (the proxy's bound) every time."""
    spec = _spec()
    timeout = load_scenario(SCENARIO).params.phone_home_timeout_s
    found: dict[str, set[int]] = {p: set() for p in PROFILES}
    for seed in range(20):
        small, big, vif, daemon = (model_search(p, seed, spec, timeout)[0] for p in PROFILES)
        assert small is not None and big is not None and vif is not None
        assert daemon is not None
        assert small < vif <= big < daemon, (seed, small, big, vif, daemon)
        for profile, capacity in zip(PROFILES, (small, big, vif, daemon), strict=True):
            found[profile].add(capacity)
    assert max(found["small-pets"]) < 100 < min(found["big-pets"])  # the field's finding 1
    assert max(found["big-pets"]) < 200  # finding 2: 200 did not all start
    assert found["rootwrap-daemon"] == {593}  # the proxy's 60 s at 0.1 s per instance


def _first_fail_case(run: results.Run, profile: str) -> str:
    points = run.table("search")
    row = points[(points["search"] == f"sim_profile={profile}")
                 & (points["value"] == capacities(run)[profile]["first_fail"])]
    (case,) = row.iloc[0]["cases"]
    return str(case)


@pytest.mark.slow
def test_each_search_stops_where_its_finding_says(runs: Searched) -> None:
    """At each search's first failing count, what failed is the profile's finding:
    builds timed out in the conductor's queue (small pets), DHCP clients gave up on
    late ports (big pets), Nova gave up on late ports (vif-fatal), the proxy answered
    504 while every instance came up (the daemon)."""
    for (seed, profile), run in runs.items():
        instances, creates = run.table("instances"), run.table("creates")
        points = run.table("search")
        case = _first_fail_case(run, profile)
        mine = instances[instances["case"] == case]
        lost = mine[mine["outcome"] != "ok"]
        (missed,) = points[points["cases"].map(lambda c, case=case: c == [case])][
            "missed"].iloc[0]
        status = pd.to_numeric(creates[creates["case"] == case]["status"],
                               errors="coerce")
        where = (seed, profile, case)
        if profile == "rootwrap-daemon":
            assert lost.empty and missed == ["create_errors == 0"], where
            assert list(status) == [504], where
            continue
        assert missed == ["phone_home_ok_pct == 100"] and not lost.empty, where
        assert not (status == 504).any(), where
        if profile == "small-pets":
            prefix = RPC_FAULT.split("{", 1)[0]
            assert set(lost["outcome"]) == {"error"}, where
            assert lost["fault"].astype(str).str.startswith(prefix).all(), where
        elif profile == "big-pets":
            assert set(lost["outcome"]) == {"no_phone_home"}, where
            assert (lost["console_class"] == "dhcp_timeout").all(), where
        else:
            assert set(lost["outcome"]) == {"error"}, where
            assert lost["fault"].astype(str).str.contains(VIF_FAILURE,
                                                          regex=False).all(), where


@pytest.mark.slow
def test_every_point_was_cleaned_up_before_the_next(runs: Searched) -> None:
    for run in distinct(runs):
        seed = run.manifest["seed"]
        cases = run.table("cases")
        cleanup = run.table("cleanup").set_index("case")
        assert len(cleanup) == len(cases), seed
        assert (cleanup[["leftover_servers", "leftover_ports", "unaccounted"]] == 0).all().all()
        created = run.table("instances").groupby("case")["instance_id"].count()
        assert (cleanup.loc[created.index, "deleted"] == created).all(), seed
        # One point at a time: each case started after the previous one ended.
        ended = cases["ended_at"].shift()
        assert (cases["started_at"].iloc[1:] >= ended.iloc[1:]).all(), seed
        assert cases["sweep.count"].max() <= _spec().max


SLOW_SEARCH = """\
name: slow-search
kind: boot
params: {image: cirros-sim, flavor: c1.small, networks: [demo-network], count: 50}
target: {sim_profile: big-pets}
monitors: {interval: 2s}
search: {param: count, start: 50, max: 100, resolution: 50}
sla: ["phone_home_ok_pct == 100", "p95(time_to_phone_home_s) <= 200"]
"""


async def test_a_point_that_is_only_slow_names_its_bottleneck(tmp_path: Path) -> None:
    """Big pets at 100 all phone home, but p95 ~227 s misses 200 s: the search row names
    the DHCP agent's backlog (the SLA's verdicts reach attribution's "slow" symptom)."""
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SLOW_SEARCH)
    result = await Runner(load_scenario(scenario), RunOptions(
        results_dir=tmp_path / "r", target=TargetSpec(time_scale=TIME_SCALE))).run()
    assert result.status == "completed"
    points = results.load(result.path).table("search")
    assert list(points["verdict"]) == ["pass", "fail"]
    (missed,) = points["missed"].iloc[1]
    assert missed == ["p95(time_to_phone_home_s) <= 200"]
    (bottleneck,) = points["bottlenecks"].iloc[1]
    assert bottleneck.startswith("backlog: neutron-dhcp-agent backlog"), bottleneck
