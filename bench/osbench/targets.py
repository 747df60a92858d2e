"""Targets: what a case runs against, opened once and shared by the cases that
name the same target.

- `local`: this machine (real clock).
- `cloud`: a real cloud from clouds.yaml (`--cloud`/`OS_CLOUD`), or the
  embedded simulated cloud when none is named (osbench.cloud).
- `hosts`: an SSH inventory, or the local lab when none is named.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from osbench.clock import Clock, RealClock
from osbench.errors import UserError
from osbench.kinds import TargetKind
from osbench.scenario import TargetSpec


class Target(Protocol):
    """An opened target."""

    clock: Clock
    simulated: bool

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the manifest; never secrets."""
        ...


class LocalTarget:
    """This machine."""

    simulated = False

    def __init__(self) -> None:
        self.clock: Clock = RealClock()

    def describe(self) -> dict[str, Any]:
        return {"type": "local", "simulated": False, "host": socket.gethostname()}


@asynccontextmanager
async def _open_local(spec: TargetSpec, seed: int) -> AsyncIterator[Target]:
    yield LocalTarget()


Opener = Callable[[TargetSpec, int], AbstractAsyncContextManager[Target]]

#: Target kinds whose opener lives in another module, imported on first use.
_OPENER_MODULES: dict[str, str] = {"cloud": "osbench.cloud", "hosts": "osbench.hosts.target"}
_openers: dict[str, Opener] = {"local": _open_local}


#: Checks, without touching the network, that a spec names a usable target.
Checker = Callable[[TargetSpec], None]
_checkers: dict[str, Checker] = {}


def register_opener(kind: str, opener: Opener, check: Checker | None = None) -> None:
    """Let a module provide the opener (and optionally the checker) for target kind
    `kind`."""
    _openers[kind] = opener
    if check is not None:
        _checkers[kind] = check


def check_target(kind: TargetKind, spec: TargetSpec) -> None:
    """Raise UserError now if `spec` cannot name a target of `kind` (an unknown
    cloud, a clouds.yaml entry without auth_url): before a run writes anything."""
    _load(kind)
    if kind in _checkers:
        _checkers[kind](spec)


def _load(kind: TargetKind) -> None:
    if kind not in _openers and kind in _OPENER_MODULES:
        importlib.import_module(_OPENER_MODULES[kind])


def resolve(spec: TargetSpec, overrides: TargetSpec) -> TargetSpec:
    """The scenario's target settings with the command line's on top, then OS_CLOUD."""
    merged = TargetSpec(
        cloud=overrides.cloud or spec.cloud or os.environ.get("OS_CLOUD") or None,
        sim_profile=overrides.sim_profile or spec.sim_profile,
        time_scale=overrides.time_scale or spec.time_scale,
        hosts=overrides.hosts or spec.hosts,
    )
    return merged


def open_target(kind: TargetKind, spec: TargetSpec, seed: int) -> AbstractAsyncContextManager[
        Target]:
    """Open the target a kind needs, as `spec` says."""
    _load(kind)
    if kind not in _openers:
        raise UserError(f"targets of type {kind!r} are not supported by this osbench")
    return _openers[kind](spec, seed)
