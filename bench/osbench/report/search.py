"""Capacity searches in a report: what each search found, how it got there, and what
the SLA measured at each value it tried.

Any run with `search` rows gets this part, whatever its kind (`report.build` adds
it). For each search (a sweep point's id, the `search` column):

- a summary: capacity (largest passing value), first_fail (smallest failing value),
  points, cases and why it ended, from its `search_summary` row; a search without
  one (a killed run) is "incomplete", with what its steps so far prove;
- a capacity figure: one panel per measure against the searched value, a mark per
  repeat (o met the SLA, x missed it), a line through each value's median, and the
  capacity as a dashed vertical line. Several runs (before and after a change) are
  series of the same figure. The measures are the criteria the `search` rows
  measured (`measured`: {criterion: [value per repeat]}) for any kind; boot's are
  the phone-home outcome and the p95 time to phone home, from its `cases` and
  `instances` tables, drawn by the same function;
- the steps: value, phase, verdict, repeats passed and failed, the criteria
  missed, the repeats' spread and the failing repeats' top bottleneck.

Every number comes from the run's tables.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from osbench import stats
from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.series import case_rows, kind_of, run_labels, time_unit
from osbench.report.style import FigureOptions
from osbench.results import Run

#: Generic figures show at most this many criteria, one panel each.
MAX_PANELS = 3

#: A search row's repeat: the search row, the repeat's index in it, and its case id.
MeasureFn = Callable[[Run, Mapping[str, Any], int, str], "float | None"]


@dataclass(frozen=True)
class Measure:
    """One panel of the capacity figure: a number per repeat of a point."""

    name: str
    label: str
    value: MeasureFn
    #: Panel limits on the y axis (None: matplotlib's).
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class SearchSeries:
    """One search of one run: a series of the capacity figure."""

    label: str
    run_label: str
    run: Run
    search: str


def has_search(run: Run) -> bool:
    return not run.table("search").empty or not run.table("search_summary").empty


def _ids(run: Run) -> list[str]:
    ids: list[str] = []
    for name in ("search", "search_summary"):
        frame = run.table(name)
        if "search" in frame.columns:
            ids += list(frame["search"].astype(str))
    return list(dict.fromkeys(ids))


def search_series(runs: Sequence[Run]) -> list[SearchSeries]:
    """Every search of every run with one, in order. One run: the search's id, or the
    run's name for a scenario without a sweep ("default"); several: the run's label,
    and "/ search" when it has a sweep."""
    searched = [run for run in runs if has_search(run)]
    out = []
    labels = run_labels(searched)
    for run, run_label in zip(searched, labels, strict=True):
        for search in _ids(run):
            if search == "default":
                label = run_label
            else:
                label = search if len(searched) == 1 else f"{run_label} / {search}"
            out.append(SearchSeries(label, run_label, run, search))
    return out


def _rows(run: Run, table: str, search: str) -> list[dict[str, Any]]:
    frame = run.table(table)
    if frame.empty or "search" not in frame.columns:
        return []
    rows = frame[frame["search"].astype(str) == search]
    return [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


# -- what each search found ---------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A search's outcome: its summary row's, or (incomplete) what its steps prove."""

    param: str
    capacity: float | None
    first_fail: float | None
    points: int
    cases: int
    status: str
    complete: bool
    start: float | None = None
    maximum: float | None = None
    require: float | None = None
    error: str | None = None


def found(run: Run, search: str) -> Found:
    """What `search` of `run` found. Without a `search_summary` row the search did not
    end: its capacity and first failure are those of its journaled steps, and its
    status says so and what the manifest says of the run."""
    steps = _rows(run, "search", search)
    summaries = _rows(run, "search_summary", search)
    spec = _dict(run.manifest.get("search")) or _dict(
        _dict(run.manifest.get("scenario")).get("search"))
    if summaries:
        s = summaries[-1]
        status = str(s.get("status"))
        complete = status in ("done", "budget", "error")  # ended by itself
        if not complete:  # stopped by a signal: "interrupted"
            status = f"incomplete: {status} (the run's status is {run.status!r})"
        return Found(str(s.get("param")), _number(s.get("capacity")),
                     _number(s.get("first_fail")), int(_number(s.get("points")) or 0),
                     int(_number(s.get("cases")) or 0), status, complete,
                     _number(s.get("start")), _number(s.get("max")),
                     _number(s.get("require")),
                     None if s.get("error") is None or pd.isna(s.get("error"))
                     else str(s.get("error")))
    passes = [v for r in steps if r.get("verdict") == "pass"
              if (v := _number(r.get("value"))) is not None]
    fails = [v for r in steps if r.get("verdict") == "fail"
             if (v := _number(r.get("value"))) is not None]
    param = str(steps[-1].get("param")) if steps else str(spec.get("param", "?"))
    status = (f"incomplete: no search_summary row (the run's status is {run.status!r}"
              + ("; killed or still running)" if run.status == "running" else ")"))
    return Found(param, max(passes) if passes else None, min(fails) if fails else None,
                 len(steps), sum(len(_list(r.get("cases"))) for r in steps), status,
                 False, _number(spec.get("start")), _number(spec.get("max")),
                 _number(spec.get("require")))


