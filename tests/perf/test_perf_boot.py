"""Simulated boots end to end through osbench's own runner: 1000 and 10,000.

Issue 3's goal: the 1000-instance boot, phone-homes included, in under 60 s
of wall time on the 2-core reference machine. That is reported, not asserted:
a loaded CI machine must not fail the suite; `--benchmark-compare` shows a
regression.

Issue 8 asks whether the harness scales linearly to 10,000. Each boot runs in
a fresh process (tests/perf/child.py) so its peak RSS is its own; the
figures that answer the question are per instance and do not depend on the
machine's load as wall time does: CPU seconds per instance and memory above
the process's baseline (peak RSS minus RSS after imports) per instance.

Like for like: the 10,000 boot runs on the 1000 boot's profile with every
capacity scaled by 10 (cores, nova-api rate, DHCP agent cost per port, quotas),
so the simulated cloud's timeline lasts as long (~250 modelled s, all ok) and
the harness sees 10x the rate of the same events. On the unscaled profile a
10,000 boot mostly fails in the modelled cloud (the single DHCP agent falls
behind: 7485 of 10,000 ERROR), which would measure the cloud, not the harness.

Fidelity: each boot also reports its measured phone-home p50 next to the
model's plan. On 2 cores a 10,000 boot at the profile's time scale (20) is
CPU-bound (wall 36 s for CPU 35 s): the loop the simulated guests and the
registration server share runs late, and the measured phone-home p50 was 260 s
for a planned 157 s (16 poll cycles instead of ~40). At time scale 4 it keeps
up (p50 157 s, 36 cycles) and takes ~90 s, so the 10,000 boot runs at 4.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from osbench.sim.model import plan_once
from osbench.sim.profiles import load_profile
from tests.perf.conftest import Figures

#: Issue 3: "finishes in under 60 s of wall time on this 2-core machine".
GOAL_WALL_S = 60.0
#: The runs stop themselves (at the latest phone_home_timeout_s after the
#: create: 1200 modelled s, 300 s of wall at time scale 4); this only kills a
#: hung child. A 10,000 boot took ~90 s on the 2-core machine.
CHILD_TIMEOUT_S = 600.0
REPO = Path(__file__).resolve().parents[2]

#: The 10,000 boot's profile: rootwrap-daemon (finding 6) with capacity x10.
SCALED_X10 = {
    "name": "rootwrap-daemon-x10",
    "description": "rootwrap-daemon with every capacity x10: a 10,000 boot takes as long "
                   "as 1000 on rootwrap-daemon",
    "time_scale": 4,
    "control_plane": {"cores": 160, "memory_gb": 16},
    "nova_api": {"per_instance_s": 0.01},
    "neutron": {"root_helper": "daemon", "privileged_call_s": 0.0048,
                "host_file_rewrite_s": 0.001, "host_file_entry_s": 0.0000002,
                "port_quota": 20000},
    "compute": {"vif_plugging_is_fatal": True, "vif_plugging_timeout_s": 300},
    "quotas": {"instances": 20000, "cores": 40000, "ram_mb": 40960000},
}


def scenario_yaml(count: int, profile: str) -> str:
    # Finding 6's case (scenarios/seed-replay/06-rootwrap-daemon-1000.yaml), as
    # `osbench run` would run it with no --cloud, at the profile's time scale.
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


#: Figures of the boots run in this session, by count, for the scaling ratios.
_BOOTS: dict[int, dict[str, Any]] = {}


def run_boot(count: int, profile: str, tmp_path: Path, benchmark: BenchmarkFixture,
             *, allow_large: bool = False) -> dict[str, Any]:
    """Boot `count` in a child process (timed by `benchmark`); check every instance
    phoned home; return the child's figures with per-instance ones added."""
    scenario = tmp_path / f"perf-boot-{count}.yaml"
    scenario.write_text(scenario_yaml(count, profile), encoding="utf-8")
    command = [sys.executable, "-m", "tests.perf.child", "boot", str(scenario),
               str(tmp_path / "results"), *(["--allow-large"] if allow_large else [])]

    def boot() -> dict[str, Any]:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        return figures

    measured: dict[str, Any] = benchmark.pedantic(boot, rounds=1, iterations=1)

    assert measured["status"] == "completed", measured["errors"]
    run = results.load(Path(measured["path"]))
    instances = run.table("instances")
    arrivals = run.table("phone_home")
    assert len(instances) == count
    assert bool((instances["outcome"] == "ok").all()), instances["outcome"].value_counts()
    assert set(arrivals["instance_id"]) == set(instances["instance_id"])
    polls = run.table("polls")
    phone_home_s = instances["time_to_phone_home_s"]
    plan = plan_once(load_profile(profile), 0, count)
    planned_s = pd.Series([t.phone_home_at for t in plan.timelines], dtype=float)
    measured.update({
        "phone_home_p50_s": float(phone_home_s.median()),
        "phone_home_p99_s": float(phone_home_s.quantile(0.99)),
        "planned_phone_home_p50_s": float(planned_s.median()),
        "instances": count,
        "phone_homes_recorded": len(arrivals),
        "poll_cycles": len(polls),
        "time_scale": run.manifest["targets"][0].get("time_scale"),
        "wall_ms_per_instance": 1000 * measured["wall_s"] / count,
        "cpu_ms_per_instance": 1000 * measured["cpu_s"] / count,
        "rss_growth_mib": measured["peak_rss_mib"] - measured["rss_before_mib"],
        "kib_per_instance": 1024 * (measured["peak_rss_mib"] - measured["rss_before_mib"])
        / count,
    })
    _BOOTS[count] = measured
    benchmark.extra_info.update({k: round(v, 3) if isinstance(v, float) else v
                                 for k, v in measured.items() if k not in ("path", "errors")})
    return measured


