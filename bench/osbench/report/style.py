"""The report's look: one matplotlib style for every figure, and the figure options.

"blog" is for pasting into posts and slides: 11-13 pt text at the default 7x4.2 in,
light grid, no top/right spines, and the Okabe-Ito palette (Okabe & Ito 2008,
distinguishable with the common colour-vision deficiencies), with yellow last:
it is the one colour that is faint as a thin line on white. "plain" is matplotlib's default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from cycler import cycler

#: Okabe-Ito, in the order series are given colours.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
             "#000000", "#F0E442")

#: Line styles cycled with the colours, so series stay apart in greyscale print.
LINESTYLES = ("-", "--", "-.", ":")

STYLES: dict[str, dict[str, Any]] = {
    "blog": {
        "font.size": 11,
        "axes.titlesize": 13,
        "axes.titleweight": "bold",
        "axes.labelsize": 11,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#d0d0d0",
        "grid.linewidth": 0.6,
        "lines.linewidth": 2.0,
        "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        # Text as paths: an SVG renders the same without the fonts installed.
        "svg.fonttype": "path",
    },
    "plain": {},
}


@dataclass(frozen=True)
class FigureOptions:
    """Figure size (inches) and raster resolution, shared by every figure."""

    style: str = "blog"
    width_in: float = 7.0
    height_in: float = 4.2
    dpi: int = 150

    @property
    def figsize(self) -> tuple[float, float]:
        return (self.width_in, self.height_in)

    def colour(self, index: int) -> str:
        return OKABE_ITO[index % len(OKABE_ITO)]

    def linestyle(self, index: int) -> str:
        return LINESTYLES[(index // len(OKABE_ITO)) % len(LINESTYLES)]


@contextmanager
def applied(options: FigureOptions) -> Iterator[None]:
    """Figures created inside take the style (matplotlib reads rcParams at creation)."""
    rc: Any = STYLES[options.style]  # the stubs type keys as a Literal of every rcParam
    with matplotlib.rc_context(rc):
        yield
