"""Profiles: shipped, documented, validated."""

from __future__ import annotations

import pytest

from osbench.errors import UserError
from osbench.sim import list_profiles, load_profile
from osbench.sim.profiles import profile_from_dict

FIELD_NOTES_PROFILES = {"healthy", "small-pets", "big-pets", "vif-fatal", "rootwrap-daemon"}


def test_shipped_profiles_are_listed_with_descriptions() -> None:
    listed = dict(list_profiles())
    assert set(listed) >= FIELD_NOTES_PROFILES
    assert all(desc.strip() and "\n" not in desc for desc in listed.values())


def test_profiles_carry_the_field_notes_parameters() -> None:
    """The figures the field notes measured, not copies of the YAML for their own sake.

    The contract: these are physical (the machines' cores and memory, the 0.713 s
    privileged call through rootwrap and 0.048 s through the daemon, the vif setting
    each finding names). Calibration may move other knobs (swap_slowdown, service
    times); if it moves one of these, the profile no longer replays the field's
    machines, and this test says so."""
    small, big = load_profile("small-pets"), load_profile("big-pets")
    assert (small.control_plane.cores, small.control_plane.memory_gb) == (4, 8)
    assert (big.control_plane.cores, big.control_plane.memory_gb) == (16, 16)
    assert big.neutron.privileged_call_s == 0.713
    assert load_profile("rootwrap-daemon").neutron.privileged_call_s == 0.048
    assert not big.compute.vif_plugging_is_fatal
    assert load_profile("vif-fatal").compute.vif_plugging_is_fatal


def test_unknown_key_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(UserError, match=r"unknown key 'corse'.*did you mean 'cores'"):
        profile_from_dict({"name": "x", "description": "y", "control_plane": {"corse": 4}},
                          source="x.yaml")


def test_wrong_type_and_unknown_profile() -> None:
    with pytest.raises(UserError, match="expected int"):
        profile_from_dict({"name": "x", "description": "y", "control_plane": {"cores": "4"}},
                          source="x.yaml")
    with pytest.raises(UserError, match="did you mean 'big-pets'"):
        load_profile("big-pet")


def test_overrides_make_a_validated_copy() -> None:
    profile = load_profile("healthy").with_overrides({"keystone.token_ttl_s": 30})
    assert profile.keystone.token_ttl_s == 30.0
    assert profile.name == "healthy"
    with pytest.raises(UserError):
        load_profile("healthy").with_overrides({"keystone.ttl": 30})
