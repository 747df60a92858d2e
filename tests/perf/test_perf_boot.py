"""Simulated boots of 1000, 3000 and 10,000 instances through osbench's runner,
the harness measured apart from the simulated cloud (issue 15).

The simulator runs in a process of its own (`osbench sim serve`, a fresh one
per round; tests/perf/served.py) and the harness in another (tests/perf/child.py
with `--cloud` naming it: the production path, openstacksdk reading
clouds.yaml). So each process's CPU seconds and peak RSS are its own:

- the harness: CPU (user + system, every thread) and memory above its
  after-imports baseline, from the child itself; and `busy`, the wall time its
  event loop was not blocked waiting for I/O or a timer (the cloud's replies,
  the poll interval, the guests). Busy is not CPU: on a loaded machine it also
  holds time the runnable loop waited for a core or for the GIL (openstacksdk
  calls run on worker threads); CPU seconds are the robust figure;
- the simulator: CPU over the run and peak RSS, read from /proc from outside.

Wall time is mostly the modelled cloud's: the profile's timeline (the last
guest phones home ~250 modelled s after the create) passes at the time scale,
whatever the harness does. It is reported with that floor beside it.

Like for like (issue 15: "compare at the same time scale and profile shape"):
every size runs at the same time scale on rootwrap-daemon (finding 6) with
every capacity scaled by N/1000 (cores, nova-api rate, the DHCP agent's cost
per port; quotas), so the modelled timeline has the same shape and length at
each size (planned phone-home p50 157-159 s, p99 233-236 s) and the harness
sees N/1000 times the rate of the same events. On the unscaled profile a
10,000 boot mostly fails in the modelled cloud (the single DHCP agent falls
behind), which would measure the cloud, not the harness. Three rounds per
size, one seed (the modelled plan is the same in each round: rounds differ by
this machine only). The per-instance cost is the slope of a least-squares fit
of each figure over all nine rounds; the spread is the range of the slopes
fitted round by round.

Time scale: with both in one process, a 10,000 boot at time scale 20 was
CPU-bound on 2 cores (phone-homes stamped ~100 modelled s late). Apart, at 8,
a 10,000 boot on the 2-core machine (busy with other work) still ran late
(phone-home p50 207 modelled s for a planned 157; the harness used 25 s of CPU
in 53 s, the simulator 17 s). At 4 both keep up (p50 157 s; the simulator
~20% of a core, the harness ~30%), so every size runs at 4: ~1 min of modelled
timeline per boot, ~11 min for the nine. Each boot reports its measured
phone-home p50 next to the model's plan and the simulator's CPU share, the
checks that neither process was the bottleneck.

Issue 3's goal (the 1000 boot in under 60 s of wall, at the profile's time
scale 20) is not judged here: at time scale 4 the modelled timeline alone is
61 s. What the harness adds to the wall is reported instead (`wall beyond the
timeline`: start-up and authentication, the create, the last poll, deleting
every server); nothing is asserted on time, a loaded machine must not fail
the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from osbench.sim.model import plan_once
from osbench.sim.profiles import load_profile, profile_from_dict
from tests.perf.conftest import Figures
from tests.perf.served import CHILD_TIMEOUT_S, REPO, ServedSim, boot_served

__all__ = ["CHILD_TIMEOUT_S", "REPO", "scenario_yaml"]

#: Modelled seconds per real second, the same at every size.
TIME_SCALE = 4.0
SIZES = (1000, 3000, 10_000)
ROUNDS = 3
SEED = 0
#: Finding 6's profile; every size runs it with capacity x N/1000.
BASE_PROFILE = "rootwrap-daemon"
#: The boot kind's defaults, in modelled seconds; the harness on a named cloud
#: keeps real time, so the scenario gives them divided by the time scale.
POLL_INTERVAL_S = 5.0
ACTIVE_TIMEOUT_S = 900.0
PHONE_HOME_TIMEOUT_S = 1200.0
CREATE_OUTCOME_WAIT_S = 600.0


def scaled_profile(factor: int, time_scale: float = TIME_SCALE) -> dict[str, Any]:
    """BASE_PROFILE with every capacity x `factor`: a boot of factor x 1000 has the
    timeline of a 1000 boot on BASE_PROFILE."""
    data = load_profile(BASE_PROFILE).as_dict()
    cp, api, nt, quotas = (data["control_plane"], data["nova_api"], data["neutron"],
                           data["quotas"])
    cp["cores"] *= factor
    api["per_instance_s"] /= factor
    nt["privileged_call_s"] /= factor
    nt["host_file_rewrite_s"] /= factor
    # Per port the agent rewrites a host file of ~factor x as many entries.
    nt["host_file_entry_s"] /= factor * factor
    nt["port_quota"] = max(nt["port_quota"], 2000 * factor)
    for key, per_1000 in (("instances", 2000), ("cores", 4000), ("ram_mb", 4_096_000)):
        quotas[key] = max(quotas[key], per_1000 * factor)
    data.update(name=f"{BASE_PROFILE}-x{factor}", time_scale=time_scale,
                description=f"{BASE_PROFILE} with every capacity x{factor}")
    return data


def scenario_yaml(count: int, profile: str) -> str:
    """Finding 6's case as `osbench run` runs it with no --cloud (the embedded
    simulator, at the profile's time scale); tests/perf/test_perf_report.py's runs."""
    return f"""\
