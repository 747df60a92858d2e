"""The field-notes story's closing chapter, "How far does each fix go?": each
configuration's capacity side by side, from capacity-search runs (issue 17).

Not one of the field's findings. The engineers stepped through 100, 200, 400
and 1000 instances by hand, fixing the cloud between steps, so their steps only
bracket each configuration's capacity: small pets below 100, big pets from 100
to under 200, vif_plugging_is_fatal under 200, the rootwrap daemon from 400 to
under 1000 (1000 started, but the create got a 504; only an SLA that counts
create errors calls that a failure). The judgement sets each capacity found
against its bracket, and the configurations' order (each fix goes further)
against the field's.

Everything shown is computed from the runs' `search_summary` tables (and, for what
failed at each first failing count, their `search` tables).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from osbench.report.model import Table
from osbench.report.story import Chapter, Judgement, Told, counted, of_kind
from osbench.report.style import FigureOptions
from osbench.results import Run

SCENARIO = "scenarios/capacity/seed-replay-search.yaml"


@dataclass(frozen=True)
class Bracket:
    """What the field's steps say of a configuration's capacity: at least `low`
    started in full, `high` did not (None: no such step)."""

    low: int | None
    high: int | None
    said: str
    #: Whether `high` failed only on a create error (the daemon's 504 at 1000).
    high_is_create_error: bool = False


#: By simulated profile, in the order the field applied the fixes.
BRACKETS: dict[str, Bracket] = {
    "small-pets": Bracket(None, 100, "4 to 7 of 100 did not start"),
    "big-pets": Bracket(100, 200, "100 started, 8 to 20 of 200 never phoned home"),
    "vif-fatal": Bracket(None, 200, "at 200 the instances with late ports went to ERROR"),
    "rootwrap-daemon": Bracket(400, 1000, "400 started; at 1000 the create got a 504",
                               high_is_create_error=True),
}


@dataclass(frozen=True)
class Found:
    """One search of one run, from its search_summary row."""

    label: str
    profile: str | None
    seed: Any
    capacity: int | float | None
    first_fail: int | float | None
    points: int
    cases: int
    status: str
    #: The criteria the first failing point missed ("" when unknown).
    stopped_by: str
    sla: tuple[str, ...]

    @property
    def ended(self) -> bool:
        """Ended by itself (or at its budget): its capacity is a finding, not a bound."""
        return self.status in ("done", "budget")


def _number(value: Any) -> int | float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _profile(run: Run, search: str) -> str | None:
    """The simulated profile a search ran on: its sweep value, else the run's one."""
    values = dict(part.split("=", 1) for part in search.split(",") if "=" in part)
    if "sim_profile" in values:
        return values["sim_profile"]
    used = {str(t["profile"]) for t in run.manifest.get("targets", [])
            if isinstance(t, dict) and t.get("profile")}
    return used.pop() if len(used) == 1 else None


def _stopped_by(points: pd.DataFrame, search: str, first_fail: Any) -> str:
    if first_fail is None or points.empty or "missed" not in points.columns:
        return ""
    rows = points[(points["search"] == search) & (points["value"] == first_fail)]
    missed = {text for row in rows["missed"] for repeat in row for text in repeat}
    return ", ".join(sorted(missed))


def searches(runs: Sequence[Run]) -> list[Found]:
    """Every search of every run, the field's configurations first, in the field's order."""
    out = []
    for run in runs:
        scenario = run.manifest.get("scenario", {})
        name = str(scenario.get("name") or run.run_id)
        points = run.tables.get("search", pd.DataFrame())
        for row in run.table("search_summary").to_dict("records"):
            search = str(row["search"])
            profile = _profile(run, search)
            first_fail = _number(row.get("first_fail"))
            label = profile or (name if search == "default" else f"{name} {search}")
            out.append(Found(
                label=label, profile=profile, seed=run.manifest.get("seed"),
                capacity=_number(row.get("capacity")), first_fail=first_fail,
                points=int(row["points"]), cases=int(row["cases"]), status=str(row["status"]),
                stopped_by=_stopped_by(points, search, first_fail),
                sla=tuple(str(c) for c in scenario.get("sla", []))))
    order = list(BRACKETS)
    return sorted(out, key=lambda f: (order.index(f.profile) if f.profile in order
                                      else len(order), f.label, str(f.seed)))


def _fmt(value: int | float | None) -> str:
    return "-" if value is None else f"{value:g}"


def table(found: Sequence[Found]) -> pd.DataFrame:
    return pd.DataFrame([{
        "profile": f.label, "seed": f.seed, "capacity": _fmt(f.capacity),
        "first fail": _fmt(f.first_fail), "points": f.points, "cases": f.cases,
        "status": f.status, "first fail missed": f.stopped_by or "-"} for f in found])


def _span(values: Sequence[int | float]) -> str:
    """'87', '87 to 93', or 'none' (no count at or above start passed)."""
    if not values:
        return "none"
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def by_label(found: Sequence[Found]) -> dict[str, list[Found]]:
    out: dict[str, list[Found]] = {}
    for f in found:
        out.setdefault(f.label, []).append(f)
    return out


def _runs(group: Sequence[Found]) -> str:
    """' (seed 1)' for one search, ' (3 runs)' for several."""
    return f" (seed {group[0].seed})" if len(group) == 1 else f" ({len(group)} runs)"


