"""`osbench compare BASE CANDIDATE`: what changed between two runs, and is it real."""

from __future__ import annotations

import argparse

from osbench import api
from osbench.compare import (
    FAILING,
    add_test_options,
    check_alpha,
    parse_thresholds,
    to_html,
    to_markdown,
    to_text,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "compare", help="compare two runs with significance",
        description="Baseline vs candidate for each case and metric. 'worse'/'better' need "
        "the change beyond the threshold AND a significant test (Mann-Whitney U for "
        "samples, Fisher's exact test for success rates). Exit 1 if anything is worse.")
    p.add_argument("base", metavar="BASE", help="baseline run directory")
    p.add_argument("candidate", metavar="CANDIDATE", help="candidate run directory")
    add_test_options(p)
    p.add_argument("--format", choices=("text", "md", "html"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_alpha(args.alpha)
    base, cand = api.load_run(args.base), api.load_run(args.candidate)
    table = api.compare_runs(base, cand, thresholds=parse_thresholds(args.threshold),
                             alpha=args.alpha)
    render = {"text": to_text, "md": to_markdown, "html": to_html}[args.format]
    for run_ in (base, cand):
        if run_.incomplete:
            print(f"note: {run_.run_id} is incomplete (the run did not finish)")
    print(render(table), end="")
    return 1 if table["verdict"].isin(FAILING).any() else 0
