"""Scenario files -> typed, frozen Scenario -> the list of cases to run.

One file is one scenario:

    name: boot-200            # required
    description: ...
    kind: boot                # boot | netsweep | rootwrap (each kind validates `params`)
    params: {...}             # the kind's parameters; defaults filled in
    sweep:                    # cartesian product of every key's list ...
      count: [100, 200]
      zip:                    # ... times lock-step lists (all the same length)
        sim_profile: [small-pets, big-pets]
        flavor: [c1.small, c1.large]
    repeat: 1                 # each case run this many times
    sla: ["phone_home_ok_pct >= 99.5", "p95(time_to_phone_home_s) <= 10m"]
    target: {cloud: NAME, sim_profile: NAME, time_scale: 50, hosts: FILE}
    monitors: {...}           # control-plane monitors during every case (osbench.monitors)
    search: {...}             # a capacity search over one parameter (scenario/search.py)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_type_hints

from osbench import kinds
from osbench.errors import OsbenchError, ScenarioError
from osbench.kinds import KindSpec
from osbench.monitors.config import MonitorsConfig
from osbench.scenario import sla
from osbench.scenario.schema import (
    Min,
    NonEmpty,
    PositiveInt,
    convert,
    convert_dataclass,
    describe_value,
    did_you_mean,
)
from osbench.scenario.search import SearchSpec, parse_search
from osbench.scenario.source import KeyPath, Source, load_file, short_repr

#: Sweep keys that change the target rather than the kind's params.
TARGET_SWEEP_KEYS = ("sim_profile", "hosts")

#: Cases one scenario may expand to (sweep points x repeat). Each case is a run
#: with its own setup, cleanup and rows in the results, and a pytest item; at a
#: minute a case 10,000 is a week of running, so more is a typo (`repeat:
#: 1000000000`) or an attack, and would hold every Case in memory.
MAX_CASES = 10_000

_TOP_KEYS = ("name", "description", "kind", "params", "sweep", "repeat", "sla", "target",
             "monitors", "search")


@dataclass(frozen=True)
class TargetSpec:
    """Where to run, as far as the scenario says; the CLI may override each key.

    With neither `cloud` nor `hosts`, cloud kinds run on the simulated cloud
    and host kinds on the local lab.
    """

    cloud: str | None = None
    sim_profile: str | None = None
    time_scale: Annotated[float, Min(0, exclusive=True)] | None = None
    hosts: str | None = None


@dataclass(frozen=True)
class Case:
    """One point of the sweep (one repetition of it): what the runner runs."""

    index: int
    case_id: str
    params: Any
    target: TargetSpec
    sweep_values: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 1


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file."""

    file: str
    name: str
    description: str
    kind: str
    params: Any
    sweep: tuple[tuple[str, tuple[Any, ...]], ...]
    zipped: tuple[tuple[str, tuple[Any, ...]], ...]
    repeat: int
    sla: tuple[sla.Criterion, ...]
    target: TargetSpec
    monitors: MonitorsConfig | None = None
    search: SearchSpec | None = None

    @property
    def slug(self) -> str:
        """The name made safe for a directory name."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:40] or "scenario"

    def as_dict(self) -> dict[str, Any]:
        """The scenario as run, every default filled in (for the manifest)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "params": dataclasses.asdict(self.params),
            "repeat": self.repeat,
            "sla": [c.text for c in self.sla],
            "target": dataclasses.asdict(self.target),
        }
        if self.monitors is not None:
            out["monitors"] = dataclasses.asdict(self.monitors)
        if self.search is not None:
            out["search"] = self.search.as_dict()
        if self.sweep or self.zipped:
            sweep: dict[str, Any] = {k: list(v) for k, v in self.sweep}
            if self.zipped:
                sweep["zip"] = {k: list(v) for k, v in self.zipped}
            out["sweep"] = sweep
        return out


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file; raises ScenarioError on any mistake."""
    return parse_scenario(load_file(path))


def parse_scenario(src: Source) -> Scenario:
    """Validate a loaded source into a Scenario."""
    data = src.data
    if not isinstance(data, dict):
        raise src.error((), f"the top level must be a mapping of scenario keys, got "
                            f"{describe_value(data)}", hint="start with `name:` and `kind:`")
    for key in data:
        if key not in _TOP_KEYS:
            raise src.error((key,), f"unknown key {short_repr(key)}",
                            hint=did_you_mean(key, _TOP_KEYS))
    for required in ("name", "kind"):
        if required not in data:
            raise src.error((), f"missing required key {required!r}",
                            hint=f"add `{required}:` at the top level")
    name = convert(src, data["name"], Annotated[str, NonEmpty()], ("name",))
    description = convert(src, data.get("description", ""), str, ("description",))
    kind = _kind(src, data["kind"])
    target = convert_dataclass(src, data.get("target"), TargetSpec, ("target",))
    repeat = convert(src, data.get("repeat", 1), PositiveInt, ("repeat",))
    sweep, zipped = _sweep(src, data.get("sweep"), kind)
    _check_case_count(src, sweep, zipped, repeat)
    params = _params(src, data.get("params"), kind, dict(sweep + zipped))
    criteria = _criteria(src, data.get("sla", []), kind)
    monitors = _monitors(src, data["monitors"]) if "monitors" in data else None
    search = (parse_search(src, data["search"], kind.params_type, params,
                           [k for k, _ in sweep + zipped], repeat)
              if "search" in data else None)
    scenario = Scenario(
        file=src.file, name=name, description=description, kind=kind.name, params=params,
        sweep=sweep, zipped=zipped, repeat=repeat, sla=criteria, target=target,
        monitors=monitors, search=search,
    )
    if kind.check is not None:
        _check_cases(src, scenario, kind.check)
    return scenario


def _check_cases(src: Source, scenario: Scenario, check: Callable[[Any], None]) -> None:
    """A kind's cross-field checks on every combination the sweep makes."""
    for case in expand(scenario):
        try:
            check(case.params)
        except ValueError as exc:
            where: KeyPath = ("sweep",) if case.sweep_values else ("params",)
            raise src.error(where, f"case {case.case_id}: {exc}") from None


