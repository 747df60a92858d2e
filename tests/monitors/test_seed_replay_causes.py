"""The seed-replay scenarios with monitors on the embedded simulated cloud: the
attribution names the field's cause from the modelled control plane's own
metrics, for two seeds each (seed 0's runs are those of tests/boot/test_seed_replay.py).

- small pets, 100: the saturated conductor pets (finding 1);
- big pets, 200 (DHCP give-ups) and vif fatal, 200 (ERROR): the DHCP agent's
  backlog (findings 2 and 3);
- the rootwrap daemon, 1000 (a 504): the gateway, then nova-api (finding 6);
- big pets, 100, and the daemon at 200 and 400: no symptom, so nothing named
  (finding 1's fix, finding 5).

Each case runs at time scale 60 (5 to 20 s; a run with silent instances waits
for the 1200 s phone-home deadline); the 1000 case runs for one seed only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench import results
from osbench.monitors import attribution as at
from tests.support.seed_replay import replayed

#: Two seeds run end to end (the model alone covers more: tests/sim/test_metrics.py,
#: seeds 0-4), to keep the suite within its 15 minutes.
SEEDS = (0, 1)

pytestmark = pytest.mark.slow


async def judged(name: str, seed: int, where: Path,
                 cases: frozenset[str] | None = None) -> dict[str, at.Attribution]:
    """Scenario `name` run with `seed` (its own monitors, every 2 s), judged; only
    `cases` when given. Seed 0's runs are test_seed_replay's (tests/support/seed_replay)."""
    result = await replayed(name, seed, where)
    failed = [v.describe() for c in result.cases for v in c.verdicts if not v.passed]
    assert result.status == "completed" and not failed, failed
    run = results.load(result.path)
    assert run.table("monitor_errors").empty, run.table("monitor_errors")
    judged_cases = at.attribute_run(run)
    return {case: result for case, result in judged_cases.items()
            if cases is None or case in cases}


def top(result: at.Attribution) -> at.Finding:
    assert result.findings, result.verdict
    return result.findings[0]


@pytest.mark.parametrize("seed", SEEDS)
async def test_small_pets_100_the_conductor_pets_saturate(seed: int, tmp_path: Path) -> None:
    (result,) = (await judged("01-small-pets-100.yaml", seed, tmp_path)).values()
    assert {s.what for s in result.symptoms} == {"rpc_timeout"}
    first = top(result)
    assert (first.rule, first.subject, first.source) == (
        "saturation", "nova-conductor", "prometheus:sim")
    assert first.symptom is not None and first.symptom.area == "build"
    assert first.evidence.startswith("nova-conductor (prometheus:sim) at >= 90% of its 4 "
                                     "cores for ")
    # it was saturated before the first build timed out
    assert first.start_s < result.symptoms[0].start_s


@pytest.mark.parametrize(("name", "symptom"), [("03-big-pets-200.yaml", "dhcp_timeout"),
                                               ("04-vif-fatal-200.yaml", "vif_failure")])
@pytest.mark.parametrize("seed", SEEDS)
async def test_200_instances_the_dhcp_agents_backlog(name: str, symptom: str, seed: int,
                                                     tmp_path: Path) -> None:
    (result,) = (await judged(name, seed, tmp_path)).values()
    assert {s.what for s in result.symptoms} == {symptom}
    first = top(result)
    assert (first.rule, first.subject) == ("backlog", "neutron-dhcp-agent backlog")
    assert first.symptom is not None and first.symptom.what == symptom
    assert " peaked at " in first.evidence and " drained at " in first.evidence
    # ports stayed BUILD while it grew, and the agent's one core was busy throughout
    related = {(f.rule, f.subject) for f in result.findings if f.symptom is not None}
    assert {("backlog", "ports in BUILD"), ("saturation", "neutron-dhcp-agent")} <= related


@pytest.mark.parametrize("seed", SEEDS)
async def test_big_pets_100_and_the_daemon_at_200_name_nothing(seed: int,
                                                              tmp_path: Path) -> None:
    for name, cases in (("02-big-pets-100.yaml", None),
                        ("05-rootwrap-daemon.yaml", frozenset({"count=200"}))):
        judged_cases = await judged(name, seed, tmp_path / name, cases)
        assert judged_cases, name
        for case, result in judged_cases.items():
            assert (result.symptoms, result.findings) == ((), ()), (name, case)
            assert result.verdict == at.NO_SYMPTOM


async def test_the_daemon_at_400_names_nothing(tmp_path: Path) -> None:
    (result,) = (await judged("05-rootwrap-daemon.yaml", 0, tmp_path,
                              frozenset({"count=400"}))).values()
    assert result.verdict == at.NO_SYMPTOM


async def test_the_daemon_at_1000_the_gateway_then_nova_api(tmp_path: Path) -> None:
    (result,) = (await judged("06-rootwrap-daemon-1000.yaml", 0, tmp_path)).values()
    assert [s.what for s in result.symptoms] == ["create_error"]
    first, second = result.findings[:2]
    assert (first.rule, first.subject) == ("gateway", "gateway (create HTTP 504)")
    assert "reached the proxy's 60 s timeout" in first.evidence
    assert (second.rule, second.subject) == ("saturation", "nova-api")
    assert first.symptom == second.symptom == result.symptoms[0]
