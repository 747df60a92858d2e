"""`osbench run SCENARIO...`: run scenarios, journal to results/, judge SLAs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from osbench.cli import EXIT_CLEANUP_INCOMPLETE
from osbench.entry import EXIT_INTERRUPTED
from osbench.errors import UserError
from osbench.runner import Runner, RunOptions, RunResult, plan
from osbench.scenario import Scenario, TargetSpec, load_scenario

T = TypeVar("T")

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
    p.add_argument("--phone-home-url", metavar="URL",
                   help="base URL guests phone home to, e.g. http://203.0.113.5:8000 "
                   "(boot scenarios; default: this host's address toward the cloud's API)")
    p.add_argument("--allow-large", action="store_true",
                   help="confirm counts above a scenario's max_instances")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and every write it would make; do nothing")
    p.set_defaults(func=run)


def with_phone_home_url(scenario: Scenario, url: str) -> Scenario:
    if not hasattr(scenario.params, "phone_home_url"):
        return scenario
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--phone-home-url {url!r} is not an http(s) URL",
                        hint="e.g. --phone-home-url http://203.0.113.5:8000")
    params = dataclasses.replace(scenario.params, phone_home_url=url.rstrip("/"))
    return dataclasses.replace(scenario, params=params)


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
    scenarios = [load_scenario(path) for path in args.scenarios]
    if args.phone_home_url:
        scenarios = [with_phone_home_url(s, args.phone_home_url) for s in scenarios]
    options = RunOptions(
        results_dir=args.results,
        seed=args.seed,
        target=TargetSpec(cloud=args.cloud, sim_profile=args.sim_profile,
                          time_scale=args.time_scale, hosts=args.hosts),
        command=tuple(sys.argv),
        allow_large=args.allow_large,
    )
    if args.dry_run:
        for scenario in scenarios:
            print(plan(scenario, options))
        return 0
    worst = 0
    for scenario in scenarios:
        result = run_until_done(Runner(scenario, options, on_abandon=_exit_abandoned).run())
        print(f"{scenario.name}: {result.status}; results in {result.path}")
        for case in result.cases:
            for verdict in case.verdicts:
                print(f"  {case.case_id}: {verdict.describe()}")
            if case.error:
                print(f"  {case.case_id}: {case.error}")
        if result.cleanup_problems:
            _say_leftovers(result)
            return EXIT_CLEANUP_INCOMPLETE
        if result.status == "interrupted":
            return EXIT_INTERRUPTED
        if result.status != "completed":
            worst = 1
    return worst


def run_until_done(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, except that it does not wait for worker threads a cancelled
    call left behind: an SDK call stuck on a silent API ends at its api_timeout,
    and `osbench.cli.entry` exits without it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # shuts the default executor down without waiting


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
