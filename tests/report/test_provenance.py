"""The provenance line of a simulated target says where its parameters came from,
computed from what the run recorded about the target (its profile's parameters)."""

from __future__ import annotations

from osbench.report.provenance import describe_target
from osbench.sim import SimCloud, load_profile
from osbench.sim.profiles import profile_from_dict


def _recorded(sim: SimCloud) -> dict[str, object]:
    """The target as a run's manifest records it."""
    return {"cases_from": "default", "type": "simulated-cloud", **sim.describe()}


def test_a_shipped_profile_is_simulated_and_calibrated_to_the_field_notes() -> None:
    line = describe_target(_recorded(SimCloud("small-pets", time_scale=60)))
    assert line == ("SIMULATED cloud, profile small-pets, calibrated to the field notes, "
                    "time scale 60")


def test_a_changed_parameter_is_named() -> None:
    profile = load_profile("small-pets").with_overrides({"control_plane.swap_slowdown": 5.3})
    line = describe_target(_recorded(SimCloud(profile)))
    assert "calibrated to the field notes, then control_plane.swap_slowdown changed" in line
    # A label or the clock's speed changes no modelled outcome: still the calibration.
    same = load_profile("small-pets").with_overrides({"time_scale": 5, "description": "x"})
    assert same.calibration == "the field notes"


def test_a_profile_of_ones_own_and_an_old_run_say_so() -> None:
    own = profile_from_dict({"name": "mine", "description": "my cloud"}, source="mine.yaml")
    assert "profile mine, uncalibrated parameters" in describe_target(_recorded(SimCloud(own)))
    # Runs from before profiles named a calibration (tests/data/old-results).
    old = {k: v for k, v in _recorded(SimCloud("big-pets")).items() if k != "profile_params"}
    assert "profile big-pets, calibration not recorded" in describe_target(old)
