"""Registry of scenario kinds: one module each, looked up by `kind:` name."""

from __future__ import annotations

import importlib

from osbench.kinds.base import CaseContext, Kind, TargetKind

__all__ = ["CaseContext", "Kind", "TargetKind", "available", "get", "register"]

#: Built-in kind modules, imported on first use so `osbench validate` stays fast.
_BUILTIN_MODULES: dict[str, str] = {"boot": "osbench.kinds.boot",
                                     "netsweep": "osbench.kinds.netsweep",
                                     "rootwrap": "osbench.kinds.rootwrap"}

_registry: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make `kind` available under `kind.name` (a plugin or test may add kinds)."""
    _registry[kind.name] = kind
    return kind


def available() -> list[str]:
    """Names of every kind that can be used."""
    return sorted({*_registry, *_BUILTIN_MODULES})


def get(name: str) -> Kind | None:
    """The kind called `name`, or None."""
    if name not in _registry and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    return _registry.get(name)
