"""`osbench report RUN...`: render runs into reports/NAME (HTML, Markdown, figures)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from osbench import api
from osbench.compare import add_test_options, check_alpha, parse_thresholds
from osbench.errors import UserError
from osbench.report import FigureOptions
from osbench.report.story import stories
from osbench.report.style import STYLES
from osbench.report.writer import DEFAULT_FORMATS, parse_formats


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report", help="render runs as an HTML/Markdown report with figures",
        description="Render one or more runs (side by side in the same figures) from their "
        "results alone. Prints the path of the report.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory under results/")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<first run id>)")
    p.add_argument("--format", default=",".join(DEFAULT_FORMATS), metavar="LIST",
                   help="comma-separated: html,md,png,svg (default %(default)s)")
    p.add_argument("--style", choices=sorted(STYLES), default="blog",
                   help="figure style (default %(default)s)")
    p.add_argument("--dpi", type=int, default=150, help="PNG resolution (default 150)")
    p.add_argument("--figsize", default="7x4.2", metavar="WxH",
                   help="figure size in inches (default %(default)s)")
    p.add_argument("--title", help="report title")
    p.add_argument("--story", choices=sorted(stories()),
                   help="open with a story's chapters, each finding with what these runs "
                   "measured and its figure (field-notes: the demo's seed replay, rootwrap "
                   "probe and queue sweep)")
    p.add_argument("--compare", action="store_true",
                   help="add a comparison of every later run against the first (baseline), "
                   "as `osbench compare` judges it")
    add_test_options(p)
    p.set_defaults(func=run)


def _figsize(text: str) -> tuple[float, float]:
    match = re.fullmatch(r"\s*([0-9.]+)\s*[xX×]\s*([0-9.]+)\s*", text)
    try:
        if not match:
            raise ValueError
        width, height = float(match[1]), float(match[2])
        if not (1 <= width <= 40 and 1 <= height <= 40):
            raise ValueError
    except ValueError:
        raise UserError(f"--figsize {text!r} is not WxH in inches between 1 and 40",
                        hint="e.g. --figsize 7x4.2") from None
    return width, height


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.format)
    width, height = _figsize(args.figsize)
    if not 30 <= args.dpi <= 1200:
        raise UserError(f"--dpi {args.dpi} must be between 30 and 1200")
    check_alpha(args.alpha)
    runs = api.load_runs(args.runs)
    options = FigureOptions(style=args.style, width_in=width, height_in=height, dpi=args.dpi)
    report = api.build_report(runs, options, title=args.title, story=args.story,
                              compare=args.compare, thresholds=parse_thresholds(args.threshold),
                              alpha=args.alpha)
    out = Path(args.out) if args.out else Path("reports") / runs[0].run_id
    written = api.write_report(report, out, formats, dpi=args.dpi)
    for run_ in runs:
        if run_.incomplete:
            print(f"note: {run_.run_id} is incomplete (the run did not finish)")
    for document in written.documents or [out]:
        print(document)
    return 0