def summary_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per search: what it found and why it ended."""
    rows = []
    for s in search_series(runs):
        f = found(s.run, s.search)
        rows.append({"run": s.run_label, "search": s.search, "param": f.param,
                     "capacity": f.capacity, "first_fail": f.first_fail,
                     "searched": f"{_fmt(f.start)}..{_fmt(f.maximum)}",
                     "points": f.points, "cases": f.cases, "status": f.status,
                     "require": f.require, "error": f.error})
    return pd.DataFrame(rows, columns=["run", "search", "param", "capacity", "first_fail",
                                       "searched", "points", "cases", "status", "require",
                                       "error"])


def sentence(s: SearchSeries) -> str:
    """"search-small-pets: count capacity 90, first fail 100 (8 points, 8 cases; done)"."""
    f = found(s.run, s.search)
    capacity = (f"capacity {_fmt(f.capacity)}" if f.capacity is not None else
                f"no capacity (below start {_fmt(f.start)})")
    first = (f"first fail {_fmt(f.first_fail)}" if f.first_fail is not None else
             "no failure" + (f" up to max {_fmt(f.maximum)}" if f.maximum else ""))
    return (f"{s.label}: {f.param} {capacity}, {first} ({f.points} points, {f.cases} "
            f"cases; {f.status})")


# -- the steps ------------------------------------------------------------------------------


def _missed(row: Mapping[str, Any]) -> str:
    counts = Counter(c for miss in _list(row.get("missed")) for c in _list(miss))
    measured = _dict(row.get("measured"))
    parts = []
    for criterion, n in counts.items():
        values = ", ".join(f"{v:.4g}" for v in _list(measured.get(criterion))
                           if _number(v) is not None)
        times = f" x{n}" if n > 1 else ""
        parts.append(f"{criterion}{times}" + (f" (measured {values})" if values else ""))
    return "; ".join(parts)


def _spread(row: Mapping[str, Any]) -> str:
    return "; ".join(f"{criterion}: {float(v):.4g}"
                     for criterion, v in _dict(row.get("spread")).items()
                     if _number(v) is not None)


def _bottleneck(row: Mapping[str, Any]) -> str:
    texts = [str(t) for t in _list(row.get("bottlenecks")) if t]
    if not texts:
        return ""
    top, n = Counter(texts).most_common(1)[0]
    failing = int(_number(row.get("failed")) or 0)
    return top if len(texts) == 1 and failing <= 1 else f"{top} ({n} of {failing} failing)"


def steps_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Every point of every search, in the order it was tried."""
    rows = []
    for s in search_series(runs):
        for step, r in enumerate(_rows(s.run, "search", s.search), start=1):
            rows.append({"run": s.run_label, "search": s.search, "step": step,
                         "value": _number(r.get("value")), "phase": r.get("phase"),
                         "verdict": r.get("verdict"),
                         "passed": int(_number(r.get("passed")) or 0),
                         "failed": int(_number(r.get("failed")) or 0),
                         "rule": r.get("rule"), "missed": _missed(r),
                         "spread": _spread(r), "top bottleneck": _bottleneck(r)})
    return pd.DataFrame(rows, columns=["run", "search", "step", "value", "phase", "verdict",
                                       "passed", "failed", "rule", "missed", "spread",
                                       "top bottleneck"])


def steps_text(run: Run, search: str) -> str:
    """"10 pass, 20 pass, 40 fail, 30 pass": the points in the order tried."""
    return ", ".join(f"{_fmt(_number(r.get('value')))} {r.get('verdict')}"
                     for r in _rows(run, "search", search))