def _bracket_text(bracket: Bracket, high: int | None) -> str:
    return " and ".join(filter(None, [
        f"at least {bracket.low}" if bracket.low is not None else "",
        f"under {high}" if high is not None else ""]))


def judge_capacities(found: Sequence[Found]) -> Judgement:
    """Each configuration's ended searches against its field bracket (one clause per
    configuration, one per run outside it), and the order small pets < big pets <
    rootwrap daemon for every seed that searched all three."""
    agrees, differs, other = [], [], []
    for label, group in by_label(found).items():
        for f in group:
            if not f.ended:
                bound = f", at least {_fmt(f.capacity)}" if f.capacity is not None else ""
                other.append(f"{label} (seed {f.seed}): the search ended {f.status}{bound}")
        ended = [f for f in group if f.ended]
        if not ended:
            continue
        bracket = BRACKETS.get(ended[0].profile or "")
        if bracket is None:
            other.append(f"{label}: capacity {_span(_values(ended))}{_runs(ended)}; no "
                         "field step to set it against")
            continue
        inside = []
        for f in ended:
            high = bracket.high
            if bracket.high_is_create_error and not any("create_errors" in c for c in f.sla):
                high = None  # 1000 all started: a failure only when create errors count
            capacity = -math.inf if f.capacity is None else f.capacity
            if ((bracket.low is None or capacity >= bracket.low)
                    and (high is None or capacity < high)):
                inside.append(f)
            else:
                differs.append(f"{label} (seed {f.seed}): capacity {_fmt(f.capacity)}, not "
                               f"{_bracket_text(bracket, high)}; in the field notes "
                               f"{bracket.said}")
        if inside:
            agrees.append(f"{label} capacity {_span(_values(inside))}{_runs(inside)}, "
                          f"{_bracket_text(bracket, bracket.high)} as the field's steps say "
                          f"({bracket.said})")
    ordered = ("small-pets", "big-pets", "rootwrap-daemon")
    held: dict[str, dict[str, float]] = {}  # by seed
    for seed in sorted({str(f.seed) for f in found}):
        mine = {str(f.profile): float(f.capacity) for f in found
                if str(f.seed) == seed and f.ended and f.profile in ordered
                and f.capacity is not None}
        if len(mine) < len(ordered):
            continue
        values = [mine[p] for p in ordered]
        if values[0] < values[1] < values[2]:
            held[seed] = mine
        else:
            differs.append(f"the fixes do not go further in turn (seed {seed}): " + ", ".join(
                f"{p} {v:g}" for p, v in zip(ordered, values, strict=True)))
    if held:
        # By seed: one seed's searches may come from several runs (a sweep split up).
        seeds = (f"each of the {len(held)} seeds that searched all three" if len(held) > 1
                 else f"seed {next(iter(held))}")
        agrees.append(f"each fix goes further, for {seeds}: " + " < ".join(
                          f"{p} {_span([m[p] for m in held.values()])}" for p in ordered))
    return Judgement(tuple(agrees), tuple(differs), tuple(other))


def _values(group: Sequence[Found]) -> list[int | float]:
    return [f.capacity for f in group if f.capacity is not None]


def _tell(runs: Sequence[Run], options: FigureOptions) -> Told:
    found = searches(runs)
    labels = by_label(found)
    clauses = []
    for label, group in labels.items():
        values = [f.capacity for f in group if f.ended and f.capacity is not None]
        clauses.append(f"{label} {_span(values)}" if values else f"{label} none")
    slas = sorted({"; ".join(f.sla) for f in found if f.sla})
    resolution = sorted({_fmt(_number(r)) for run in runs
                         for r in run.table("search_summary")["resolution"]})
    runs_said = f" over {len(runs)} runs" if len(runs) > 1 else ""
    measured = (f"the largest count one create request brought up within the SLA "
                f"({' | '.join(slas) or 'none'}), to within {counted(resolution)}{runs_said}: "
                + ", ".join(clauses) + ".")
    reach = _reach(labels)
    if reach:
        measured += " " + reach
    title = "capacity within the SLA: " + ", ".join(clauses)
    return Told(title, measured, judge_capacities(found), [
        Table("capacity-side-by-side", "Capacity per configuration (one row per search)",
              table(found))])


def _reach(labels: dict[str, list[Found]]) -> str:
    """'Against small-pets: big-pets x1.9, ...' from each label's lowest ended capacity."""
    lows = {label: min(float(f.capacity) for f in group
                       if f.ended and f.capacity is not None)
            for label, group in labels.items()
            if any(f.ended and f.capacity is not None for f in group)}
    if len(lows) < 2:
        return ""
    base, base_value = next(iter(lows.items()))
    if not base_value:
        return ""
    return f"Against {base}: " + ", ".join(
        f"{label} x{value / base_value:.1f}" for label, value in lows.items()
        if label != base) + " (lowest capacity of each)."


CHAPTER = Chapter(
    8, "How far does each fix go?",
    "The engineers stepped through 100, 200, 400 and 1000 instances by hand, fixing the "
    "cloud between steps: on small pets 4 to 7 of 100 did not start; on big pets 100 "
    "started but 8 to 20 of 200 never phoned home; with vif_plugging_is_fatal those went "
    "to ERROR; with the rootwrap daemon 200, 400 and 1000 started, but at 1000 the "
    "create got a 504. They did not search for each configuration's largest count.",
    lambda run: of_kind("boot")(run) and "search_summary" in run.tables,
    f"{SCENARIO} (a capacity search per profile)",
    _tell, heading="Question")
