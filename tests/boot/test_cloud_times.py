"""ACTIVE, port ACTIVE and ERROR times from the cloud's own timestamps (issue 18).

Against the embedded simulated cloud, whose model knows when each instance
really went ACTIVE, with the default `poll_interval_s: 5s`: every reported
ACTIVE time is within 1 s of the truth (from `launched_at`, mapped with the
offset estimated from the Date headers), where the poll's own time is late by
up to the poll interval; both are shown, on two seeds.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import osbench.cloudclient
from osbench import results, targets
from osbench.cloudclock import (
    DATE_LAG_S,
    CloudTime,
    Offset,
    OffsetEstimator,
    on_our_clock,
    parse_cloud_time,
)
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml

POLL_S = 5.0
#: Real seconds pass this many times slower than modelled ones: the harness's
#: request round trips, which bound the offset, are modelled seconds too.
TIME_SCALE = 30


async def _boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, seed: int, profile: str,
                count: int, sla: str = "phone_home_ok_pct == 100",
                time_scale: float = TIME_SCALE) -> tuple[results.Run, Any]:
    """Run a boot on the embedded simulated cloud; the run and the SimCloud it used."""
    opened: list[Any] = []
    real = osbench.cloudclient.open_cloud

    @asynccontextmanager
    async def keep(spec: TargetSpec, run_seed: int) -> AsyncIterator[targets.Target]:
        async with real(spec, run_seed) as target:
            opened.append(target)
            yield target

    monkeypatch.setitem(targets._openers, "cloud", keep)
    name = f"times-{profile}-{seed}"
    scenario = parse_scenario(load_text(boot_yaml(count, poll=f"{POLL_S:g}s", sla=sla,
                                                  name=name), f"{name}.yaml"))
    options = RunOptions(results_dir=tmp_path / "results", seed=seed,
                         target=TargetSpec(sim_profile=profile, time_scale=time_scale))
    result = await Runner(scenario, options).run()
    assert result.status == "completed", result
    (target,) = opened
    return results.load(result.path), target.sim


def _truth(run: results.Run, sim: Any, column: str, when: str) -> pd.DataFrame:
    """Each instance's reported and poll times of `column` (active, port_active,
    error), and the model's truth (timeline field `when`), since its create."""
    (clock,) = run.table("cloud_clock").to_dict("records")
    creates = run.table("creates").set_index("batch")["sent_s"]
    by_id = {s.id: s.timeline for s in sim.servers.values()}
    rows = []
    for row in run.table("instances").to_dict("records"):
        true_at = getattr(by_id[row["instance_id"]], when)
        sent = clock["clock_origin_s"] + creates[row["batch"]]
        rows.append({"reported": row[f"time_to_{column}_s"], "source": row[f"{column}_source"],
                     "poll": row[f"time_to_{column}_poll_s"],
                     "truth": None if true_at is None else true_at - sent})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1])
