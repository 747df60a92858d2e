"""The control-plane model's mechanisms behind the field notes' findings.

These run the model alone (no HTTP). Each finding's shape over 200 seeds, and
who fails and why, is tests/sim/test_findings.py; tests/sim/test_scale.py
checks the same through the API.
"""

from __future__ import annotations

import pytest

from osbench.sim import load_profile
from osbench.sim.model import ControlPlaneModel, plan_once, summarise


def test_deeper_overload_fails_more() -> None:
    profile = load_profile("small-pets")
    errors = [summarise(profile, plan_once(profile, 0, n)).error for n in (50, 100, 200)]
    assert errors[0] == 0 and errors[0] < errors[1] < errors[2]


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


def test_finding6_only_1000_outlasts_the_proxy() -> None:
    profile = load_profile("rootwrap-daemon")
    assert summarise(profile, plan_once(profile, 0, 1000)).proxy_504
    assert not summarise(profile, plan_once(profile, 0, 400)).proxy_504


def test_a_seed_reproduces_a_plan() -> None:
    profile = load_profile("big-pets")
    assert plan_once(profile, 3, 200) == plan_once(profile, 3, 200)
    assert plan_once(profile, 3, 200) != plan_once(profile, 4, 200)