def _check_case_count(src: Source, sweep: tuple[tuple[str, tuple[Any, ...]], ...],
                      zipped: tuple[tuple[str, tuple[Any, ...]], ...], repeat: int) -> None:
    """Refuse a scenario of more than MAX_CASES cases before expanding it."""
    sizes = [len(values) for _, values in sweep] + ([len(zipped[0][1])] if zipped else [])
    points = math.prod(sizes)
    if points * repeat <= MAX_CASES:
        return
    where: KeyPath = ("repeat",) if repeat > MAX_CASES or not sizes else ("sweep",)
    axes = f"sweep {' x '.join(map(str, sizes))} values, " if sizes else ""
    raise src.error(where, f"{points * repeat} cases ({axes}repeat {repeat}); at most "
                           f"{MAX_CASES} per scenario",
                    hint="sweep fewer values or repeat less, or split it into several "
                         "scenario files")


def expand(scenario: Scenario) -> list[Case]:
    """The sweep matrix as cases: cartesian axes x zipped rows x repeats."""
    axes = [[(k, v) for v in values] for k, values in scenario.sweep]
    zip_rows: list[list[tuple[str, Any]]] = [[]]
    if scenario.zipped:
        n = len(scenario.zipped[0][1])
        zip_rows = [[(k, values[i]) for k, values in scenario.zipped] for i in range(n)]
    cases: list[Case] = []
    for cross, row in itertools.product(itertools.product(*axes), zip_rows):
        values: dict[str, Any] = dict(cross) | dict(row)
        param_values = {k: v for k, v in values.items() if k not in TARGET_SWEEP_KEYS}
        target_values = {k: v for k, v in values.items() if k in TARGET_SWEEP_KEYS}
        params = dataclasses.replace(scenario.params, **param_values)
        target = dataclasses.replace(scenario.target, **target_values)
        base_id = ",".join(f"{k}={v}" for k, v in values.items()) or "default"
        for r in range(1, scenario.repeat + 1):
            case_id = base_id if scenario.repeat == 1 else f"{base_id}#{r}"
            cases.append(Case(index=len(cases), case_id=case_id, params=params,
                              target=target, sweep_values=values, repeat=r))
    return cases


def _kind(src: Source, value: Any) -> KindSpec:
    names = kinds.available()
    if not isinstance(value, str):
        raise src.error(("kind",), f"expected a kind name, got {describe_value(value)}",
                        hint=f"valid: {', '.join(names)}")
    kind = kinds.get(value)
    if kind is None:
        raise src.error(("kind",), f"unknown kind {short_repr(value)}",
                        hint=did_you_mean(value, names))
    return kind


def _sweep_type(kind: KindSpec, key: str) -> Any:
    if key in TARGET_SWEEP_KEYS:
        return get_type_hints(TargetSpec, include_extras=True)[key]
    return get_type_hints(kind.params_type, include_extras=True)[key]


