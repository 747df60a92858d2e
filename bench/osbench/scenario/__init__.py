"""Scenario files: load, validate, expand into cases."""

from osbench.scenario.model import Case, Scenario, TargetSpec, expand, load_scenario, parse_scenario

__all__ = ["Case", "Scenario", "TargetSpec", "expand", "load_scenario", "parse_scenario"]