name: perf-boot-{count}
kind: boot
params:
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  key_name: mykey
  count: {count}
target:
  sim_profile: {profile}
sla:
  - phone_home_ok_pct == 100
"""


def served_scenario_yaml(count: int, time_scale: float = TIME_SCALE) -> str:
    """The same case for a named cloud that is a served simulator: the boot kind's
    default durations (modelled s) in real seconds at `time_scale`."""
    base = scenario_yaml(count, "unused")
    return base[:base.index("target:")] + f"""\
  phone_home_port: 0
  poll_interval_s: {POLL_INTERVAL_S / time_scale:g}
  active_timeout_s: {ACTIVE_TIMEOUT_S / time_scale:g}
  phone_home_timeout_s: {PHONE_HOME_TIMEOUT_S / time_scale:g}
  create_outcome_wait_s: {CREATE_OUTCOME_WAIT_S / time_scale:g}
sla:
  - phone_home_ok_pct == 100
"""


#: Every round of this session, by size, for the fit.
_ROUNDS: dict[int, list[dict[str, Any]]] = {}


def checked_round(m: dict[str, Any], count: int, profile: dict[str, Any]) -> dict[str, Any]:
    """Check every instance phoned home; add the derived figures to `m`."""
    assert m["status"] == "completed", m["errors"]
    run = results.load(Path(m["path"]))
    instances = run.table("instances")
    arrivals = run.table("phone_home")
    assert len(instances) == count
    assert bool((instances["outcome"] == "ok").all()), instances["outcome"].value_counts()
    assert set(arrivals["instance_id"]) == set(instances["instance_id"])
    # Real seconds on the harness's clock; x time scale = modelled seconds.
    phone_home_s = instances["time_to_phone_home_s"] * TIME_SCALE
    plan = plan_once(profile_from_dict(profile, source=profile["name"]), SEED, count)
    planned = pd.Series([t.phone_home_at for t in plan.timelines], dtype=float)
    m.update({
        "instances": count,
        "time_scale": TIME_SCALE,
        "poll_cycles": len(run.table("polls")),
        "phone_homes_recorded": len(arrivals),
        "phone_home_p50_modelled_s": float(phone_home_s.median()),
        "planned_phone_home_p50_s": float(planned.median()),
        "planned_last_phone_home_s": float(planned.max()),
        # The wall no harness can beat: the modelled timeline at the time scale.
        "timeline_wall_s": float(planned.max()) / TIME_SCALE,
        "wall_beyond_timeline_s": m["wall_s"] - float(planned.max()) / TIME_SCALE,
        "busy_s": m["wall_s"] - m["loop_waiting_s"],
        "rss_growth_mib": m["peak_rss_mib"] - m["rss_before_mib"],
        "sim_cpu_share": m["sim_cpu_s"] / m["wall_s"],
        "sim_rss_growth_mib": m["sim_peak_rss_mib"] - m["sim_rss_before_mib"],
    })
    return m


def _span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else (
        f"{format(low, fmt)}-{format(high, fmt)}")


def size_line(rounds: list[dict[str, Any]]) -> str:
    """The figures of one size's rounds, each as its range over the rounds."""
    def col(key: str, scale: float = 1.0) -> list[float]:
        return [scale * r[key] for r in rounds]

    n = rounds[0]["instances"]
    per = 1000 / n
    return (
        f"{len(rounds)} rounds. Harness (own process): CPU {_span(col('cpu_s'), '.1f')} s "
        f"({_span(col('cpu_s', per), '.2f')} ms/instance), event loop not blocked on "
        f"I/O or timers {_span(col('busy_s'), '.1f')} s, peak RSS "
        f"{_span(col('peak_rss_mib'), '.0f')} MiB "
        f"(+{_span(col('rss_growth_mib'), '.0f')} MiB over after-imports, "
        f"{_span(col('rss_growth_mib', 1024 / n), '.1f')} KiB/instance), wall "
        f"{_span(col('wall_s'), '.1f')} s: the modelled timeline's "
        f"{rounds[0]['timeline_wall_s']:.1f} s + {_span(col('wall_beyond_timeline_s'), '.1f')} s "
        f"beyond it (start-up, create, last poll, cleanup). Simulator (own process): CPU "
        f"{_span(col('sim_cpu_s'), '.1f')} s ({_span(col('sim_cpu_share', 100), '.0f')}% of "
        f"the run), peak RSS {_span(col('sim_peak_rss_mib'), '.0f')} MiB. "
        f"{rounds[0]['phone_homes_recorded']}/{n} phoned home, p50 "
        f"{_span(col('phone_home_p50_modelled_s'), '.0f')} s (plan "
        f"{rounds[0]['planned_phone_home_p50_s']:.0f} s, modelled), "
        f"{_span(col('poll_cycles'), '.0f')} poll cycles, time scale {TIME_SCALE:g}")


