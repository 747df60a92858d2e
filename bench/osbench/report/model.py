"""What a report is made of, before anything is drawn to a file: sections holding
tables (DataFrames) and plots (matplotlib Figures with the data behind them).

Renderers (Markdown, HTML) and the writer read these; nothing here touches disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Table:
    """A table shown as-is; `name` is its file stem when written as CSV."""

    name: str
    title: str
    frame: pd.DataFrame
    note: str = ""


@dataclass(frozen=True)
class Plot:
    """A figure and the tidy data it was drawn from (written as CSV beside it)."""

    name: str
    title: str
    figure: Figure
    data: pd.DataFrame
    caption: str = ""


Item = Table | Plot


@dataclass
class Section:
    """One heading of the report: a scenario kind's findings, in reading order."""

    title: str
    items: list[Item] = field(default_factory=list)
    #: Plain-text paragraphs shown under the heading (no markup).
    notes: list[str] = field(default_factory=list)

    @property
    def plots(self) -> list[Plot]:
        return [item for item in self.items if isinstance(item, Plot)]

    @property
    def tables(self) -> list[Table]:
        return [item for item in self.items if isinstance(item, Table)]


@dataclass(frozen=True)
class Provenance:
    """Where one run's numbers come from, shown above everything else."""

    label: str
    run_id: str
    incomplete: bool
    #: (field, value) pairs in display order: target, versions, date, seed...
    fields: list[tuple[str, str]]
    #: The scenario as run, as YAML-like text.
    scenario_text: str
    #: Notes from loading (upgraded schema, unreadable lines, incomplete).
    notes: list[str]
    #: SLA verdicts per case: case, criterion, measured, verdict.
    sla: pd.DataFrame


@dataclass
class Report:
    """A whole report: provenance per run, then one section per finding."""

    title: str
    provenance: list[Provenance]
    sections: list[Section]

    @property
    def plots(self) -> list[Plot]:
        return [plot for section in self.sections for plot in section.plots]

    @property
    def tables(self) -> list[Table]:
        return [table for section in self.sections for table in section.tables]
