"""The report as ONE self-contained HTML file: figures inline as base64 PNG, the
style sheet inline, no scripts, no external fonts, images or links; readable on a
narrow screen (viewport meta, max-width column, images scale, wide tables scroll
inside their own box)."""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

from osbench.report import figures
from osbench.report.cells import format_cell, is_numeric
from osbench.report.model import Plot, Provenance, Report, Table

CSS = """
*{box-sizing:border-box}
body{margin:0 auto;padding:1rem;max-width:64rem;font:16px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a;background:#fff}
h1{font-size:1.6rem;line-height:1.25}h2{font-size:1.3rem;margin-top:2.2rem;
border-bottom:1px solid #ddd}h3{font-size:1.1rem}h4{font-size:1rem;margin-bottom:.4rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5rem 0 1rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9rem;color:#444}
.provenance{border:1px solid #ccc;border-radius:4px;padding:.5rem 1rem;margin:1rem 0}
.provenance td:first-child{white-space:nowrap;font-weight:600}
.incomplete{background:#fde8e8;border:2px solid #b00020;color:#7a0016;padding:.6rem 1rem;
font-weight:700;border-radius:4px}
.pass{color:#006400;font-weight:600}.fail{color:#b00020;font-weight:700}
pre{overflow-x:auto;background:#f6f6f6;padding:.5rem;font-size:.85rem}
"""


#: Cells coloured by what they say: SLA verdicts and comparison verdicts.
VERDICT_CLASSES = {"PASS": "pass", "FAIL": "fail", "better": "pass", "fixed": "pass",
                   "worse": "fail", "new failure": "fail"}


def table(frame: pd.DataFrame) -> str:
    """An HTML table in a horizontally scrolling box; verdict cells coloured."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    numeric = [is_numeric(frame[c]) for c in frame.columns]
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value, num in zip(row, numeric, strict=True):
            text = format_cell(value)
            cls = "num" if num else VERDICT_CLASSES.get(text, "")
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if frame.empty:
        rows.append(f'<tr><td colspan="{max(len(frame.columns), 1)}">(none)</td></tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _provenance(p: Provenance, expanded: bool) -> str:
    """One run's block; with several runs the details fold under a one-line summary
    (target, status, SLA) so the findings are not seven screens down on a phone."""
    fields = dict(p.fields)
    failed = int((p.sla["verdict"] == "FAIL").sum()) if not p.sla.empty else 0
    sla = (f"SLA {failed} FAIL" if failed else
           f"SLA all {len(p.sla)} PASS" if len(p.sla) else "no SLA rows")
    summary = " · ".join([fields.get("target", ""), fields.get("status", ""), sla])
    out = [f'<section class="provenance"><h3>{escape(p.label)}</h3>']
    if p.incomplete:
        out.append('<p class="incomplete">INCOMPLETE: this run did not finish (killed or '
                   "still running); its figures show what was recorded.</p>")
    out.append(f"<details{' open' if expanded else ''}><summary>{escape(summary)}</summary>")
    out.append(table(pd.DataFrame(p.fields, columns=["field", "value"])))
    if p.notes:
        out.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in p.notes) + "</ul>")
    out.append("<h4>SLA verdicts</h4>" + table(p.sla))
    out.append("<details><summary>Scenario as run</summary><pre>"
               + escape(p.scenario_text) + "</pre></details></details></section>")
    return "".join(out)


def _item(item: Table | Plot, dpi: int | None) -> str:
    if isinstance(item, Table):
        note = f"<p>{escape(item.note)}</p>" if item.note else ""
        return f"<h4>{escape(item.title)}</h4>{table(item.frame)}{note}"
    uri = png_data_uri(figures.to_png(item.figure, dpi))
    caption = f"<figcaption>{escape(item.caption)}</figcaption>" if item.caption else ""
    return (f'<figure id="{escape(item.name)}"><h4>{escape(item.title)}</h4>'
            f'<img src="{uri}" alt="{escape(item.title)}">{caption}</figure>')


def render(report: Report, dpi: int | None = None) -> str:
    """The whole report as one HTML document."""
    body = [f"<h1>{escape(report.title)}</h1>"]
    incomplete = [p.label for p in report.provenance if p.incomplete]
    if incomplete:
        body.append('<p class="incomplete">INCOMPLETE RUN: '
                    + escape(", ".join(incomplete)) + " did not finish.</p>")
    body.append("<h2>Provenance</h2>")
    expanded = len(report.provenance) == 1
    body.extend(_provenance(p, expanded) for p in report.provenance)
    for section in report.sections:
        body.append(f"<h2>{escape(section.title)}</h2>")
        body.extend(f"<p>{escape(note)}</p>" for note in section.notes)
        body.extend(_item(item, dpi) for item in section.items)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
