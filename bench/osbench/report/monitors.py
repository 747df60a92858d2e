"""The report's control-plane sections, for every kind, when a run has monitor rows:
the peaks of every series per case, the attribution per case (symptoms and
ranked bottlenecks, or "no bottleneck seen"), and which monitor failed and why.
Also the control-plane panel a kind draws under its own timeline
(`control_plane_plot`: service CPU, queue depths, API latency by operation).

Pure, like every renderer: runs in, DataFrames and Figures out. Every figure
comes from the run's `monitor`, `monitor_errors` and `monitor_sources` tables
through `osbench.monitors.series` and `osbench.monitors.attribution`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from osbench.monitors import attribution as at
from osbench.monitors import series as ms
from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.series import case_ids, case_rows, run_labels, series_label
from osbench.report.style import FigureOptions, applied
from osbench.results import Run

#: Lines drawn per panel of the control-plane figure: the series with the highest
#: peaks (13 preset services on 3 hosts would be 39 lines nobody can tell apart).
MAX_LINES = 8
#: A CPU series that never reached this percent of its cores is left out of the panel.
MIN_CPU_PCT = 1.0

RULES_NOTE = (
    f"Rules: saturation = CPU at >= {at.SATURATION_PCT:g}% of the service's cores for >= "
    f"{at.SATURATION_SAMPLES} samples in a row; backlog = a queue depth higher than the "
    f"sample before for >= {at.BACKLOG_RISING_SAMPLES} samples in a row; api = an "
    f"operation's p95 latency after its first {at.API_BASELINE_S:g} s at >= "
    f"{at.API_FACTOR:g}x its p50 in them; gateway = a request answered "
    f"{'/'.join(str(s) for s in sorted(at.GATEWAY_STATUSES))} by the proxy. Findings "
    "related to a symptom's area come first, then those that began before the symptom "
    "ended, then the nearest component, then the larger excess over the threshold. "
    "A case without a symptom names no bottleneck.")
TIME_NOTE = ("t: seconds on the case's clock from its start (the monitors' origin; "
             "modelled seconds on the simulated cloud).")


def has_monitors(runs: Sequence[Run]) -> bool:
    """Whether any run journaled monitor rows (or monitor errors)."""
    return any(not run.table("monitor").empty or not run.table("monitor_sources").empty
               or not run.table("monitor_errors").empty for run in runs)


def _cases(runs: Sequence[Run]) -> list[tuple[str, Run, str]]:
    """(series label, run, case) for every case of every run."""
    several = len(runs) > 1
    return [(series_label(label, case, several), run, case)
            for run, label in zip(runs, run_labels(runs), strict=True)
            for case in case_ids(run)]


def peaks_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Per case and series: its peak and when (case clock)."""
    frames = []
    for label, run, case in _cases(runs):
        monitor = case_rows(run.table("monitor"), case)
        if monitor.empty:
            continue
        peaks = ms.peaks(monitor)
        if len(peaks):
            frames.append(peaks.assign(series=label))
    columns = ["series", "source", "subject", "metric", "unit", "peak", "t_peak_s", "samples"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def attributions(runs: Sequence[Run]) -> list[tuple[str, at.Attribution]]:
    """(series label, attribution) of every case with monitor rows."""
    out = []
    for run, label in zip(runs, run_labels(runs), strict=True):
        judged = at.attribute_run(run)
        for case, result in judged.items():
            out.append((series_label(label, case, len(runs) > 1), result))
    return out


def symptoms_table(judged: Sequence[tuple[str, at.Attribution]]) -> pd.DataFrame:
    rows = [{"series": label, "area": s.area, "count": s.count, "symptom": s.text}
            for label, result in judged for s in result.symptoms]
    return pd.DataFrame(rows, columns=["series", "area", "count", "symptom"])


def attribution_table(judged: Sequence[tuple[str, at.Attribution]]) -> pd.DataFrame:
    """Per case: its ranked findings with their evidence, or why none is named."""
    rows: list[dict[str, object]] = []
    for label, result in judged:
        if not result.findings:
            rows.append({"series": label, "rank": None, "rule": None, "subject": None,
                         "evidence": result.verdict, "symptom": None})
        for rank, f in enumerate(result.findings, 1):
            rows.append({"series": label, "rank": rank, "rule": f.rule, "subject": f.subject,
                         "evidence": f.evidence,
                         "symptom": f.symptom.text if f.symptom else "(none related)"})
    return pd.DataFrame(rows, columns=["series", "rank", "rule", "subject", "evidence",
                                       "symptom"])


def sources_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Per case and source: samples taken and failed, and the first and last error
    (from monitor_sources; monitor_errors alone for a run killed before its totals)."""
    rows = []
    for label, run, case in _cases(runs):
        totals = case_rows(run.table("monitor_sources"), case)
        errors = case_rows(run.table("monitor_errors"), case)
        first_at = ({str(s): float(t) for s, t in zip(errors["source"], errors["t_s"],
                                                      strict=True)}
                    if {"source", "t_s"} <= set(errors.columns) else {})
        seen = set()
        for row in totals.to_dict("records"):
            source = str(row.get("source"))
            seen.add(source)
            rows.append({"series": label, "source": source, "samples": row.get("samples"),
                         "failed": row.get("failed"), "readings": row.get("readings"),
                         "first_error_t_s": first_at.get(source),
                         "first_error": row.get("first_error"),
                         "last_error": row.get("last_error")})
        for row in errors.to_dict("records"):
            source = str(row.get("source"))
            if source not in seen:
                rows.append({"series": label, "source": source, "samples": None,
                             "failed": None, "readings": None,
                             "first_error_t_s": row.get("t_s"),
                             "first_error": row.get("error"), "last_error": None})
    return pd.DataFrame(rows, columns=["series", "source", "samples", "failed", "readings",
                                       "first_error_t_s", "first_error", "last_error"])


def _failure_note(sources: pd.DataFrame) -> str:
    failed = sources[sources["first_error"].notna()]
    if sources.empty:
        return "No monitor source reported its totals."
    if failed.empty:
        return "Every monitor source sampled without an error."
    names = [f"{r['source']} ({r['series']}): {r['first_error']}"
             for r in failed.to_dict("records")]
    return "Failed monitors (first error): " + "; ".join(names) + "."


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    """The control-plane sections of a report (empty without monitor rows)."""
    if not has_monitors(runs):
        return []
    judged = attributions(runs)
    sources = sources_table(runs)
    return [
        Section("What limited each case (attribution)", [
            Table("monitor-symptoms", "Symptoms per case (from the kind's own tables)",
                  symptoms_table(judged)),
            Table("monitor-attribution", "Likely bottlenecks per case, ranked",
                  attribution_table(judged), note=TIME_NOTE),
        ], notes=[RULES_NOTE]),
        Section("Control plane during each case", [
            Table("monitor-peaks", "Peak of every monitored series per case",
                  peaks_table(runs),
                  note="CPU in percent of the cores named in `unit` (a service: its "
                  "processes, at most the host's cores; the simulated cloud: its modelled "
                  "cores); `*_total` counters as rates per second; API latency: the slowest "
                  "request of each operation. " + TIME_NOTE),
            Table("monitor-sources", "Monitor sources: samples, failures and errors",
                  sources, note=_failure_note(sources)),
        ]),
    ]


# -- the control-plane panel ---------------------------------------------------------------


def _stacked(options: FigureOptions, rows: int) -> tuple[Figure, list[Axes]]:
    """`rows` panels above each other sharing the time axis, in the report style."""
    with applied(options):
        figure = Figure(figsize=(options.width_in, options.height_in * 0.6 * rows),
                        dpi=options.dpi, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, list(axes)


def _busiest(series: Sequence[ms.Series], floor: float = -math.inf) -> list[ms.Series]:
    peaks = [(s.peak(), s) for s in series]
    kept = [(p[0], s) for p, s in peaks if p is not None and p[0] >= floor]
    kept.sort(key=lambda item: -item[0])
    return [s for _, s in kept[:MAX_LINES]]


def control_plane_plot(monitor: pd.DataFrame, origin_s: float, label: str, name: str,
                       options: FigureOptions, xlabel: str,
                       xlim: tuple[float, float] | None = None) -> Plot:
    """Service CPU, queue depths and API latency by operation for one case, against
    t - `origin_s` (a kind's own time axis: boot's is time since the create request)."""
    figure, axes = _stacked(options, 3)
    title = f"Control plane: {label}" if label else "Control plane"
    figure.suptitle(title)
    rows: list[dict[str, object]] = []
    cpu = _busiest(ms.cpu_series(monitor), MIN_CPU_PCT)
    queues = _busiest(ms.queue_series(monitor))
    for index, s in enumerate(cpu):
        x = s.t - origin_s
        style = "--" if s.component == "host" else options.linestyle(index)
        axes[0].plot(x, s.v, label=f"CPU {s.name}", color=options.colour(index),
                     linestyle=style)
        rows.extend({"panel": "cpu_pct_of_cores", "line": s.name, "t_s": float(t),
                     "value": float(v)} for t, v in zip(x, s.v, strict=True))
    for index, s in enumerate(queues):
        x = s.t - origin_s
        axes[1].plot(x, s.v, label=f"{s.name}", color=options.colour(index),
                     linestyle=options.linestyle(index), drawstyle="steps-post")
        rows.extend({"panel": "queue_depth", "line": s.name, "t_s": float(t),
                     "value": float(v)} for t, v in zip(x, s.v, strict=True))
    requests = ms.api_requests(monitor)
    for index, (op, part) in enumerate(requests.groupby("operation", sort=True)):
        x = part["t_s"].to_numpy(float) - origin_s
        y = part["latency_s"].to_numpy(float)
        axes[2].scatter(x, y, s=10, label=f"API {op}", color=options.colour(index))
        rows.extend({"panel": "api_latency_s", "line": str(op), "t_s": float(t),
                     "value": float(v)} for t, v in zip(x, y, strict=True))
    gateway = requests[requests["status"].isin(at.GATEWAY_STATUSES)]
    if len(gateway):
        axes[2].scatter(gateway["t_s"].to_numpy(float) - origin_s,
                        gateway["latency_s"].to_numpy(float), s=60, marker="x",
                        color="#000000", label="API answered 502/504")
    positive = requests["latency_s"][requests["latency_s"] > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        axes[2].set_yscale("log")
    titles = ("Service CPU", "Queue depths", "API latency by operation")
    ylabels = ("% of its cores", "depth", "latency (s)")
    drawn = (bool(cpu), bool(queues), bool(len(requests)))
    for ax, panel_title, ylabel, has_data in zip(axes, titles, ylabels, drawn, strict=True):
        ax.set_title(panel_title)
        if has_data:
            ax.set_ylabel(ylabel)
        else:
            figures.no_data(ax, "not monitored")
    axes[-1].set_xlabel(xlabel)
    if xlim is not None:
        axes[-1].set_xlim(*xlim)
    figures.legend_below(figure, axes)
    data = pd.DataFrame(rows, columns=["panel", "line", "t_s", "value"])
    return Plot(name, title, figure, data,
                caption="On the same time axis as the timeline above "
                f"(t minus {origin_s:g} s, the first create request on the case's clock). "
                "CPU in percent of the cores each service can use (host: of all its "
                f"cores); the {MAX_LINES} highest series per panel; API: one point per "
                "request at the time it was sent, crosses for 502/504.")


def x_range(plots: Sequence[Plot]) -> tuple[float, float] | None:
    """The union of the x limits of `plots`' first axes (to give them one time axis)."""
    limits = [p.figure.axes[0].get_xlim() for p in plots if p.figure.axes]
    if not limits:
        return None
    lo = min(min(a, b) for a, b in limits)
    hi = max(max(a, b) for a, b in limits)
    return (float(lo), float(hi)) if np.isfinite([lo, hi]).all() else None