@pytest.mark.parametrize("count", SIZES)
def test_boot_simulated(count: int, benchmark: BenchmarkFixture,
                        tmp_path: Path, figures: Figures) -> None:
    factor = count // 1000
    profile = scaled_profile(factor)
    profile_path = tmp_path / f"{profile['name']}.yaml"
    profile_path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    scenario = tmp_path / f"perf-boot-{count}.yaml"
    scenario.write_text(served_scenario_yaml(count), encoding="utf-8")
    rounds: list[dict[str, Any]] = []
    sims: list[ServedSim] = []

    def start_sim() -> tuple[tuple[ServedSim], dict[str, Any]]:
        sim = ServedSim(profile_path, tmp_path / f"sim-{len(sims)}", time_scale=TIME_SCALE,
                        seed=SEED)
        sims.append(sim)
        return (sim,), {}

    def boot(sim: ServedSim) -> None:
        # Above max_instances (1000): the ceiling is lifted as a user would, not raised.
        rounds.append(boot_served(sim, scenario, tmp_path / f"results-{len(rounds)}",
                                  allow_large=count > 1000))

    try:
        benchmark.pedantic(boot, setup=start_sim, teardown=lambda sim: sim.stop(),
                           rounds=ROUNDS, iterations=1)
    finally:
        for sim in sims:
            sim.stop()
    for sim in sims:
        assert "Traceback" not in sim.stderr_text, sim.stderr_text[-2000:]
    rounds = [checked_round(m, count, profile) for m in rounds]
    _ROUNDS[count] = rounds

    keys = ("wall_s", "wall_beyond_timeline_s", "phone_homes_recorded", "cpu_s",
            "cpu_user_s", "cpu_system_s", "busy_s", "loop_waiting_s",
            "peak_rss_mib", "rss_before_mib", "rss_growth_mib", "sim_cpu_s", "sim_cpu_share",
            "sim_peak_rss_mib", "sim_rss_before_mib", "sim_requests",
            "phone_home_p50_modelled_s", "poll_cycles")
    benchmark.extra_info.update({
        "what": "harness = the osbench run's process (child.py --cloud), from after imports "
                "to the run's end; sim = `osbench sim serve` in its own process; the timed "
                "round is the harness process's whole life (imports included)",
        "instances": count, "rounds": len(rounds), "time_scale": TIME_SCALE,
        "profile": profile["name"], "seed": SEED,
        "planned_phone_home_p50_s": round(rounds[0]["planned_phone_home_p50_s"], 3),
        "timeline_wall_s": round(rounds[0]["timeline_wall_s"], 3),
        **{f"{k}_per_round": [round(float(r[k]), 3) for r in rounds] for k in keys},
    })
    figures(f"boot {count} (served sim, x{factor})", size_line(rounds))
    if all(size in _ROUNDS for size in SIZES):
        fit = scaling_fit([r for size in SIZES for r in _ROUNDS[size]])
        benchmark.extra_info["scaling_fit"] = fit
        figures("boot scaling 1000/3000/10,000", fit_line(fit))