async def test_active_times_within_a_second_of_the_truth(
        seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, sim = await _boot(tmp_path, monkeypatch, seed=seed, profile="healthy", count=30)
    (clock,) = run.table("cloud_clock").to_dict("records")
    # The manifest's record of the cloud's clock: the sim serves ours (offset ~0).
    assert clock["samples"] >= 10 and clock["agreeing"] == clock["samples"]
    assert abs(clock["offset_s"]) <= clock["uncertainty_s"] + 1e-3
    assert clock["uncertainty_s"] < 0.5
    (entry,) = run.manifest["targets"]
    assert entry["cloud_clock"] == {clock["case"]: {k: v for k, v in clock.items()
                                                    if k != "case"}}

    active = _truth(run, sim, "active", "active_at")
    assert len(active) == 30 and (active["source"] == "launched_at").all()
    error = (active["reported"] - active["truth"]).abs()
    poll_error = active["poll"] - active["truth"]
    print(f"\nseed {seed}: ACTIVE |reported - truth| max {error.max():.3f} s "
          f"(launched_at, offset ±{clock['uncertainty_s']:.3f} s); poll - truth "
          f"{poll_error.min():.2f}..{poll_error.max():.2f} s at a {POLL_S:g} s poll")
    assert error.max() <= 1.0, active
    # The poll's time, kept beside it, is late: never early, often by seconds.
    assert (poll_error >= -1e-6).all()
    assert poll_error.max() > 1.0

    ports = _truth(run, sim, "port_active", "port_active_at")
    assert (ports["source"] == "updated_at").all()
    # Neutron's updated_at names the second: within it, and the polls' bounds.
    assert (ports["reported"] - ports["truth"]).abs().max() <= 1.0
    # Timelines: the stamp's row is the earliest per instance, so curves use it.
    timeline = run.table("timeline")
    firsts = timeline[timeline["event"] == "active"].sort_values("t_s").groupby(
        "instance_id")["source"].first()
    assert (firsts == "launched_at").all()


async def test_a_served_simulator_at_60x_is_a_clock_at_another_rate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`osbench sim serve` at time scale 60 with `--cloud`: the run's clock is real,
    the cloud's runs 60 times faster. The fitted line maps launched_at back within
    1 modelled second of the truth, where a 500 ms poll is up to 30 s late."""
    scale = 60.0
    scenario = parse_scenario(load_text(boot_yaml(30, poll="500ms", name="served"),
                                        "served.yaml"))
    with SimThread(time_scale=scale) as served:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(served.write_clouds_yaml(tmp_path / "clouds.yaml")))
        result = await Runner(scenario, RunOptions(
            results_dir=tmp_path / "results", target=TargetSpec(cloud=CLOUD_NAME))).run()
        # The simulator's modelled zero on our (real) clock: two readings, here only.
        zero = time.perf_counter() - served.sim.clock.monotonic() / scale
        timelines = {s.id: s.timeline for s in served.sim.servers.values()}
    assert result.status == "completed"
    run = results.load(result.path)
    (clock,) = run.table("cloud_clock").to_dict("records")
    assert clock["rate"] == pytest.approx(scale, rel=0.01)
    sent = run.table("creates").set_index("batch")["sent_s"]
    errors, late = [], []
    for row in run.table("instances").to_dict("records"):
        assert row["active_source"] == "launched_at"
        truth = zero + timelines[row["instance_id"]].active_at / scale
        start = clock["clock_origin_s"] + sent[row["batch"]]
        errors.append(abs(start + row["time_to_active_s"] - truth) * scale)
        late.append((start + row["time_to_active_poll_s"] - truth) * scale)
    print(f"\nserved at 60x: ACTIVE |reported - truth| max {max(errors):.3f} modelled s; "
          f"poll - truth {min(late):.2f}..{max(late):.2f}")
    assert max(errors) <= 1.0
    assert max(late) > 5.0


async def test_error_times_from_the_failed_instance_action(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small pets at 100: the conductor's RPC timeouts go ERROR; each failed instance's
    ERROR time is its failed event's finish, looked up once at the end (two requests)."""
    run, sim = await _boot(tmp_path, monkeypatch, seed=0, profile="small-pets", count=100,
                           sla="requested == 100", time_scale=60)
    instances = run.table("instances")
    failed = instances[instances["outcome"] == "error"]
    assert len(failed) >= 1
    assert (failed["error_source"] == "instance_action").all()
    assert (failed["error_event"] == "conductor_schedule_and_build_instances").all()
    errors = _truth(run, sim, "error", "failed_at").dropna(subset=["truth"])
    assert len(errors) == len(failed)
    error = (errors["reported"] - errors["truth"]).abs()
    poll_error = errors["poll"] - errors["truth"]
    print(f"\nsmall-pets 100: {len(errors)} ERROR, |reported - truth| max {error.max():.3f} s "
          f"(instance actions); poll - truth {poll_error.min():.2f}..{poll_error.max():.2f} s")
    assert error.max() <= 1.0, errors
    counts = sim.request_counts()
    lookups = sum(n for (service, method, route), n in counts.items()
                  if "os-instance-actions" in route)
    assert lookups == 2 * len(failed)


# -- the offset estimator alone ------------------------------------------------------

def _replies(offset: float, n: int, *, seed: int, rate: float = 1.0,
             latency: tuple[float, float] = (0.01, 0.2),
             lag: float = 0.0) -> list[tuple[float, float, str]]:
    """`n` replies from a cloud whose clock reads `offset + rate * ours`: sent,
    received (our clock) and the Date header it stamps somewhere in between, from
    a server clock lagging by up to `lag`."""
    rng = random.Random(seed)
    out, t = [], 1000.0
    for _ in range(n):
        t += rng.uniform(0.5, 5.0)
        rtt = rng.uniform(*latency)
        stamped = t + rng.uniform(0.0, rtt)
        date = datetime.fromtimestamp(offset + rate * stamped - rng.uniform(0.0, lag), UTC)
        out.append((t, t + rtt, email.utils.format_datetime(date, usegmt=True)))
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("lag", "latency"), [(0.0, (0.01, 0.2)), (0.005, (0.0005, 0.002))])
def test_offset_estimate_holds_the_true_offset_and_narrows(
        seed: int, lag: float, latency: tuple[float, float]) -> None:
    """Also when the server dates replies from a clock lagging by up to 5 ms (uwsgi's
    time(): Linux's coarse clock), with round trips short enough to meet it."""
    true = 1_780_000_000.123456 + seed * 0.37  # cloud POSIX time minus our clock
    one, many = OffsetEstimator(), OffsetEstimator()
    for i, (sent, received, date) in enumerate(_replies(true, 300, seed=seed, lag=lag,
                                                        latency=latency)):
        if i == 0:
            one.add(sent, received, date)
        many.add(sent, received, date)
    first, best = one.estimate(), many.estimate()
    assert first is not None and best is not None
    # One reply bounds it to its second plus its round trip; 300 to about the shortest.
    assert abs(first.offset_s - true) <= first.uncertainty_s
    assert 0.5 <= first.uncertainty_s <= 0.5 + (0.2 + DATE_LAG_S) / 2
    assert abs(best.offset_s - true) <= best.uncertainty_s <= 0.05
    assert best.samples == best.agreeing == 300


