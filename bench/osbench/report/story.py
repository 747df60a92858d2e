"""Stories: a report's opening chapters that retell a known sequence of findings,
each with what was seen in the field, what these runs measured, and the figure that
shows it. `osbench report --story field-notes` (the demo) retells the field notes.

A chapter picks its runs from the report's runs by scenario name or kind, so the
story is built from results alone like the rest of the report. Only the "Field
notes:" paragraph is the field's words; the chapter's title, the "Measured here"
sentence and the judgement are computed from the chosen runs. The judgement (a
pure function of the runs' tables, one per chapter) sets the measurement against
the shape of the field's finding: what differs is said under "Differs from the
field notes:" and in the title, which then claims nothing the runs did not show.
A chapter whose runs are missing is titled by its topic and says which scenario
to run instead of showing an empty figure.
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


@dataclass(frozen=True)
class Judgement:
    """The runs set against the shape of the field's finding, one clause each:
    what holds, what contradicts it, and what these runs cannot be compared on."""

    agrees: tuple[str, ...] = ()
    differs: tuple[str, ...] = ()
    not_compared: tuple[str, ...] = ()

    def __add__(self, other: Judgement) -> Judgement:
        return Judgement(self.agrees + other.agrees, self.differs + other.differs,
                         self.not_compared + other.not_compared)

    def notes(self) -> list[str]:
        """The judgement's paragraphs: a difference first, as it is the news."""
        out = []
        for lead, clauses in (("Differs from the field notes", self.differs),
                              ("Agrees with the field notes", self.agrees),
                              ("Not compared with the field notes", self.not_compared)):
            if clauses:
                out.append(f"{lead}: " + "; ".join(clauses) + ".")
        return out


@dataclass(frozen=True)
class Told:
    """A chapter as its runs tell it: every word here is computed from them."""

    #: The title after "Finding N: " (or a question's topic), stating what was measured.
    title: str
    #: The "Measured here" sentence.
    measured: str
    judgement: Judgement
    items: list[Item]


Select = Callable[[Run], bool]
Tell = Callable[[Sequence[Run], FigureOptions], Told]

#: Appended to a chapter's title when its runs contradict the field's finding.
DIFFERS_MARK = " (differs from the field notes)"


@dataclass(frozen=True)
class Chapter:
    number: int
    #: What the chapter is about, claiming no result: the title when no run shows it.
    topic: str
    #: What the field notes report, their figures as theirs (quoted under "Field notes:").
    field: str
    #: Which runs show it, and where to get them when none does.
    select: Select
    missing: str
    #: The title, "measured here" sentence, judgement and figures from the selected runs.
    tell: Tell
    #: "Finding" retells what the field found; "Question" asks what the field did not
    #: measure, and keeps the question in its title before what the runs answer.
    heading: str = "Finding"

    def title(self, told: str | None = None) -> str:
        if told is None:
            return f"{self.heading} {self.number}: {self.topic}"
        if self.heading == "Finding":
            return f"Finding {self.number}: {told}"
        return f"{self.heading} {self.number}: {self.topic} {told[:1].upper()}{told[1:]}"


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
        notes = [f"Field notes: {chapter.field}"]
        if not chosen:
            notes.append(f"Not in this report: run {chapter.missing} and report it with "
                         "the others.")
            out.append(Section(chapter.title(), notes=notes))
            continue
        told = chapter.tell(chosen, options)
        mark = DIFFERS_MARK if told.judgement.differs else ""
        notes.append(f"Measured here: {told.measured}")
        notes.extend(told.judgement.notes())
        out.append(Section(chapter.title(told.title) + mark, told.items,
                           notes=notes))
    return out


def counted(values: Sequence[object]) -> str:
    """'8', '8 and 5', '8, 5 and 6': values in a sentence."""
    words = [str(v) for v in values]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
