"""Runs in, a `Report` out: provenance for every run, then each scenario kind's
sections over the runs of that kind (several runs side by side in one figure).

A kind's report is its `KindSpec.report`: `sections(runs, options) -> list[Section]`
(pure: DataFrames and Figures, no files). A kind without one still gets its
provenance and SLA verdicts, and a note saying so. Runs with monitor rows, of
any kind, also get the control-plane sections (`report.monitors`): peaks,
attribution, and which monitor failed; runs of a capacity search get its
sections (`report.search`): what each search found, the capacity figure, the steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from osbench import kinds
from osbench.report import compare_table, monitors, search, story
from osbench.report.model import Report, Section
from osbench.report.provenance import provenance
from osbench.report.series import kind_of, run_labels
from osbench.report.style import FigureOptions
from osbench.results import Run


@dataclass(frozen=True)
class Extras:
    """Optional parts: a story's chapters first, a comparison against the first run last."""

    story: str | None = None
    compare: bool = False
    thresholds: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.05


def build_report(runs: Sequence[Run], options: FigureOptions | None = None,
                 title: str | None = None, extras: Extras | None = None) -> Report:
    """The whole report for `runs`, in the order given; kinds in order of first run."""
    options = options or FigureOptions()
    extras = extras or Extras()
    labels = run_labels(runs)
    by_kind: dict[str, list[Run]] = {}
    for run in runs:
        by_kind.setdefault(kind_of(run), []).append(run)
    sections: list[Section] = []
    if extras.story is not None:
        sections.extend(story.sections(story.stories()[extras.story], runs, options))
    for kind, kind_runs in by_kind.items():
        spec = kinds.get(kind)
        builder = spec.report_sections() if spec is not None else None
        if builder is None:
            sections.append(Section(f"{kind} runs", notes=[
                f"No report renderer for the {kind!r} kind yet; its provenance and SLA "
                "verdicts are above."]))
            kind_sections = [*search.sections(kind_runs, options),
                             *monitors.sections(kind_runs, options)]
        else:
            kind_sections = [*builder(kind_runs, options),
                             *search.sections(kind_runs, options),
                             *monitors.sections(kind_runs, options)]
        if len(by_kind) > 1:
            for section in kind_sections:
                section.title = f"{kind}: {section.title}"
        sections.extend(kind_sections)
    if extras.compare:
        sections.extend(compare_table.sections(runs, extras.thresholds, extras.alpha))
    if title is None:
        title = ("osbench report: " + ", ".join(labels)) if len(labels) <= 3 else (
            f"osbench report: {len(labels)} runs")
    return Report(title=title,
                  provenance=[provenance(run, label)
                              for run, label in zip(runs, labels, strict=True)],
                  sections=sections)
