"""Figure plumbing shared by the kinds' figures: creation in the report style,
"no data" panels, legends, and export to PNG/SVG bytes (in memory; the writer
puts them on disk).

Figures are `matplotlib.figure.Figure` objects drawn on the Agg canvas, never
pyplot: no display is needed and no global figure list grows while a report is
built.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from osbench.report.style import FigureOptions, applied


def new_figure(options: FigureOptions, ncols: int = 1, *,
               height_scale: float = 1.0, **subplot_kw: Any) -> tuple[Figure, list[Axes]]:
    """A figure of `ncols` side-by-side axes in the report style."""
    with applied(options):
        figure = Figure(figsize=(options.width_in, options.height_in * height_scale),
                        dpi=options.dpi, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, ncols, squeeze=False, **subplot_kw)[0]
    return figure, list(axes)


def no_data(ax: Axes, message: str = "no data") -> None:
    """Say so in an empty panel rather than leaving blank axes."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def legend_below(figure: Figure, axes: list[Axes]) -> None:
    """One legend under all panels (only when something is labelled: matplotlib
    warns about an empty legend, and tests turn warnings into errors)."""
    handles, labels, seen = [], [], set()
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in seen:
                seen.add(label)
                handles.append(handle)
                labels.append(label)
    if handles:
        # Two columns fit labels of up to ~35 characters at the default 7 in width.
        ncols = 1 if max(len(label) for label in labels) > 35 else min(len(labels), 2)
        legend = figure.legend(handles, labels, loc="outside lower center", ncols=ncols)
        # Grow the figure by the legend's rows so the panels keep their height.
        rows = -(-len(labels) // ncols)
        line_in = 1.45 * float(legend.get_texts()[0].get_fontsize()) / 72
        figure.set_figheight(figure.get_figheight() + rows * line_in)


def to_png(figure: Figure, dpi: int | None = None) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi or figure.dpi)
    return buffer.getvalue()


def to_svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No creation date: the same data gives byte-identical files.
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def title_of(figure: Figure) -> str:
    """The figure's suptitle (what tests and alt texts use)."""
    text = figure.get_suptitle()
    return str(text)
