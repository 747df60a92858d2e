"""`osbench validate SCENARIO...`: check scenario files without running anything."""

from __future__ import annotations

import argparse
import sys

from osbench import api
from osbench.errors import ScenarioError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("validate", help="check scenario files",
                              description="Check scenario files; exit 2 if any is invalid.")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.scenarios:
        try:
            valid = api.validate(path)
        except ScenarioError as exc:
            print(f"osbench: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        n = valid.cases
        print(f"{path}: ok ({valid.scenario.kind}, {n} case{'s' if n != 1 else ''})")
    return 2 if failed else 0