#: Figures fitted against the instance count: per instance, the slope.
FITTED = {"cpu_s": "harness CPU", "busy_s": "harness loop not blocked",
          "rss_growth_mib": "harness RSS above after-imports", "sim_cpu_s": "simulator CPU"}


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares y = a + b x: (b, a, standard error of b)."""
    b, a = np.polyfit(x, y, 1)
    residuals = y - (a + b * x)
    dof = len(x) - 2
    se = float(np.sqrt((residuals @ residuals) / dof / ((x - x.mean()) @ (x - x.mean())))
               ) if dof > 0 else float("nan")
    return float(b), float(a), se


def scaling_fit(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure: slope (per instance) and intercept over all rounds, its standard
    error, and the slopes fitted round by round (round i of every size)."""
    out: dict[str, Any] = {"sizes": list(SIZES), "rounds_per_size": ROUNDS,
                           "time_scale": TIME_SCALE}
    x = np.array([r["instances"] for r in rounds], dtype=float)
    for key in FITTED:
        y = np.array([r[key] for r in rounds], dtype=float)
        slope, intercept, se = _slope(x, y)
        by_round = []
        for i in range(ROUNDS):
            picked = [r for size in SIZES
                      for r in [r2 for r2 in rounds if r2["instances"] == size][i:i + 1]]
            if len(picked) == len(SIZES):
                by_round.append(_slope(np.array([r["instances"] for r in picked], dtype=float),
                                       np.array([r[key] for r in picked], dtype=float))[0])
        per_instance = {size: [r[key] / size for r in rounds if r["instances"] == size]
                        for size in SIZES}
        out[key] = {
            "slope_per_instance": slope, "intercept": intercept, "slope_se": se,
            "slope_by_round": by_round,
            "per_instance_mean_by_size": {str(s): float(np.mean(v))
                                          for s, v in per_instance.items()},
        }
    return out


def fit_line(fit: dict[str, Any]) -> str:
    def one(key: str, unit_scale: float, unit: str, fmt: str, fixed_unit: str) -> str:
        f = fit[key]
        rounds = [unit_scale * s for s in f["slope_by_round"]]
        means = " / ".join(format(unit_scale * f["per_instance_mean_by_size"][str(s)], fmt)
                           for s in SIZES)
        return (f"{FITTED[key]}: {unit_scale * f['slope_per_instance']:{fmt}} {unit}/instance "
                f"(+-{unit_scale * f['slope_se']:{fmt}} s.e.; fitted round by round "
                f"{_span(rounds, fmt)}; fixed part {f['intercept']:.1f} {fixed_unit}; "
                f"total/N at {'/'.join(map(str, SIZES))}: {means})")

    return (f"least squares over {len(SIZES)} sizes x {ROUNDS} rounds, time scale "
            f"{TIME_SCALE:g}: " + "; ".join([
                one("cpu_s", 1000, "ms", ".2f", "s"), one("busy_s", 1000, "ms", ".2f", "s"),
                one("rss_growth_mib", 1024, "KiB", ".1f", "MiB"),
                one("sim_cpu_s", 1000, "ms", ".2f", "s")]))
