"""Reports built from `results/` alone: tables, figures, Markdown and a
self-contained HTML file.

`build_report(runs)` returns a `Report` of DataFrames and matplotlib Figures
(pure); `markdown.render` and `html.render` turn it into text; `writer.write` is
the one place that writes files.
"""

from osbench.report.build import Extras, build_report
from osbench.report.model import Plot, Provenance, Report, Section, Table
from osbench.report.style import FigureOptions

__all__ = ["Extras", "FigureOptions", "Plot", "Provenance", "Report", "Section",
           "Table", "build_report"]
