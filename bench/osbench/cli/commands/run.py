"""`osbench run SCENARIO...`: run scenarios, journal to results/, judge SLAs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from osbench import api, kinds
from osbench.cli.entry import EXIT_INTERRUPTED
from osbench.cli.program import EXIT_CLEANUP_INCOMPLETE
from osbench.progress import Progress
from osbench.runner import RunOptions, RunResult
from osbench.scenario import TargetSpec

#: Libraries whose warnings are shown only with --verbose.
QUIET_LOGGERS = ("keystoneauth", "stevedore")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run", help="run scenarios",
        description="Run scenarios against a target. With no --cloud (and no OS_CLOUD), "
        "cloud scenarios run on the embedded simulated cloud; with no --hosts, host "
        "scenarios run on the local lab.")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files")
    p.add_argument("--cloud", help="clouds.yaml entry to run against (default: OS_CLOUD, "
                   "else the simulated cloud)")
    p.add_argument("--hosts", help="host inventory YAML (default: the local lab)")
    p.add_argument("--sim-profile", help="simulated cloud profile (see `osbench sim profiles`)")
    p.add_argument("--time-scale", type=float, help="simulated cloud speed-up factor")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="where run directories go (default: results/)")
    p.add_argument("--seed", type=int, default=0, help="seed for everything random (default 0)")
    for option in kinds.options():  # e.g. boot's --phone-home-url and --allow-large
        if option.metavar:
            p.add_argument(option.flag, dest=f"kind_{option.name}", metavar=option.metavar,
                           help=option.help)
        else:
            p.add_argument(option.flag, dest=f"kind_{option.name}", action="store_true",
                           help=option.help)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and every write it would make; do nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # Their warnings restate, less clearly, the one-line error osbench gives
        # ("Failed to discover available identity versions", "Could not load X").
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    # Validate every file before running any, so a typo in the third file
    # does not surface after an hour of the first two.
    scenarios = [api.load_scenario(path) for path in args.scenarios]
    options = RunOptions(
        results_dir=args.results,
        seed=args.seed,
        target=TargetSpec(cloud=args.cloud, sim_profile=args.sim_profile,
                          time_scale=args.time_scale, hosts=args.hosts),
        command=tuple(sys.argv),
        kind_options=api.parse_kind_options(
            {option.name: getattr(args, f"kind_{option.name}") for option in kinds.options()}),
        handle_signals=True,
    )
    if args.dry_run:
        for scenario in scenarios:
            print(api.plan(scenario, options))
        return 0
    worst = 0
    for scenario in scenarios:
        result = api.run(scenario, options, progress=Progress(), on_abandon=_exit_abandoned)
        print(f"{scenario.name}: {result.status}; results in {result.path}")
        for case in result.cases:
            for verdict in case.verdicts:
                print(f"  {case.case_id}: {verdict.describe()}")
            if case.error:
                print(f"  {case.case_id}: {case.error}")
        for search in result.searches:
            print("  " + describe_search(search))
        if result.cleanup_problems:
            _say_leftovers(result)
            return EXIT_CLEANUP_INCOMPLETE
        if result.status == "interrupted":
            return EXIT_INTERRUPTED
        if result.status != "completed":
            worst = 1
    return worst


def describe_search(s: dict[str, Any]) -> str:
    """'search default: count capacity 90, first fail 100 (8 points, 8 cases; done)'."""
    capacity = ("none at or above start" if s["capacity"] is None
                else f"{s['capacity']:g}")
    first_fail = "none up to max" if s["first_fail"] is None else f"{s['first_fail']:g}"
    need = (f"; require {s['require']:g}" if s.get("require") is not None else "")
    error = f": {s['error']}" if s.get("error") else ""
    return (f"search {s['search']}: {s['param']} capacity {capacity}, first fail {first_fail} "
            f"({s['points']} points, {s['cases']} cases; {s['status']}{error}){need}")


def _say_leftovers(result: RunResult) -> None:
    print(f"osbench: CLEANUP INCOMPLETE: {'; '.join(result.cleanup_problems)}\n"
          f"osbench: what this run created may still be on the target; run "
          f"`osbench cleanup {result.path}` (it deletes only what carries this run's id)",
          file=sys.stderr)


def _exit_abandoned(result: RunResult) -> None:
    """A second signal: say what may be left and end the process now. An SDK call
    stuck in a thread on a silent API would hold a normal exit."""
    print(f"{result.run_id}: abandoned; results in {result.path}", flush=True)
    if result.cleanup_problems:
        _say_leftovers(result)
    sys.stderr.flush()
    os._exit(EXIT_CLEANUP_INCOMPLETE if result.cleanup_problems else EXIT_INTERRUPTED)
