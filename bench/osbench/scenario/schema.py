"""Typed validation: plain YAML data -> frozen dataclasses, with located errors.

A kind's parameters are a frozen dataclass; its field types and `Annotated`
constraints are the schema. `convert` walks the data against those types and
raises a ScenarioError naming the file, line, key path, the bad value and what
is allowed, with a "did you mean" for misspelt keys.

Supported field types: bool, int, float, str, Duration, Literal[...], enums of
str, list[T], tuple[T, ...], dict[str, T], T | None, nested frozen dataclasses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from osbench.errors import ScenarioError
from osbench.scenario.source import KeyPath, Source, short_repr

#: No count, size, port or repeat in a scenario comes near a billion: past it a
#: number is a typo or an attack, and would overflow the C calls it reaches.
MAX_INT = 10**9
#: Longest duration: 30 days. A soak run is days long; past this a duration is a
#: typo (and infinity would make a wait that never ends).
MAX_DURATION_S = 30 * 86400.0


def _number(bound: float) -> str:
    """100000 as `100000`, not `1e+05`."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


@dataclasses.dataclass(frozen=True)
class Min:
    """Constraint: value >= bound (or > bound when `exclusive`)."""

    bound: float
    exclusive: bool = False

    def check(self, value: float) -> str | None:
        if self.exclusive and not value > self.bound:
            return f"must be > {_number(self.bound)}"
        if not self.exclusive and not value >= self.bound:
            return f"must be >= {_number(self.bound)}"
        return None


@dataclasses.dataclass(frozen=True)
class Max:
    """Constraint: value <= bound; `why` says where the bound comes from and what
    to do instead."""

    bound: float
    why: str | None = None

    def check(self, value: float) -> str | None:
        if value <= self.bound:
            return None
        return f"must be <= {_number(self.bound)}" + (f" ({self.why})" if self.why else "")


@dataclasses.dataclass(frozen=True)
class Pattern:
    """Constraint: a string matching `regex` in full; `meaning` says it in words."""

    regex: str
    meaning: str

    def check(self, value: str) -> str | None:
        return None if re.fullmatch(self.regex, value) else f"must be {self.meaning}"


@dataclasses.dataclass(frozen=True)
class NonEmpty:
    """Constraint: a list, mapping or string that is not empty."""

    def check(self, value: Any) -> str | None:
        return None if len(value) else "must not be empty"


class _DurationMarker:
    """Marks a float field as a duration in seconds, written `300`, "300s", "5m"."""


#: A duration in seconds. YAML may say 90, 1.5, "250ms", "30s", "5m", "1h", "1h30m".
Duration = Annotated[float, _DurationMarker()]
PositiveInt = Annotated[int, Min(1)]
NonNegativeInt = Annotated[int, Min(0)]
PositiveDuration = Annotated[float, _DurationMarker(), Min(0, exclusive=True)]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`"1h30m"` -> 5400.0; raises ValueError on anything else."""
    compact = text.replace(" ", "")
    if not compact:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f"not a duration: {text!r}")
    return total


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    """The closest of `choices` to `word`, if any is close enough."""
    if len(word) > 100:  # no valid name is this long; and difflib is quadratic
        return None
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """A hint naming the closest valid choice, or listing all of them."""
    options = sorted(choices)
    close = suggest(word, options)
    listing = ", ".join(options)
    return f"did you mean {close!r}? valid: {listing}" if close else f"valid: {listing}"


def type_name(tp: Any) -> str:
    """How a field type reads in an error message."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *marks = get_args(tp)
        if any(isinstance(m, _DurationMarker) for m in marks):
            return 'a duration (seconds, or "250ms", "30s", "5m", "1h")'
        return type_name(base)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"a list of {type_name(get_args(tp)[0])}"
    if origin in (dict, Mapping):
        return f"a mapping of {type_name(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def describe_value(value: Any) -> str:
    """`value` for an error message, with its YAML type when that is the problem."""
    kind = {dict: "mapping", list: "list", bool: "boolean", type(None): "null"}.get(type(value))
    return f"{short_repr(value)} ({kind})" if kind else short_repr(value)


