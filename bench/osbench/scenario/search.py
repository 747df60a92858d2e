"""The `search:` section of a scenario: a capacity search over one numeric parameter.

    search:
      param: count            # or batch.size, batch.interval_s, streams_per_target ...
      start: 10
      max: 1000
      resolution: 10          # stop bisecting when pass and fail are this close
      factor: 2               # grow geometrically by this much until the first failure
      repeats: 3              # cases per point ...
      pass: 2 of 3            # ... and how many must meet the SLA ("all" by default)
      cooldown: 30s           # between points, after the previous point's cleanup
      budget: 2h              # stop starting points after this long (optional)
      require: 500            # the pytest item passes when capacity >= require

The scenario's SLA decides whether a case passes. Light to import: validation
only. The strategy is `osbench.search`; the runner runs it.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from osbench.scenario.schema import (
    Duration,
    Min,
    PositiveInt,
    convert_dataclass,
    describe_value,
    did_you_mean,
)
from osbench.scenario.source import Source
from osbench.search import PassRule

_PASS = re.compile(r"\s*(\d+)\s+of\s+(\d+)\s*")


@dataclass(frozen=True)
class SearchSpec:
    """A validated `search:` section."""

    param: str
    start: Annotated[float, Min(0, exclusive=True)]
    max: Annotated[float, Min(0, exclusive=True)]
    resolution: Annotated[float, Min(0, exclusive=True)]
    factor: Annotated[float, Min(1, exclusive=True)] = 2.0
    repeats: PositiveInt = 1
    cooldown: Duration = 0.0
    budget: Annotated[Duration, Min(0, exclusive=True)] | None = None
    require: float | None = None
    #: Filled from `pass:` (a Python keyword, so not a field name).
    pass_rule: PassRule = dataclasses.field(default_factory=lambda: PassRule(1, 1))
    #: Whether the parameter is a whole number (counts): set from the kind's schema.
    integer: bool = True

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("pass_rule", "integer")}
        return {**out, "pass": self.pass_rule.text}

    def value(self, x: float) -> int | float:
        """`x` as the parameter takes it."""
        return int(x) if self.integer else float(x)


def _numeric(tp: Any) -> type | None:
    """int or float if `tp` is (an Annotated) int or float, else None."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if tp is bool:
        return None
    return tp if tp in (int, float) else None


def param_type(params_type: type, path: str) -> tuple[type | None, list[str]]:
    """The type at dotted `path` in `params_type` (None if not numeric), and the names
    valid at the step that failed (empty on success)."""
    tp: Any = params_type
    for part in path.split("."):
        if get_origin(tp) in (typing.Union, types.UnionType):  # `Batch | None`
            members = [m for m in get_args(tp) if m is not type(None)]
            if len(members) == 1:
                tp = members[0]
        if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
            return None, []
        hints = get_type_hints(tp, include_extras=True)
        if part not in hints:
            return None, sorted(f.name for f in dataclasses.fields(tp))
        tp = hints[part]
    return _numeric(tp), []


def get_param(params: Any, path: str) -> Any:
    value = params
    for part in path.split("."):
        value = getattr(value, part) if value is not None else None
    return value


def set_param(params: Any, path: str, value: Any) -> Any:
    """A copy of `params` with the dotted field `path` set to `value`."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(params, **{head: value})
    return dataclasses.replace(params, **{head: set_param(getattr(params, head), rest, value)})


def parse_search(src: Source, data: Any, params_type: type, params: Any,
                 swept: typing.Collection[str], repeat: int) -> SearchSpec:
    """Validate `search:` against the kind's parameters and the scenario's sweep."""
    where = ("search",)
    if not isinstance(data, dict):
        raise src.error(where, f"expected a mapping, got {describe_value(data)}",
                        hint="e.g. search: {param: count, start: 10, max: 1000, "
                             "resolution: 10}")
    raw = dict(data)
    rule_text = raw.pop("pass", None)
    spec: SearchSpec = convert_dataclass(src, raw, SearchSpec, where)
    kind, valid = param_type(params_type, spec.param)
    if kind is None:
        if valid:
            raise src.error((*where, "param"), f"unknown parameter {spec.param!r}",
                            hint=did_you_mean(spec.param.rsplit(".", 1)[-1], valid))
        raise src.error((*where, "param"), f"{spec.param!r} is not a number: a search "
                        "needs a numeric parameter",
                        hint="search count, batch.size, batch.interval_s or another "
                             "integer or number of params")
    top = spec.param.split(".")[0]
    if top in swept or spec.param in swept:
        raise src.error(("sweep", top), f"{top!r} is both swept and searched",
                        hint=f"remove `sweep.{top}`: the search chooses its values")
    if "." in spec.param and get_param(params, spec.param.rsplit(".", 1)[0]) is None:
        parent = spec.param.rsplit(".", 1)[0]
        raise src.error((*where, "param"), f"params.{parent} is not set, so "
                        f"{spec.param!r} has no value to search",
                        hint=f"set `params.{parent}:` (its other keys) first")
    if spec.start > spec.max:
        raise src.error((*where, "start"), f"start {spec.start:g} is above max {spec.max:g}",
                        hint="start at or below max")
    integer = kind is int
    if integer:
        for key in ("start", "max", "resolution"):
            if not float(getattr(spec, key)).is_integer():
                raise src.error((*where, key), f"{getattr(spec, key):g} is not a whole "
                                f"number, and {spec.param} is an integer")
    if repeat != 1:
        raise src.error(("repeat",), "repeat and search both repeat cases",
                        hint="use `search.repeats` (cases per point) and remove `repeat`")
    if getattr(params, "cleanup", "always") != "always":
        raise src.error(("params", "cleanup"), "a search cleans up every point before the "
                        "next (never more than one point's resources at once)",
                        hint="remove params.cleanup or set it to always")
    rule = _pass_rule(src, rule_text, spec.repeats)
    return dataclasses.replace(spec, pass_rule=rule, integer=integer)


def _pass_rule(src: Source, text: Any, repeats: int) -> PassRule:
    where = ("search", "pass")
    if text is None or text == "all":
        return PassRule(repeats, repeats)
    if text == "majority":
        return PassRule(repeats // 2 + 1, repeats)
    match = _PASS.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise src.error(where, f"{describe_value(text)} is not a pass rule",
                        hint=f'write "all", "majority" or "K of {repeats}"')
    need, of = int(match[1]), int(match[2])
    if of != repeats:
        raise src.error(where, f'"{text}" counts {of} repeats, but search.repeats is '
                        f"{repeats}", hint=f'write "{need} of {repeats}" or set repeats: {of}')
    if not 1 <= need <= of:
        raise src.error(where, f'"{text}": K must be between 1 and {of}')
    return PassRule(need, of)
