"""Stories: a report's opening chapters that retell a known sequence of findings,
each with what was seen in the field, what these runs measured, and the figure that
shows it. `osbench report --story field-notes` (the demo) retells the field notes.

A chapter picks its runs from the report's runs by scenario name or kind, so the
story is built from results alone like the rest of the report. The sentence under
"measured here" is computed from those runs; a chapter whose runs are missing
says which scenario to run instead of showing an empty figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from osbench import kinds
from osbench.report.model import Item, Section
from osbench.report.series import kind_of
from osbench.report.style import FigureOptions
from osbench.results import Run

Select = Callable[[Run], bool]
Tell = Callable[[Sequence[Run], FigureOptions], tuple[str, list[Item]]]


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    #: What the field notes report (shown as quoted context).
    field: str
    #: Which runs show it, and where to get them when none does.
    select: Select
    missing: str
    #: The "measured here" sentence and the figures/tables, from the selected runs.
    tell: Tell


def named(*names: str) -> Select:
    return lambda run: str(run.manifest.get("scenario", {}).get("name")) in names


def of_kind(kind: str) -> Select:
    return lambda run: kind_of(run) == kind


def renamed(item: Item, name: str) -> Item:
    """The same figure or table under a chapter's own file name (no two files clash)."""
    return dataclasses.replace(item, name=name)


def stories() -> dict[str, tuple[Chapter, ...]]:
    """Every story any kind tells a chapter of: its chapters from all kinds, in order."""
    out: dict[str, list[Chapter]] = {}
    for spec in kinds.specs():
        for name, chapters in spec.story_chapters().items():
            out.setdefault(name, []).extend(chapters)
    return {name: tuple(sorted(chapters, key=lambda c: c.number))
            for name, chapters in sorted(out.items())}


def sections(story: Sequence[Chapter], runs: Sequence[Run],
             options: FigureOptions) -> list[Section]:
    """One section per chapter, in order; a chapter without runs says how to get them."""
    out = []
    for chapter in story:
        chosen = [run for run in runs if chapter.select(run)]
        title = f"Finding {chapter.number}: {chapter.title}"
        notes = [f"Field notes: {chapter.field}"]
        if not chosen:
            notes.append(f"Not in this report: run {chapter.missing} and report it with "
                         "the others.")
            out.append(Section(title, notes=notes))
            continue
        measured, items = chapter.tell(chosen, options)
        notes.append(f"Measured here: {measured}")
        out.append(Section(title, items, notes=notes))
    return out
