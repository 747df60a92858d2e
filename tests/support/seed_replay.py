"""The seed-replay scenarios (scenarios/seed-replay/) run once per test session per
seed: tests/boot/test_seed_replay.py checks each finding and tests/monitors/
test_seed_replay_causes.py judges the same run's monitors. Each file carries its own
`monitors:`, so one run at 60x serves both (it saved ~50 s of the suite's 15 min).
"""

from __future__ import annotations

from pathlib import Path

from osbench.runner import Runner, RunOptions, RunResult
from osbench.scenario import TargetSpec, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "seed-replay"
#: The embedded simulated cloud's clock runs 60x: the 1200 modelled s a silent
#: instance is given to phone home take 20 s.
TIME_SCALE = 60

_made: dict[tuple[str, int], RunResult] = {}


async def replayed(name: str, seed: int, where: Path) -> RunResult:
    """`osbench run scenarios/seed-replay/NAME --seed SEED` on the embedded simulated
    cloud at 60x, every case; the session's earlier run of the same file and seed if
    there was one (its results stay under the first caller's `where`)."""
    key = (name, seed)
    if key not in _made:
        scenario = load_scenario(SCENARIOS / name)
        assert scenario.monitors is not None, f"{name} lost its monitors: section"
        options = RunOptions(results_dir=where, seed=seed,
                             target=TargetSpec(time_scale=TIME_SCALE))
        _made[key] = await Runner(scenario, options).run()
    return _made[key]