# -- measures -------------------------------------------------------------------------------


def criterion_measure(criterion: str) -> Measure:
    """What the SLA measured for `criterion`, per repeat (the `search` rows' `measured`)."""

    def value(run: Run, row: Mapping[str, Any], repeat: int, case: str) -> float | None:
        values = _list(_dict(row.get("measured")).get(criterion))
        return _number(values[repeat]) if repeat < len(values) else None

    return Measure(criterion, criterion, value)


def generic_measures(runs: Sequence[Run]) -> list[Measure]:
    """The criteria the searches measured, in order of first appearance."""
    criteria: list[str] = []
    for s in search_series(runs):
        for r in _rows(s.run, "search", s.search):
            criteria += [c for c in _dict(r.get("measured")) if c not in criteria]
    return [criterion_measure(c) for c in criteria[:MAX_PANELS]]


def _phone_home_ok_pct(run: Run, row: Mapping[str, Any], repeat: int,
                       case: str) -> float | None:
    """The case's metric; else ok instances over those requested (or journaled)."""
    cases = case_rows(run.table("cases"), case)
    if "metric.phone_home_ok_pct" in cases.columns:
        values = pd.to_numeric(cases["metric.phone_home_ok_pct"], errors="coerce").dropna()
        if len(values):
            return float(values.iloc[-1])
    instances = case_rows(run.table("instances"), case)
    if "outcome" not in instances.columns or instances.empty:
        return None
    requested = len(instances)
    if "metric.requested" in cases.columns:
        asked = pd.to_numeric(cases["metric.requested"], errors="coerce").dropna()
        requested = int(asked.iloc[-1]) if len(asked) else requested
    ok = int((instances["outcome"].astype(str) == "ok").sum())
    return 100.0 * ok / requested if requested else None


def _p95_phone_home_s(run: Run, row: Mapping[str, Any], repeat: int,
                      case: str) -> float | None:
    instances = case_rows(run.table("instances"), case)
    if "time_to_phone_home_s" not in instances.columns:
        return None
    times = pd.to_numeric(instances["time_to_phone_home_s"], errors="coerce").dropna()
    return stats.aggregate("p95", times.to_numpy(dtype=float)) if len(times) else None


def boot_measures(runs: Sequence[Run]) -> list[Measure]:
    unit = time_unit(runs)
    return [Measure("phone_home_ok_pct", "phoned home (% of requested)", _phone_home_ok_pct,
                    ylim=(-3.0, 103.0)),
            Measure("p95 time_to_phone_home_s", f"p95 time to phone home ({unit})",
                    _p95_phone_home_s)]


#: Kinds whose capacity figure shows their own measures rather than the SLA's.
KIND_MEASURES: dict[str, Callable[[Sequence[Run]], list[Measure]]] = {"boot": boot_measures}


# -- the figure -----------------------------------------------------------------------------


def _repeat_verdict(run: Run, case: str, point_verdict: str) -> str:
    """pass or fail from the case's SLA rows; error for a case that did not complete."""
    sla = case_rows(run.table("sla"), case)
    if "passed" in sla.columns and len(sla):
        return "pass" if bool(sla["passed"].astype(bool).all()) else "fail"
    cases = case_rows(run.table("cases"), case)
    if "status" in cases.columns and len(cases) and str(cases["status"].iloc[-1]) != "completed":
        return "error"
    return point_verdict


POINT_COLUMNS = ["series", "run", "search", "param", "value", "phase", "verdict", "case",
                 "repeat", "repeat_verdict", "metric", "measured"]