def _line(m: dict[str, Any]) -> str:
    return (f"wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s "
            f"({m['wall_ms_per_instance']:.2f} / {m['cpu_ms_per_instance']:.2f} ms per "
            f"instance wall/CPU), peak RSS {m['peak_rss_mib']:.0f} MiB (after imports "
            f"{m['rss_before_mib']:.0f} MiB: {m['kib_per_instance']:.1f} KiB per instance), "
            f"{m['poll_cycles']} poll cycles, {m['phone_homes_recorded']}/{m['instances']} "
            f"phoned home, phone-home p50 {m['phone_home_p50_s']:.0f} s (model's plan "
            f"{m['planned_phone_home_p50_s']:.0f} s), p99 {m['phone_home_p99_s']:.0f} s "
            f"(modelled s, time scale {m['time_scale']:g})")


def test_boot_1000_simulated(benchmark: BenchmarkFixture, tmp_path: Path,
                             figures: Figures) -> None:
    m = run_boot(1000, "rootwrap-daemon", tmp_path, benchmark)
    met = m["wall_s"] < GOAL_WALL_S
    benchmark.extra_info.update({"goal_wall_s": GOAL_WALL_S, "goal_met": met})
    figures("boot 1000 (sim)",
            _line(m) + f"; goal wall < {GOAL_WALL_S:.0f} s: {'met' if met else 'MISSED'}")


def test_boot_10000_simulated(benchmark: BenchmarkFixture, tmp_path: Path,
                              figures: Figures) -> None:
    profile = tmp_path / "rootwrap-daemon-x10.yaml"
    profile.write_text(yaml.safe_dump(SCALED_X10), encoding="utf-8")
    # Above max_instances (1000): the ceiling is lifted as a user would, not raised.
    m = run_boot(10000, str(profile), tmp_path, benchmark, allow_large=True)
    figures("boot 10000 (sim, x10)", _line(m))
    small = _BOOTS.get(1000)
    if small is None:
        figures("boot scaling", "run test_boot_1000_simulated in the same session for the "
                                "10,000/1000 per-instance ratios")
        return
    ratios = {f"{key}_ratio_10000_to_1000": m[key] / small[key]
              for key in ("cpu_ms_per_instance", "wall_ms_per_instance", "kib_per_instance")}
    benchmark.extra_info.update({k: round(v, 3) for k, v in ratios.items()})
    figures("boot scaling",
            "per instance, 10,000 / 1000: CPU x"
            f"{ratios['cpu_ms_per_instance_ratio_10000_to_1000']:.2f}, wall x"
            f"{ratios['wall_ms_per_instance_ratio_10000_to_1000']:.2f} (bound by modelled "
            "time, not a scaling figure), memory above baseline x"
            f"{ratios['kib_per_instance_ratio_10000_to_1000']:.2f} (1.00 = linear)")