def test_offset_estimate_ignores_a_stray_reply_and_refuses_two_clocks() -> None:
    true = 1_780_000_000.5
    est = OffsetEstimator()
    replies = _replies(true, 100, seed=1)
    for sent, received, date in replies:
        est.add(sent, received, date)
    sent, received, _ = replies[-1]
    skewed = datetime.fromtimestamp(true + received + 7.0, UTC)  # a host 7 s ahead
    est.add(sent, received, email.utils.format_datetime(skewed, usegmt=True))
    est.add(sent, received, "not a date")
    got = est.estimate()
    assert got is not None and abs(got.offset_s - true) <= got.uncertainty_s
    assert (got.samples, got.agreeing, est.unreadable) == (101, 100, 1)
    # Half the replies from a clock 3 s apart: no one offset.
    split = OffsetEstimator()
    for i, (sent, received, date) in enumerate(_replies(true, 40, seed=2)):
        if i % 2:
            moved = datetime.fromtimestamp(true + 3.0 + sent, UTC)
            date = email.utils.format_datetime(moved, usegmt=True)
        split.add(sent, received, date)
    assert split.estimate() is None
    assert OffsetEstimator().estimate() is None


@pytest.mark.parametrize(("rate", "fitted"), [(20.0, True), (1.0 + 1e-4, False)])
def test_a_clock_at_another_rate_is_fitted_as_a_line(rate: float, fitted: bool) -> None:
    """A simulator served at time scale 20 against a run on the real clock: no one
    offset holds, one line does. A real clock drifting 100 ppm (over the replies'
    ~3 min) stays within one offset's bounds."""
    true = 1_780_000_000.5
    replies = _replies(true, 60, seed=4, rate=rate)
    est = OffsetEstimator()
    for sent, received, date in replies:
        est.add(sent, received, date)
    line = est.estimate()
    assert line is not None and line.agreeing == 60
    assert line.rate == (pytest.approx(rate, rel=1e-3) if fitted else 1.0)
    # Cloud instants map back onto our clock within the bounds stated, across the span.
    for ours in (replies[0][0], replies[30][0], replies[-1][1]):
        cloud = true + rate * ours
        mapped = on_our_clock(CloudTime(cloud, cloud), line)
        assert mapped is not None and abs(mapped.value_s - ours) <= mapped.uncertainty_s
        assert mapped.uncertainty_s < 0.2


def test_cloud_stamps_and_their_mapping() -> None:
    exact = parse_cloud_time("2026-11-30T21:00:00.250000")
    assert exact is not None and exact.low == exact.high
    whole = parse_cloud_time("2026-11-30T21:00:00.000000")
    zulu = parse_cloud_time("2026-11-30T21:00:00Z")
    assert whole == zulu and whole is not None
    # Whole seconds: truncated (MariaDB) or rounded (MySQL).
    assert (whole.low, whole.high) == (exact.low - 0.75, exact.low + 0.75)
    assert parse_cloud_time("yesterday") is None and parse_cloud_time(None) is None
    offset = Offset(offset_s=exact.low - 100.0, uncertainty_s=0.1, samples=1, agreeing=1)
    mapped = on_our_clock(exact, offset)
    assert mapped is not None and (mapped.value_s, mapped.uncertainty_s) == (
        pytest.approx(100.0), pytest.approx(0.1))
    # Narrowed by what the polls saw, and refused when they contradict it.
    narrowed = on_our_clock(whole, offset, not_before=99.9, not_after=100.2)
    assert narrowed is not None and narrowed.value_s == pytest.approx(100.05)
    assert on_our_clock(exact, offset, not_after=99.0) is None
