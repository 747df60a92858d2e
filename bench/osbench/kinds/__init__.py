"""The registry of scenario kinds, built from each kind package's `SPEC`.

A kind is a package `osbench/kinds/<name>/` whose `__init__.py` defines
`SPEC: KindSpec` with light imports only; it is found by its folder, so adding a
kind edits nothing here. `register` adds a kind from elsewhere (a plugin, a test).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from osbench.kinds.base import CaseContext, Kind, KindOption, KindSpec, MetricSpec, TargetKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from osbench.scenario.model import Scenario

__all__ = ["CaseContext", "Kind", "KindOption", "KindSpec", "MetricSpec", "TargetKind",
           "apply_options", "available", "get", "options", "register", "specs"]

_registered: dict[str, KindSpec] = {}


@functools.cache
def _builtin_names() -> tuple[str, ...]:
    """The kind packages in this folder (read once: every lookup asks)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


def register(spec: KindSpec) -> KindSpec:
    """Make `spec` available under `spec.name` (a plugin or test may add kinds)."""
    _registered[spec.name] = spec
    return spec


def available() -> list[str]:
    """Names of every kind that can be used."""
    return sorted({*_registered, *_builtin_names()})


def get(name: str) -> KindSpec | None:
    """The kind called `name`, or None."""
    if name not in _registered and name in _builtin_names():
        module = importlib.import_module(f"{__name__}.{name}")
        _registered[name] = module.SPEC
    return _registered.get(name)


def specs() -> list[KindSpec]:
    """Every kind's spec, in name order."""
    return [spec for name in available() if (spec := get(name)) is not None]


def options() -> list[KindOption]:
    """Every kind's options, each name once (kinds may share one, e.g. allow_large)."""
    seen: dict[str, KindOption] = {}
    for spec in specs():
        for option in spec.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


def apply_options(scenario: Scenario, values: Mapping[str, Any]) -> Scenario:
    """`scenario` with the params its kind's options replace (`KindOption.param`)."""
    spec = get(scenario.kind)
    changes = {option.param: values[option.name] for option in (spec.options if spec else ())
               if option.param and values.get(option.name) is not None}
    if not changes:
        return scenario
    return replace(scenario, params=replace(scenario.params, **changes))
