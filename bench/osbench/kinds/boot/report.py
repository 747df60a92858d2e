"""The boot kind's report: outcomes per case, ACTIVE/phone-home curves with create
errors marked, with the control plane under them when the run has monitors, time
CDFs, why instances did not start, IPv4/IPv6 share.

Every function is pure: runs in, DataFrames or Figures out. Times are seconds since
the instance's create request (`time_to_*_s`, timeline `t_s`); on the simulated
cloud they are modelled seconds, and the axes say so.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from osbench.report import figures
from osbench.report import monitors as control_plane
from osbench.report.model import Plot, Section, Table
from osbench.report.series import case_ids, case_rows, run_labels, series_label, time_unit
from osbench.report.style import FigureOptions
from osbench.results import Run
from osbench.stats import ecdf

#: Outcome columns of the outcome table, in the order an instance can fail later.
OUTCOMES = ("ok", "error", "no_phone_home", "not_created", "build_timeout")

#: Fault messages are cut to this many characters in tables and bar labels.
REASON_WIDTH = 100

#: Identifiers that make each fault message unique (instance UUIDs, RPC message
#: ids) are replaced so that messages group: "Timed out waiting for a reply to
#: message ID <id>" is one reason, not four.
_IDENTIFIERS = (
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
     "<uuid>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}\b"), "<id>"),
)

#: Most frequent failure reasons listed per series.
TOP_REASONS = 10


@dataclass(frozen=True)
class Series:
    """One line in the figures: a case of a run."""

    label: str
    run_label: str
    run: Run
    case: str


def boot_series(runs: Sequence[Run]) -> list[Series]:
    """Every case of every run, in order."""
    several = len(runs) > 1
    out = []
    for run, run_label in zip(runs, run_labels(runs), strict=True):
        for case in case_ids(run):
            out.append(Series(series_label(run_label, case, several), run_label, run, case))
    return out


def _case_status(series: Series) -> str:
    cases = case_rows(series.run.table("cases"), series.case)
    if not cases.empty and "status" in cases.columns and pd.notna(cases["status"].iloc[-1]):
        return str(cases["status"].iloc[-1])
    return "incomplete" if series.run.incomplete else "not run"


def _requested(series: Series, instances: pd.DataFrame) -> int:
    cases = case_rows(series.run.table("cases"), series.case)
    if "metric.requested" in cases.columns:
        value = cases["metric.requested"].dropna()
        if not value.empty:
            return int(value.iloc[-1])
    return len(instances)


def _count_pct(count: int, requested: int) -> str:
    if requested <= 0:
        return str(count)
    return f"{count} ({100.0 * count / requested:.1f}%)"


def outcome_counts(runs: Sequence[Run]) -> list[tuple[Series, int, Counter[str]]]:
    """Per series: requested instances and the count of each outcome, from the
    `instances` table (one outcome per instance)."""
    out = []
    for s in boot_series(runs):
        instances = case_rows(s.run.table("instances"), s.case)
        counts: Counter[str] = (Counter(instances["outcome"].astype(str))
                                if "outcome" in instances.columns else Counter())
        out.append((s, _requested(s, instances), counts))
    return out


def outcome_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run and case: requested, then each outcome as "count (pct%)".

    A case that never started (killed run) has status "incomplete" or "not run"
    and zeros.
    """
    rows = []
    for s, requested, counts in outcome_counts(runs):
        row: dict[str, object] = {"run": s.run_label, "case": s.case, "status": _case_status(s),
                                  "requested": requested}
        for outcome in OUTCOMES:
            row[outcome] = _count_pct(counts[outcome], requested)
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", "case", "status", "requested", *OUTCOMES])


def _first_times(series: Series, event: str, column: str) -> np.ndarray:
    """Seconds from create request to `event` per instance: the timeline (written as
    events happen, so a killed run has it), else the instances table."""
    timeline = case_rows(series.run.table("timeline"), series.case)
    if not timeline.empty and {"event", "t_s", "instance_id"} <= set(timeline.columns):
        rows = timeline[timeline["event"].astype(str) == event]
        return np.sort(rows.groupby("instance_id")["t_s"].min().to_numpy(dtype=float))
    instances = case_rows(series.run.table("instances"), series.case)
    if column in instances.columns:
        return np.sort(instances[column].dropna().to_numpy(dtype=float))
    return np.array([], dtype=float)