def convert(src: Source, value: Any, tp: Any, path: KeyPath) -> Any:
    """Check `value` (found at `path` in `src`) against type `tp` and convert it."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *marks = get_args(tp)
        if any(isinstance(m, _DurationMarker) for m in marks):
            out = _duration(src, value, path)
        else:
            out = convert(src, value, base, path)
        for mark in marks:
            check = getattr(mark, "check", None)
            problem = check(out) if check else None
            if problem:
                raise src.error(path, f"{describe_value(value)} {problem}")
        return out
    if origin is Literal:
        allowed = get_args(tp)
        bool_ok = isinstance(value, bool) == any(isinstance(a, bool) for a in allowed)
        if value not in allowed or not bool_ok:
            hint = did_you_mean(str(value), [str(a) for a in allowed])
            raise src.error(path, f"{describe_value(value)} is not allowed", hint=hint)
        return value
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        if value is None and type(None) in members:
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return convert(src, value, member, path)
            except ScenarioError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise src.error(path, f"{describe_value(value)} is not {type_name(tp)}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise src.error(path, f"expected {type_name(tp)}, got {describe_value(value)}")
        item_tp = get_args(tp)[0]
        items = [convert(src, v, item_tp, (*path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise src.error(path, f"expected {type_name(tp)}, got {describe_value(value)}")
        value_tp = get_args(tp)[1]
        return {k: convert(src, v, value_tp, (*path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return convert_dataclass(src, value, tp, path)
    return _scalar(src, value, tp, path)


def convert_dataclass(src: Source, value: Any, cls: type, path: KeyPath) -> Any:
    """Build frozen dataclass `cls` from mapping `value`; unknown keys are errors."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise src.error(path, f"expected a mapping, got {describe_value(value)}")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            raise src.error((*path, key), f"unknown key {short_repr(key)}",
                            hint=did_you_mean(key, fields))
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = convert(src, value[name], hints[name], (*path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise src.error(
                path,
                f"missing required key {name!r}",
                hint=f"add `{name}:` ({type_name(hints[name])})",
            )
    try:
        return cls(**kwargs)
    except ValueError as exc:  # cross-field checks in __post_init__
        raise src.error(path, str(exc)) from None


def _duration(src: Source, value: Any, path: KeyPath) -> float:
    if isinstance(value, bool):
        raise src.error(path, f"expected a duration, got {describe_value(value)}")
    seconds = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a duration: said below
            seconds = parse_duration(value)
    if seconds is not None:
        if not math.isfinite(seconds):
            raise src.error(path, f"{describe_value(value)} is not a finite duration",
                            hint='write seconds as a number, or "30s", "5m", "1h"')
        if abs(seconds) > MAX_DURATION_S:
            raise src.error(path, f"{describe_value(value)} is longer than 30 days, the "
                            "limit for durations")
        return seconds
    raise src.error(
        path,
        f"{describe_value(value)} is not a duration",
        hint='write seconds as a number, or "250ms", "30s", "5m", "1h", "1h30m"',
    )


def _scalar(src: Source, value: Any, tp: Any, path: KeyPath) -> Any:
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }.get(tp)
    if ok is None:
        raise TypeError(f"schema type {tp!r} is not supported at {path}")
    if not ok(value):
        raise src.error(path, f"expected {type_name(tp)}, got {describe_value(value)}")
    if tp is float and not math.isfinite(value):  # .inf, .nan, 1e999
        raise src.error(path, f"{describe_value(value)} is not a finite number")
    if tp is int and abs(value) > MAX_INT:
        raise src.error(path, f"{describe_value(value)} is too large",
                        hint=f"integers in a scenario are at most {MAX_INT}")
    return float(value) if tp is float else value
