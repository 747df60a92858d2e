"""The control-plane model reproduces the field notes' findings, over seeds.

These run the model alone (no HTTP), so each finding is checked for seeds
0..4 in milliseconds; tests/sim/test_scale.py checks the same through the API.
"""

from __future__ import annotations

import pytest

from osbench.sim import load_profile
from osbench.sim.model import RPC_FAULT, ControlPlaneModel, plan_once, summarise

SEEDS = range(5)


@pytest.mark.parametrize("seed", SEEDS)
def test_finding1_small_pets_leave_4_to_7_of_100_not_started(seed: int) -> None:
    profile = load_profile("small-pets")
    plan = plan_once(profile, seed, 100)
    outcome = summarise(profile, plan)
    assert 4 <= outcome.error <= 7
    assert outcome.phoned_home == 100 - outcome.error
    faults = {t.fault.details for t in plan.timelines if t.fault}
    assert faults == {"MessagingTimeout"}
    assert RPC_FAULT.split("{")[0] in next(t.fault.message for t in plan.timelines if t.fault)


@pytest.mark.parametrize("seed", SEEDS)
def test_finding1_big_pets_fix_100(seed: int) -> None:
    profile = load_profile("big-pets")
    outcome = summarise(profile, plan_once(profile, seed, 100))
    assert (outcome.error, outcome.phoned_home) == (0, 100)


def test_deeper_overload_fails_more() -> None:
    profile = load_profile("small-pets")
    errors = [summarise(profile, plan_once(profile, 0, n)).error for n in (50, 100, 200)]
    assert errors[0] == 0 and errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("seed", SEEDS)
def test_finding2_200_all_active_but_8_to_20_never_get_dhcp(seed: int) -> None:
    profile = load_profile("big-pets")
    plan = plan_once(profile, seed, 200)
    outcome = summarise(profile, plan)
    assert outcome.error == 0 and outcome.active == 200
    silent = [t for t in plan.timelines if t.phone_home_at is None]
    assert 8 <= len(silent) <= 20
    for t in silent:  # the port was still not ACTIVE when the DHCP client gave up
        assert t.dhcp_gave_up_at is not None and t.port_active_at is not None
        assert t.port_active_at > t.dhcp_gave_up_at
        assert t.dhcp_gave_up_at - t.dhcp_start_at == pytest.approx(300.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_finding3_vif_fatal_turns_them_into_errors(seed: int) -> None:
    fatal = load_profile("vif-fatal")
    plan = plan_once(fatal, seed, 200)
    outcome = summarise(fatal, plan)
    assert 8 <= outcome.error <= 25
    assert outcome.phoned_home == 200 - outcome.error  # nobody boots without an address
    for t in plan.timelines:
        if t.fault:
            assert "Failed to allocate the network(s), not rescheduling" in t.fault.message
    # The same instances: the last ports in the DHCP agent's queue.
    silent = {i for i, t in enumerate(plan_once(load_profile("big-pets"), seed, 200).timelines)
              if t.phone_home_at is None}
    errored = {i for i, t in enumerate(plan.timelines) if t.fault}
    assert silent <= errored


def test_finding4_the_dhcp_agent_is_the_bottleneck() -> None:
    rootwrap = ControlPlaneModel(load_profile("big-pets"), 0)
    daemon = ControlPlaneModel(load_profile("rootwrap-daemon"), 0)
    # Per port the agent needs longer than nova needs per instance: its queue grows.
    assert rootwrap.port_service_s(100) > 10 * rootwrap.build_service_s() / 16
    # The helper changes only the privileged call: per port the daemon saves one
    # call's difference (0.713 s -> 0.048 s) for each DHCP update.
    rw, dm = rootwrap.profile.neutron, daemon.profile.neutron
    saved = rootwrap.port_service_s(100) - daemon.port_service_s(100)
    assert saved == pytest.approx(
        rw.dhcp_updates_per_port * (rw.privileged_call_s - dm.privileged_call_s))
    assert rootwrap.port_service_s(100) / daemon.port_service_s(100) > 8


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("count", [200, 400, 1000])
def test_finding5_rootwrap_daemon_starts_everything(seed: int, count: int) -> None:
    profile = load_profile("rootwrap-daemon")
    outcome = summarise(profile, plan_once(profile, seed, count))
    assert (outcome.error, outcome.phoned_home) == (0, count)


def test_finding6_only_1000_outlasts_the_proxy() -> None:
    profile = load_profile("rootwrap-daemon")
    assert summarise(profile, plan_once(profile, 0, 1000)).proxy_504
    assert not summarise(profile, plan_once(profile, 0, 400)).proxy_504


def test_a_seed_reproduces_a_plan() -> None:
    profile = load_profile("big-pets")
    assert plan_once(profile, 3, 200) == plan_once(profile, 3, 200)
    assert plan_once(profile, 3, 200) != plan_once(profile, 4, 200)