def create_errors(runs: Sequence[Run]) -> pd.DataFrame:
    """Create requests per series; `t_s` is the reply time since that request was
    sent (where the figures mark an unknown outcome, i.e. a 504 or a timeout)."""
    frames = []
    for s in boot_series(runs):
        creates = case_rows(s.run.table("creates"), s.case)
        if creates.empty:
            continue
        frame = pd.DataFrame({"series": [s.label] * len(creates)})
        for column in ("batch", "size", "status", "outcome", "sent_s", "reply_s", "error"):
            frame[column] = (creates[column].to_numpy() if column in creates.columns
                             else [None] * len(creates))
        frame["t_s"] = pd.to_numeric(frame["reply_s"], errors="coerce") - pd.to_numeric(
            frame["sent_s"], errors="coerce")
        frames.append(frame)
    columns = ["series", "batch", "size", "status", "outcome", "sent_s", "reply_s", "t_s",
               "error"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def timeline_figure(runs: Sequence[Run], options: FigureOptions) -> Plot:
    """Cumulative ACTIVE and phoned-home counts against time since the create
    request; create requests without a reply (504) as dotted vertical lines."""
    unit = time_unit(runs)
    figure, axes = figures.new_figure(options, 2, sharey=True)
    figure.suptitle("Instances ACTIVE and phoned home over time")
    errors = create_errors(runs)
    unknown = errors[errors["outcome"].astype(str) != "accepted"] if not errors.empty else errors
    rows: list[dict[str, object]] = []
    drawn = [False, False]
    for index, s in enumerate(boot_series(runs)):
        colour, linestyle = options.colour(index), options.linestyle(index)
        for panel, (event, column) in enumerate((("active", "time_to_active_s"),
                                                 ("phone_home", "time_to_phone_home_s"))):
            times = _first_times(s, event, column)
            if len(times) == 0:
                continue
            drawn[panel] = True
            counts = np.arange(1, len(times) + 1)
            axes[panel].step(np.concatenate([[0.0], times]), np.concatenate([[0], counts]),
                             where="post", label=s.label, color=colour, linestyle=linestyle)
            rows.extend({"series": s.label, "event": event, "t_s": t, "count": int(c)}
                        for t, c in zip(times, counts, strict=True))
        for _, err in unknown[unknown["series"] == s.label].iterrows():
            if pd.isna(err["t_s"]):
                continue
            status = "no reply" if pd.isna(err["status"]) else f"HTTP {int(err['status'])}"
            for ax in axes:
                ax.axvline(float(err["t_s"]), color=colour, linestyle=":",
                           linewidth=1.5, label=f"{s.label}: create {status}")
            rows.append({"series": s.label, "event": f"create {status}",
                         "t_s": float(err["t_s"]), "count": None})
    _finish_panels(axes, ("ACTIVE (API)", "phoned home"), drawn,
                   lambda name: f"time since create request ({unit})")
    axes[0].set_ylabel("instances")
    figures.legend_below(figure, axes)
    return Plot("boot-timeline", "Instances ACTIVE and phoned home over time", figure,
                pd.DataFrame(rows, columns=["series", "event", "t_s", "count"]),
                caption=f"Cumulative count per case; time in {unit}. Dotted vertical "
                "lines: create requests whose outcome was unknown (e.g. HTTP 504 from "
                "the proxy), at the time the error came back.")


def first_send_s(series: Series) -> float:
    """When the case's first create request was sent, on the case's clock: the boot
    figures' time zero (monitor t_s minus this is their x)."""
    creates = case_rows(series.run.table("creates"), series.case)
    if "sent_s" not in creates.columns:
        return 0.0
    sent = pd.to_numeric(creates["sent_s"], errors="coerce").dropna()
    return float(sent.min()) if len(sent) else 0.0


def control_plane_figures(runs: Sequence[Run], options: FigureOptions) -> list[Plot]:
    """One control-plane panel per case with monitor rows, on the timeline's time axis
    (seconds since the case's first create request)."""
    unit = time_unit(runs)
    plots = []
    for index, s in enumerate(boot_series(runs)):
        monitor = case_rows(s.run.table("monitor"), s.case)
        if monitor.empty:
            continue
        plots.append(control_plane.control_plane_plot(
            monitor, first_send_s(s), s.label, f"boot-control-plane-{index + 1}", options,
            f"time since create request ({unit})"))
    return plots


def _one_time_axis(timeline: Plot, panels: Sequence[Plot]) -> None:
    """The timeline's panels and the control-plane panels get the same x limits."""
    span = control_plane.x_range([timeline, *panels])
    if span is None:
        return
    for plot in (timeline, *panels):
        for ax in plot.figure.axes:
            ax.set_xlim(*span)


def cdf_figure(runs: Sequence[Run], options: FigureOptions) -> Plot:
    """Empirical CDFs of time to ACTIVE and time to phone-home, one line per case."""
    unit = time_unit(runs)
    figure, axes = figures.new_figure(options, 2, sharey=True)
    figure.suptitle("Time to ACTIVE and to phone-home (CDF)")
    rows: list[dict[str, object]] = []
    drawn = [False, False]
    for index, s in enumerate(boot_series(runs)):
        instances = case_rows(s.run.table("instances"), s.case)
        curves = [ecdf(instances[column].dropna().to_numpy(dtype=float))
                  if column in instances.columns else ecdf([])
                  for column in ("time_to_active_s", "time_to_phone_home_s")]
        label = f"{s.label} (n={len(curves[0][0])}/{len(curves[1][0])})"
        for panel, column in enumerate(("time_to_active_s", "time_to_phone_home_s")):
            x, y = curves[panel]
            if len(x) == 0:
                continue
            drawn[panel] = True
            axes[panel].step(x, y, where="post", color=options.colour(index),
                             linestyle=options.linestyle(index), label=label)
            rows.extend({"series": s.label, "metric": column, "t_s": float(t),
                         "fraction": float(f)} for t, f in zip(x, y, strict=True))
    _finish_panels(axes, ("time to ACTIVE", "time to phone-home"), drawn,
                   lambda name: f"{name} ({unit})")
    for ax in axes:
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("fraction of instances that got there")
    figures.legend_below(figure, axes)
    return Plot("boot-cdf", "Time to ACTIVE and to phone-home (CDF)", figure,
                pd.DataFrame(rows, columns=["series", "metric", "t_s", "fraction"]),
                caption=f"Among instances that reached the state (n in the legend: reached "
                "ACTIVE / phoned home); "
                f"time in {unit}.")


def _finish_panels(axes: Sequence[Any], titles: Sequence[str], drawn: Sequence[bool],
                   xlabel: Callable[[str], str]) -> None:
    """Title and x label on each panel; a "no data" mark where nothing was drawn."""
    for ax, title, has_data in zip(axes, titles, drawn, strict=True):
        ax.set_title(title)
        ax.set_xlabel(xlabel(title))
        if not has_data:
            figures.no_data(ax)


def _reason(row: pd.Series) -> str:
    outcome = str(row["outcome"])
    detail = None
    if outcome == "error":
        detail = row.get("fault")
    elif outcome == "no_phone_home":
        detail = row.get("console_class")
    if detail is None or (isinstance(detail, float) and math.isnan(detail)) or pd.isna(detail):
        return outcome
    text = " ".join(str(detail).split())
    for pattern, placeholder in _IDENTIFIERS:
        text = pattern.sub(placeholder, text)
    if len(text) > REASON_WIDTH:
        text = text[:REASON_WIDTH - 1] + "…"
    return f"{outcome}: {text}"


def failure_reasons(runs: Sequence[Run]) -> pd.DataFrame:
    """Why instances did not start: series, reason ("outcome: fault message" or
    "no_phone_home: console class"), count; most frequent first, top 10 per series."""
    frames = []
    for s in boot_series(runs):
        instances = case_rows(s.run.table("instances"), s.case)
        if instances.empty or "outcome" not in instances.columns:
            continue
        failed = instances[instances["outcome"].astype(str) != "ok"]
        if failed.empty:
            continue
        reasons = failed.apply(_reason, axis=1).value_counts().head(TOP_REASONS)
        frames.append(pd.DataFrame({"series": s.label, "reason": reasons.index.astype(str),
                                    "count": reasons.to_numpy(dtype=int)}))
    if not frames:
        return pd.DataFrame(columns=["series", "reason", "count"])
    return pd.concat(frames, ignore_index=True)


def console_classes(runs: Sequence[Run]) -> pd.DataFrame:
    """Console-log classes of instances that never phoned home, per series."""
    frames = []
    for s in boot_series(runs):
        consoles = case_rows(s.run.table("instances"), s.case)
        if "console_class" not in consoles.columns:
            continue
        classes = consoles["console_class"].dropna().astype(str).value_counts()
        if classes.empty:
            continue
        frames.append(pd.DataFrame({"series": s.label, "console_class": classes.index,
                                    "count": classes.to_numpy(dtype=int)}))
    if not frames:
        return pd.DataFrame(columns=["series", "console_class", "count"])
    return pd.concat(frames, ignore_index=True)


def failure_figure(runs: Sequence[Run], options: FigureOptions) -> Plot:
    """Horizontal bars: instances per failure reason, one bar colour per series."""
    reasons = failure_reasons(runs)
    labels = list(dict.fromkeys(reasons["reason"].astype(str)))
    names = [s.label for s in boot_series(runs)]
    present = [n for n in names if n in set(reasons["series"])]
    bars = sum(len(reasons[reasons["reason"] == label]) for label in labels)
    figure, axes = figures.new_figure(options, 1,
                                      height_scale=min(3.0, max(0.8, 0.4 + 0.09 * bars)))
    figure.suptitle("Why instances did not start")
    ax = axes[0]
    if reasons.empty:
        figures.no_data(ax, "every instance phoned home")
    else:
        height = 0.8 / max(len(present), 1)
        positions = np.arange(len(labels), dtype=float)
        for k, name in enumerate(present):
            sub = reasons[reasons["series"] == name].set_index("reason")["count"]
            values = [int(sub.get(label, 0)) for label in labels]
            ax.barh(positions + k * height, values, height=height, label=name,
                    color=options.colour(names.index(name)))
        ax.set_yticks(positions + height * (len(present) - 1) / 2,
                      [textwrap.fill(label, 38) for label in labels])
        ax.invert_yaxis()
        ax.set_xlabel("instances")
        ax.grid(axis="y", visible=False)
        figures.legend_below(figure, axes)
    return Plot("boot-failures", "Why instances did not start", figure, reasons,
                caption="Instances that did not phone home, by outcome and fault message "
                "(ERROR) or console-log class (no phone-home).")


def address_families(runs: Sequence[Run]) -> pd.DataFrame:
    """Phone-homes per series by source address family (first arrival per instance)."""
    rows = []
    for s in boot_series(runs):
        arrivals = case_rows(s.run.table("phone_home"), s.case)
        if "duplicate" in arrivals.columns:
            arrivals = arrivals[~arrivals["duplicate"].fillna(False).astype(bool)]
        families = (arrivals["address_family"].astype(str).value_counts()
                    if "address_family" in arrivals.columns else pd.Series(dtype=int))
        total = int(families.sum())
        ipv4, ipv6 = int(families.get("ipv4", 0)), int(families.get("ipv6", 0))
        rows.append({"series": s.label, "phone_homes": total, "ipv4": ipv4, "ipv6": ipv6,
                     "ipv6_pct": round(100.0 * ipv6 / total, 1) if total else math.nan})
    return pd.DataFrame(rows, columns=["series", "phone_homes", "ipv4", "ipv6", "ipv6_pct"])


def address_family_figure(runs: Sequence[Run], options: FigureOptions) -> Plot:
    """100% bars: IPv4 and IPv6 share of each series' phone-homes."""
    table = address_families(runs)
    shown = table[table["phone_homes"] > 0]
    figure, axes = figures.new_figure(
        options, 1, height_scale=min(3.0, max(0.6, 0.25 + 0.12 * len(shown))))
    figure.suptitle("Phone-homes by address family")
    ax = axes[0]
    if shown.empty:
        figures.no_data(ax, "no phone-homes")
    else:
        share4 = 100.0 * shown["ipv4"] / shown["phone_homes"]
        share6 = 100.0 * shown["ipv6"] / shown["phone_homes"]
        y = np.arange(len(shown))
        ax.barh(y, share4, color=options.colour(0), label="IPv4")
        ax.barh(y, share6, left=share4, color=options.colour(1), label="IPv6")
        ax.set_yticks(y, list(shown["series"]))
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of phone-homes (%)")
        ax.grid(axis="y", visible=False)
        figures.legend_below(figure, axes)
    return Plot("boot-address-family", "Phone-homes by address family", figure, table,
                caption="Source address family of each instance's first phone-home.")


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    """The boot part of a report, in the order the field notes tell it."""
    errors = create_errors(runs)
    timeline = timeline_figure(runs, options)
    panels = control_plane_figures(runs, options)
    if panels:
        _one_time_axis(timeline, panels)
    return [
        Section("Boot outcomes", [
            Table("boot-outcomes", "Outcome per case", outcome_table(runs),
                  note="An instance counts as started only when it phoned home."),
            timeline,
            *panels,
            cdf_figure(runs, options),
        ]),
        Section("Why instances did not start", [
            failure_figure(runs, options),
            Table("boot-failure-reasons", "Most frequent failure reasons",
                  failure_reasons(runs)),
            Table("boot-console-classes", "Console-log classes (no phone-home)",
                  console_classes(runs)),
        ]),
        Section("Create requests", [
            Table("boot-creates", "Create requests (outcome unknown: 504 or timeout, "
                  "reconciled by listing)", errors),
        ]),
        Section("IPv4 and IPv6", [
            address_family_figure(runs, options),
            Table("boot-address-family", "Phone-homes by address family",
                  address_families(runs)),
        ]),
    ]
