"""`osbench compare BASE CANDIDATE`: what changed between two runs, and is it real."""

from __future__ import annotations

import argparse

from bench import results
from bench.compare import FAILING, compare, to_html, to_markdown, to_text
from bench.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "compare", help="compare two runs with significance",
        description="Baseline vs candidate for each case and metric. 'worse'/'better' need "
        "the change beyond the threshold AND a significant test (Mann-Whitney U for "
        "samples, Fisher's exact test for success rates). Exit 1 if anything is worse.")
    p.add_argument("base", metavar="BASE", help="baseline run directory")
    p.add_argument("candidate", metavar="CANDIDATE", help="candidate run directory")
    p.add_argument("--threshold", action="append", default=[], metavar="METRIC:PCT",
                   help="change below which a metric is noise (percent; percentage points "
                   "for success rates); repeatable")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    p.add_argument("--format", choices=("text", "md", "html"), default="text")
    p.set_defaults(func=run)


def _thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        metric, sep, pct = item.rpartition(":")
        try:
            if not sep or not metric:
                raise ValueError
            out[metric] = float(pct)
        except ValueError:
            raise UserError(f"--threshold {item!r} is not METRIC:PCT",
                            hint="e.g. --threshold time_to_phone_home_s:10") from None
    return out


def run(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha {args.alpha} must be between 0 and 1")
    base, cand = results.load(args.base), results.load(args.candidate)
    table = compare(base, cand, thresholds=_thresholds(args.threshold), alpha=args.alpha)
    render = {"text": to_text, "md": to_markdown, "html": to_html}[args.format]
    for run_ in (base, cand):
        if run_.incomplete:
            print(f"note: {run_.run_id} is incomplete (the run did not finish)")
    print(render(table), end="")
    return 1 if table["verdict"].isin(FAILING).any() else 0
