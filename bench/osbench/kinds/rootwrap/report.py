"""The rootwrap kind's report: the latency of one command per mode (direct, sudo,
rootwrap, daemon) as a distribution on a log axis, and the ratio table: how many
times slower than running the command directly (field notes: 0.048 s direct,
0.713 s through neutron-rootwrap, about 15x).

Figures come from the raw `samples` rows, so a killed run still shows what it
measured; the ratio's bootstrap interval comes from the kind's own `modes` rows
(computed once, with a recorded seed) and is left blank where they are missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.series import case_ids, case_rows, run_labels, series_label
from osbench.report.style import FigureOptions
from osbench.results import Run

#: Modes in the order the report shows them (the kind's own order).
MODE_ORDER = ("direct", "sudo", "rootwrap", "daemon")

SAMPLE_COLUMNS = ["series", "mode", "latency_ms"]


def latency_samples(runs: Sequence[Run]) -> pd.DataFrame:
    """Every journaled sample: series (run / case), mode, latency_ms."""
    several = len(runs) > 1
    parts = []
    for run, label in zip(runs, run_labels(runs), strict=True):
        samples = run.table("samples")
        if samples.empty or not {"mode", "latency_ms"} <= set(samples.columns):
            continue
        for case in case_ids(run):
            rows = case_rows(samples, case)
            if rows.empty:
                continue
            parts.append(pd.DataFrame({
                "series": series_label(label, case, several),
                "mode": rows["mode"].astype(str).to_numpy(),
                "latency_ms": pd.to_numeric(rows["latency_ms"], errors="coerce").to_numpy(),
            }))
    if not parts:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    return frame.dropna(subset=["latency_ms"]).reset_index(drop=True)


def _modes_present(samples: pd.DataFrame) -> list[str]:
    present = set(samples["mode"])
    return [m for m in MODE_ORDER if m in present] + sorted(present - set(MODE_ORDER))


def _bootstrap_intervals(runs: Sequence[Run]) -> dict[tuple[str, str], tuple[float, float]]:
    """(series, mode) -> the kind's bootstrap 95% interval of the median ratio."""
    several = len(runs) > 1
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for run, label in zip(runs, run_labels(runs), strict=True):
        modes = run.table("modes")
        if modes.empty or not {"mode", "ratio_ci_low", "ratio_ci_high"} <= set(modes.columns):
            continue
        for case in case_ids(run):
            rows = case_rows(modes, case)
            lows = pd.to_numeric(rows["ratio_ci_low"], errors="coerce").to_numpy(dtype=float)
            highs = pd.to_numeric(rows["ratio_ci_high"], errors="coerce").to_numpy(dtype=float)
            for mode, low, high in zip(rows["mode"].astype(str), lows, highs, strict=True):
                out[(series_label(label, case, several), mode)] = (float(low), float(high))
    return out


def ratio_table(runs: Sequence[Run], samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per series and mode: samples, p50/p90/p99 in ms, and the median's ratio to
    the same series' direct median with the kind's 95% bootstrap interval."""
    samples = latency_samples(runs) if samples is None else samples
    columns = ["series", "mode", "n", "p50_ms", "p90_ms", "p99_ms", "ratio_to_direct",
               "ratio_ci_low", "ratio_ci_high"]
    if samples.empty:
        return pd.DataFrame(columns=columns)
    intervals = _bootstrap_intervals(runs)
    rows = []
    for series, group in samples.groupby("series", sort=False):
        direct = group.loc[group["mode"] == "direct", "latency_ms"]
        direct_p50 = float(direct.median()) if not direct.empty else float("nan")
        for mode in _modes_present(group):
            values = group.loc[group["mode"] == mode, "latency_ms"].to_numpy(dtype=float)
            if values.size == 0:
                continue
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            low, high = intervals.get((str(series), mode), (float("nan"), float("nan")))
            rows.append({"series": series, "mode": mode, "n": int(values.size),
                         "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
                         "ratio_to_direct": float(p50) / direct_p50,
                         "ratio_ci_low": low, "ratio_ci_high": high})
    return pd.DataFrame(rows, columns=columns)


def latency_figure(samples: pd.DataFrame, options: FigureOptions) -> Plot:
    """Box plots of latency per mode on a log axis, one box per series in each mode
    group, every sample drawn over its box (they are few: the distribution's shape,
    outliers included, is the point)."""
    figure, axes = figures.new_figure(options, 1)
    figure.suptitle("Latency of one call per mode")
    ax = axes[0]
    if samples.empty:
        figures.no_data(ax)
    else:
        modes = _modes_present(samples)
        series = list(dict.fromkeys(samples["series"]))
        width = 0.8 / len(series)
        rng = np.random.default_rng(0)  # jitter only: the same data draws the same figure
        for s_index, name in enumerate(series):
            colour = options.colour(s_index)
            positions, data = [], []
            for m_index, mode in enumerate(modes):
                values = samples.loc[(samples["series"] == name) & (samples["mode"] == mode),
                                     "latency_ms"].to_numpy(dtype=float)
                if values.size:
                    positions.append(m_index + (s_index - (len(series) - 1) / 2) * width)
                    data.append(values)
            if not data:
                continue
            ax.boxplot(data, positions=positions, widths=width * 0.8, whis=(1, 99),
                       showfliers=False, medianprops={"color": colour, "linewidth": 2.5},
                       boxprops={"color": colour}, whiskerprops={"color": colour},
                       capprops={"color": colour})
            for position, values in zip(positions, data, strict=True):
                jitter = rng.uniform(-width * 0.3, width * 0.3, values.size)
                ax.scatter(position + jitter, values, s=6, color=colour, alpha=0.45,
                           linewidths=0, label=str(name))
        ax.set_yscale("log")
        ax.set_xticks(range(len(modes)), modes)
        ax.set_xlim(-0.6, len(modes) - 0.4)
        ax.set_xlabel("mode")
        ax.set_ylabel("latency of one call (ms, log scale)")
        if len(series) > 1:
            figures.legend_below(figure, axes)
    return Plot("rootwrap-latency", "Latency of one call per mode", figure, samples,
                caption="Each dot is one call; boxes span the quartiles, whiskers the 1st "
                "to 99th percentile, the thick line is the median. Log scale, so that modes "
                "an order of magnitude apart share one axis.")


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    samples = latency_samples(runs)
    notes = []
    for run, label in zip(runs, run_labels(runs), strict=True):
        skipped = run.table("skipped")
        for row in skipped.itertuples(index=False) if not skipped.empty else ():
            notes.append(f"{label}: mode {getattr(row, 'mode', '?')} skipped: "
                         f"{getattr(row, 'reason', 'no reason recorded')}")
        errors = run.table("errors")
        if not errors.empty:
            notes.append(f"{label}: {len(errors)} call(s) failed or differed in output; "
                         "they are in its errors table, not in the samples.")
    return [Section("Rootwrap latency per mode", [
        latency_figure(samples, options),
        Table("rootwrap-ratios", "Latency per mode and ratio to direct (median)",
              ratio_table(runs, samples),
              note="ratio_ci_low/high: the run's own bootstrap 95% interval of the "
                   "median ratio (blank when the run was cut short)."),
    ], notes=notes)]
