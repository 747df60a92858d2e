"""The report as Markdown: provenance, SLA verdicts, tables, and figures linked
as image files (paths given by the writer)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from osbench.report.cells import format_cell, is_numeric
from osbench.report.model import Plot, Provenance, Report, Table


def table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""
    if frame.columns.empty:
        return "_(no columns)_\n"
    def escape(text: str) -> str:
        return text.replace("|", "\\|")
    header = "| " + " | ".join(escape(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if is_numeric(frame[c]) else "---"
                          for c in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(escape(format_cell(v)) for v in row) + " |")
    if frame.empty:
        lines.append("| " + " | ".join(["(none)", *[""] * (len(frame.columns) - 1)]) + " |")
    return "\n".join(lines) + "\n"


def _provenance(p: Provenance) -> str:
    out = [f"### {p.label}\n"]
    if p.incomplete:
        out.append("> **INCOMPLETE**: this run did not finish (killed or still running); "
                   "its figures show what was recorded.\n")
    out.append(table(pd.DataFrame(p.fields, columns=["field", "value"])))
    out.extend(f"- note: {note}" for note in p.notes)
    if p.notes:
        out.append("")
    out.append("SLA verdicts:\n")
    out.append(table(p.sla))
    out.append("<details><summary>Scenario as run</summary>\n\n```yaml\n"
               + p.scenario_text.rstrip() + "\n```\n\n</details>\n")
    return "\n".join(out)


def _item(item: Table | Plot, images: Mapping[str, str], data: Mapping[str, str]) -> str:
    if isinstance(item, Table):
        text = f"#### {item.title}\n\n" + table(item.frame)
        if item.note:
            text += f"\n{item.note}\n"
        return text
    text = f"#### {item.title}\n\n"
    if item.name in images:
        text += f"![{item.title}]({images[item.name]})\n\n"
    if item.caption:
        text += f"_{item.caption}_"
    if item.name in data:
        text += f" Data: [{data[item.name]}]({data[item.name]})"
    return text.rstrip() + "\n"


def render(report: Report, images: Mapping[str, str] | None = None,
           data: Mapping[str, str] | None = None) -> str:
    """The whole report; `images`/`data` map a plot's name to its relative file path."""
    images, data = images or {}, data or {}
    out = [f"# {report.title}\n"]
    incomplete = [p.label for p in report.provenance if p.incomplete]
    if incomplete:
        out.append("> **INCOMPLETE RUN**: " + ", ".join(incomplete) + " did not finish.\n")
    out.append("## Provenance\n")
    out.extend(_provenance(p) for p in report.provenance)
    for section in report.sections:
        out.append(f"## {section.title}\n")
        out.extend(note + "\n" for note in section.notes)
        out.extend(_item(item, images, data) for item in section.items)
    return "\n".join(out)
