"""The report's comparison section: the first run is the baseline, every later run
of the same kind is a candidate, and each pair gets `osbench compare`'s table
(verdicts need the threshold and a significance test; see osbench.compare), and
when either has monitors, the table of monitor peaks (judged by their relative
change, and a test only with repeats; they never count as worse), and when either
has capacity searches, their capacities (judged only when the intervals the
searches found their boundaries in do not overlap)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from osbench.compare import (
    FAILING,
    PEAKS_NOTE,
    SEARCHES_NOTE,
    compare,
    monitor_peaks,
    searches,
)
from osbench.errors import UserError
from osbench.report.model import Section, Table
from osbench.report.series import kind_of, run_labels
from osbench.results import Run


def sections(runs: Sequence[Run], thresholds: Mapping[str, float] | None = None,
             alpha: float = 0.05) -> list[Section]:
    """One section: a table per candidate, and a note per run it could not compare."""
    if len(runs) < 2:
        return [Section("Comparison", notes=["Only one run: nothing to compare it with."])]
    labels = run_labels(runs)
    base, base_label = runs[0], labels[0]
    section = Section(f"Comparison against {base_label}", notes=[
        f"Baseline: {base_label}. 'worse' and 'better' need both the change beyond the "
        f"metric's threshold and a significance test at alpha {alpha:g} (Mann-Whitney U "
        "on the raw samples; Fisher's exact test for success rates); anything else is "
        "noise."])
    worse = 0
    for index, (run, label) in enumerate(zip(runs[1:], labels[1:], strict=True), start=1):
        if kind_of(run) != kind_of(base):
            section.notes.append(f"{label}: a {kind_of(run)} run, not compared with a "
                                 f"{kind_of(base)} baseline.")
            continue
        try:
            table = compare(base, run, thresholds=thresholds, alpha=alpha)
        except UserError as exc:
            section.notes.append(f"{label}: not compared: {exc}")
            continue
        worse += int(table["verdict"].isin(FAILING).sum())
        section.items.append(Table(f"compare-{index}", f"{label} against {base_label}", table))
        found = searches(table)
        if len(found):
            section.items.append(Table(f"compare-{index}-searches",
                                       f"Capacity searches: {label} against {base_label}",
                                       found, note=SEARCHES_NOTE))
        peaks = monitor_peaks(table)
        if len(peaks):
            section.items.append(Table(f"compare-{index}-monitor-peaks",
                                       f"Monitor peaks: {label} against {base_label}",
                                       peaks, note=PEAKS_NOTE))
    section.notes.insert(1, f"{worse} metric(s) worse or newly failing." if worse else
                         "Nothing got worse.")
    return [section]