def point_data(runs: Sequence[Run], measures: Sequence[Measure]) -> pd.DataFrame:
    """One row per series, point, repeat and measure: the capacity figure's data."""
    rows = []
    for s in search_series(runs):
        for r in _rows(s.run, "search", s.search):
            for repeat, case in enumerate(_list(r.get("cases"))):
                verdict = _repeat_verdict(s.run, str(case), str(r.get("verdict")))
                for m in measures:
                    rows.append({"series": s.label, "run": s.run_label, "search": s.search,
                                 "param": r.get("param"), "value": _number(r.get("value")),
                                 "phase": r.get("phase"), "verdict": r.get("verdict"),
                                 "case": str(case), "repeat": repeat + 1,
                                 "repeat_verdict": verdict, "metric": m.name,
                                 "measured": m.value(s.run, r, repeat, str(case))})
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def capacity_figure(runs: Sequence[Run], measures: Sequence[Measure],
                    options: FigureOptions, *, name: str = "search-capacity",
                    title: str = "Capacity search") -> Plot:
    """`measures` against the searched value, one panel each, every search a series."""
    series = search_series(runs)
    data = point_data(runs, measures)
    figure, axes = figures.new_figure(options, max(1, len(measures)))
    figure.suptitle(title)
    params = list(dict.fromkeys(found(s.run, s.search).param for s in series))
    if not measures:
        figures.no_data(axes[0], "no SLA values measured")
    for panel, m in enumerate(measures):
        ax = axes[panel]
        rows = data[(data["metric"] == m.name) & data["measured"].notna()]
        if rows.empty:
            figures.no_data(ax)
            continue
        for index, s in enumerate(series):
            colour, linestyle = options.colour(index), options.linestyle(index)
            mine = rows[rows["series"] == s.label]
            if not mine.empty:
                medians = mine.groupby("value")["measured"].median().sort_index()
                ax.plot(medians.index, medians.to_numpy(), color=colour, linestyle=linestyle,
                        linewidth=1.2, alpha=0.7, label=s.label)
                met = mine["repeat_verdict"] == "pass"
                ax.scatter(mine.loc[met, "value"], mine.loc[met, "measured"], marker="o",
                           s=36, facecolors="none", edgecolors=colour, zorder=3)
                ax.scatter(mine.loc[~met, "value"], mine.loc[~met, "measured"], marker="x",
                           s=40, color=colour, zorder=3)
            capacity = found(s.run, s.search).capacity
            if capacity is not None:
                ax.axvline(capacity, color=colour, linestyle="--", linewidth=1.5,
                           label=f"{s.label}: capacity {capacity:g}")
        ax.set_title("\n".join(textwrap.wrap(m.label, 40)), fontsize="medium")
        ax.set_xlabel(" / ".join(params))
        if m.ylim is not None:
            ax.set_ylim(*m.ylim)
    # The marks' meaning once, in a neutral colour.
    axes[0].scatter([], [], marker="o", facecolors="none", edgecolors="#444444",
                    label="repeat met the SLA")
    axes[0].scatter([], [], marker="x", color="#444444", label="repeat missed the SLA")
    figures.legend_below(figure, axes)
    return Plot(name, title, figure, data,
                caption="One mark per repeat at each value tried: o met the scenario's "
                "SLA, x missed it; the line joins each value's median. Dashed vertical "
                "line: the search's capacity (largest passing value).")


# -- the section ----------------------------------------------------------------------------


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    """The capacity-search section of `runs` (of one kind); none when no run searched."""
    series = search_series(runs)
    if not series:
        return []
    searched = [run for run in runs if has_search(run)]
    kinds = {kind_of(run) for run in searched}
    measures_of = KIND_MEASURES.get(next(iter(kinds))) if len(kinds) == 1 else None
    if measures_of is not None:
        measures = measures_of(searched)
        title = "Capacity: phone-home outcome and p95 time against the searched value"
    else:
        measures = generic_measures(searched)
        title = "Capacity: what the SLA measured against the searched value"
    notes = [sentence(s) for s in series]
    incomplete = [s for s in series if not found(s.run, s.search).complete]
    if incomplete:
        notes.append("incomplete: " + "; ".join(
            f"{s.label} ({found(s.run, s.search).status.removeprefix('incomplete: ')})"
            for s in incomplete) + ". Its capacity and first failure are those of the "
            "points journaled before the run stopped.")
    return [Section("Capacity search", [
        Table("search-summary", "What each search found", summary_table(searched),
              note="capacity: the largest passing value; first_fail: the smallest "
              "failing one (empty: none failed up to max)."),
        capacity_figure(searched, measures, options, title=title),
        Table("search-steps", "Steps of each search", steps_table(searched),
              note="In the order tried. passed/failed: repeats; missed: the criteria "
              "failing repeats missed (xN: by N repeats) with what was measured; "
              "spread: max - min over the repeats; top bottleneck: what the monitors' "
              "attribution named first for the failing repeats."),
    ], notes=notes)]