def _sweep(src: Source, data: Any, kind: KindSpec) -> tuple[
        tuple[tuple[str, tuple[Any, ...]], ...], tuple[tuple[str, tuple[Any, ...]], ...]]:
    if data is None:
        return (), ()
    if not isinstance(data, dict):
        raise src.error(("sweep",), f"expected a mapping of key: [values], got "
                                    f"{describe_value(data)}")
    sweepable = [f.name for f in dataclasses.fields(kind.params_type)] + list(TARGET_SWEEP_KEYS)

    def axis(path: KeyPath, key: str, values: Any) -> tuple[str, tuple[Any, ...]]:
        if key not in sweepable:
            raise src.error(path, f"cannot sweep unknown key {short_repr(key)}",
                            hint=did_you_mean(key, sweepable))
        if not isinstance(values, list):
            raise src.error(path, f"expected a list of values, got {describe_value(values)}",
                            hint=f"write `{key}: [{short_repr(values)}]` for a single value")
        if not values:
            raise src.error(path, "the sweep list is empty", hint="give at least one value")
        tp = _sweep_type(kind, key)
        return key, tuple(convert(src, v, tp, (*path, i)) for i, v in enumerate(values))

    sweep = tuple(axis(("sweep", k), k, v) for k, v in data.items() if k != "zip")
    zipped: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    if "zip" in data:
        zdata = data["zip"]
        if not isinstance(zdata, dict) or not zdata:
            raise src.error(("sweep", "zip"), "expected a mapping of key: [values] "
                            f"(lists of equal length), got {describe_value(zdata)}")
        zipped = tuple(axis(("sweep", "zip", k), k, v) for k, v in zdata.items())
        lengths = {k: len(v) for k, v in zipped}
        if len(set(lengths.values())) > 1:
            raise src.error(("sweep", "zip"), f"zip lists differ in length: {lengths}",
                            hint="lock-step lists must all have the same number of values")
    keys = [k for k, _ in sweep + zipped]
    for dup in {k for k in keys if keys.count(k) > 1}:
        raise src.error(("sweep", "zip", dup), f"{dup!r} is swept twice",
                        hint="put it either in the matrix or in `zip`, not both")
    return sweep, zipped


def _params(src: Source, data: Any, kind: KindSpec, swept: dict[str, tuple[Any, ...]]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise src.error(("params",), f"expected a mapping, got {describe_value(data)}")
    for key in data:
        if key in swept:
            raise src.error(("params", key), f"{key!r} is set here and also swept",
                            hint=f"remove `params.{key}` or `sweep.{key}`")
    # A required param given only in the sweep: build with its first value as
    # written in the file (convert_dataclass converts it again); expand()
    # replaces it per case.
    raw_sweep = src.data.get("sweep") or {}
    raw_axes = {**raw_sweep.get("zip", {}), **{k: v for k, v in raw_sweep.items() if k != "zip"}}
    filled = dict(data)
    for key in swept:
        if key not in TARGET_SWEEP_KEYS:
            filled[key] = raw_axes[key][0]
    try:
        return convert_dataclass(src, filled, kind.params_type, ("params",))
    except ScenarioError as exc:
        if exc.bare_message.startswith("missing required key"):
            exc.hint = (exc.hint or "") + f" under `params:` (kind {kind.name!r})"
        raise


def _monitors(src: Source, data: Any) -> MonitorsConfig:
    """The `monitors:` section; an inventory is read now, relative to the scenario
    file, so a host it lacks is an error before anything runs."""
    config: MonitorsConfig = convert_dataclass(src, data, MonitorsConfig, ("monitors",))
    if config.inventory is None or config.inventory == "lab":
        return config
    from osbench.hosts.inventory import load_inventory

    path = Path(config.inventory)
    if not path.is_absolute():
        path = Path(src.file).parent / path
    try:
        inventory = load_inventory(path)
    except OsbenchError as exc:
        raise src.error(("monitors", "inventory"), f"cannot use inventory {str(path)!r}: "
                        f"{exc}") from None
    for i, source in enumerate(config.processes):
        if source.host != "local" and source.host not in inventory.hosts:
            raise src.error(("monitors", "processes", i, "host"),
                            f"host {source.host!r} is not in {path}",
                            hint=did_you_mean(source.host, [*inventory.hosts, "local"]))
    for i, rabbit in enumerate(config.rabbitmq):
        if rabbit.url is None and rabbit.host != "local" and rabbit.host not in inventory.hosts:
            raise src.error(("monitors", "rabbitmq", i, "host"),
                            f"host {rabbit.host!r} is not in {path}",
                            hint=did_you_mean(rabbit.host, [*inventory.hosts, "local"]))
    return dataclasses.replace(config, inventory=str(path))


def _criteria(src: Source, data: Any, kind: KindSpec) -> tuple[sla.Criterion, ...]:
    if not isinstance(data, list):
        raise src.error(("sla",), f"expected a list of criteria, got {describe_value(data)}",
                        hint='e.g. sla: ["phone_home_ok_pct >= 99.5"]')
    out = []
    for i, text in enumerate(data):
        try:
            out.append(sla.parse(text, metrics=kind.metrics, columns=kind.sample_columns))
        except sla.SlaSyntaxError as exc:
            raise src.error(("sla", i), str(exc), hint=exc.hint) from None
    return tuple(out)
