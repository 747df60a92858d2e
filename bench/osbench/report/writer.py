"""The one place a report touches disk: `write(report, out_dir, formats)`.

Layout under `out_dir`: `index.html` (self-contained), `report.md`, and
`figures/<name>.{png,svg,csv}` (each figure with its data beside it),
`tables/<name>.csv`. Existing files of the same names are replaced; nothing else
in the folder is touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from osbench.errors import UserError
from osbench.report import figures, html, markdown
from osbench.report.model import Report

FORMATS = ("html", "md", "png", "svg")
DEFAULT_FORMATS = ("html", "md", "png")


@dataclass
class Written:
    """What `write` produced: the documents (what to show the user) and every file."""

    documents: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def parse_formats(text: str) -> tuple[str, ...]:
    """"html,md,png" -> ("html", "md", "png"); unknown names are a user error."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"--format {text!r}: unknown format(s) {', '.join(unknown) or '(none)'}",
                        hint=f"choose from {','.join(FORMATS)}")
    return formats


def _write(path: Path, data: bytes | str, written: Written) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    written.files.append(path)
    return path


def write(report: Report, out_dir: Path, formats: Iterable[str] = DEFAULT_FORMATS,
          dpi: int | None = None) -> Written:
    """Render `report` into `out_dir` in `formats`; returns the paths written."""
    formats = tuple(formats)
    written = Written()
    image_formats = [f for f in ("png", "svg") if f in formats]
    if "md" in formats and not image_formats:
        image_formats = ["png"]  # the Markdown needs image files to link to
    images: dict[str, str] = {}
    data: dict[str, str] = {}
    for plot in report.plots:
        for fmt in image_formats:
            content = figures.to_png(plot.figure, dpi) if fmt == "png" else figures.to_svg(
                plot.figure)
            _write(out_dir / "figures" / f"{plot.name}.{fmt}", content, written)
        if image_formats:
            # Markdown links the SVG when there is one: it stays sharp when zoomed.
            chosen = "svg" if "svg" in image_formats else "png"
            images[plot.name] = f"figures/{plot.name}.{chosen}"
        data[plot.name] = f"figures/{plot.name}.csv"
        _write(out_dir / data[plot.name], plot.data.to_csv(index=False), written)
    for table in report.tables:
        _write(out_dir / "tables" / f"{table.name}.csv", table.frame.to_csv(index=False),
               written)
    if "html" in formats:
        written.documents.append(
            _write(out_dir / "index.html", html.render(report, dpi), written))
    if "md" in formats:
        written.documents.append(
            _write(out_dir / "report.md", markdown.render(report, images, data), written))
    return written
