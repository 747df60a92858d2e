"""The netsweep kind's report: summed throughput against queue count, one series per
variant, mean with a 95% t-interval over the rounds; and the same as a table laid
out like the field notes' (rows queues, columns variants).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.series import run_labels
from osbench.report.style import FigureOptions
from osbench.results import Run
from osbench.stats import mean_interval

CONFIDENCE = 0.95


def _series_name(run_label: str, variant: str, several_runs: bool) -> str:
    if not several_runs:
        return variant
    return run_label if variant == "default" else f"{run_label} / {variant}"


def throughput_stats(runs: Sequence[Run], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per series (variant, or run / variant) and queue count: rounds n, mean Gb/s,
    half-width and bounds of the t-interval. Rounds with a failed stream carry no
    sum and are left out (their count is in `failed`)."""
    rows = []
    several = len(runs) > 1
    for run, label in zip(runs, run_labels(runs), strict=True):
        table = run.table("runs")
        if table.empty or not {"queues", "sum_gbps"} <= set(table.columns):
            continue
        variants = (table["variant"].astype(str) if "variant" in table.columns
                    else pd.Series("default", index=table.index))
        for (variant, _), group in table.groupby([variants, table["queues"]], sort=False):
            sums = pd.to_numeric(group["sum_gbps"], errors="coerce")
            interval = mean_interval(sums.to_numpy(dtype=float), confidence)
            rows.append({"series": _series_name(label, str(variant), several),
                         "queues": int(group["queues"].iloc[0]), "n": interval.n,
                         "failed": int(sums.isna().sum()), "mean_gbps": interval.mean,
                         "half_width_gbps": interval.half_width,
                         "low_gbps": interval.low, "high_gbps": interval.high})
    columns = ["series", "queues", "n", "failed", "mean_gbps", "half_width_gbps",
               "low_gbps", "high_gbps"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    order = list(dict.fromkeys(frame["series"]))
    frame["_order"] = frame["series"].map(order.index)
    return frame.sort_values(["_order", "queues"]).drop(columns="_order").reset_index(drop=True)


def _cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no data"
    if math.isnan(float(row["half_width_gbps"])):
        return f"{row['mean_gbps']:.2f} (n={row['n']})"
    return f"{row['mean_gbps']:.2f} ± {row['half_width_gbps']:.2f}"


def throughput_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Rows queue counts, columns series, cells "mean ± half-width" in Gb/s."""
    if stats.empty:
        return pd.DataFrame(columns=["queues"])
    cells = stats.assign(cell=stats.apply(_cell, axis=1))
    wide = cells.pivot(index="queues", columns="series", values="cell")
    wide = wide[list(dict.fromkeys(stats["series"]))].fillna("")
    wide.columns.name = None
    return wide.reset_index()


def throughput_figure(stats: pd.DataFrame, options: FigureOptions,
                      confidence: float = CONFIDENCE) -> Plot:
    """Mean summed goodput against queue count (log2 axis), 95% interval bars."""
    figure, axes = figures.new_figure(options, 1)
    figure.suptitle("Throughput against queue count")
    ax = axes[0]
    if stats.empty or stats["n"].sum() == 0:
        figures.no_data(ax)
    else:
        for index, (series, group) in enumerate(stats.groupby("series", sort=False)):
            group = group[group["n"] > 0]
            yerr = group["half_width_gbps"].fillna(0.0).to_numpy(dtype=float)
            ax.errorbar(group["queues"], group["mean_gbps"], yerr=yerr, capsize=4,
                        marker="o", color=options.colour(index),
                        linestyle=options.linestyle(index), label=str(series))
        queues = sorted(int(q) for q in stats.loc[stats["n"] > 0, "queues"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(queues, [str(q) for q in queues])
        ax.minorticks_off()
        ax.set_ylim(bottom=0)
        ax.set_xlabel("queues in use (ethtool -L)")
        ax.set_ylabel("summed goodput (Gb/s)")
        figures.legend_below(figure, axes)
    rounds = sorted({int(n) for n in stats["n"]}) if not stats.empty else [0]
    count = str(rounds[0]) if len(rounds) == 1 else f"{rounds[0]}–{rounds[-1]}"
    return Plot("netsweep-throughput", "Throughput against queue count", figure, stats,
                caption=f"Mean of {count} rounds per point; bars are the {confidence:.0%} "
                "Student-t interval of the mean.")


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    stats = throughput_stats(runs)
    return [Section("Network throughput against queues", [
        throughput_figure(stats, options),
        Table("netsweep-throughput", "Summed goodput, Gb/s (mean ± 95% half-width)",
              throughput_table(stats)),
    ])]
