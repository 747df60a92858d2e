"""Work measured in a fresh Python process: a simulated boot, or a report.

    python -m tests.perf.child boot SCENARIO.yaml RESULTS_DIR [--seed N] [--allow-large]
    python -m tests.perf.child report OUT_DIR RUN_DIR...

`boot` runs the scenario as `osbench run` would with no --cloud (the embedded
simulator in the same process); `report` builds and writes the report of the
runs as `osbench report RUN... --format html,md,png` does. Each prints one JSON
line of figures.

Why a process of its own: ru_maxrss is a process's peak over its whole life,
so measured inside pytest it would also hold whatever an earlier benchmark
(1000-connection bursts, other boots) left behind. Here the peak belongs to
this work alone, and `rss_before_mib` (after imports, before the work) lets
the test subtract the interpreter and libraries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_file


def rss_mib() -> float:
    """Resident set size now (Linux /proc), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss is KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`work()`'s own figures plus wall, CPU (every thread) and memory."""
    rss_before = rss_mib()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    figures = work()
    figures.update({
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    })
    return figures


def boot(args: argparse.Namespace) -> dict[str, Any]:
    scenario = parse_scenario(load_file(args.scenario))
    options = RunOptions(results_dir=args.results_dir, seed=args.seed,
                         allow_large=args.allow_large)

    def work() -> dict[str, Any]:
        result = asyncio.run(Runner(scenario, options).run())
        return {"status": result.status, "path": str(result.path),
                "errors": [c.error for c in result.cases if c.error]}

    return measured(work)


def report(args: argparse.Namespace) -> dict[str, Any]:
    # Imported here: matplotlib's ~80 MiB must not count in a boot's baseline.
    from osbench import results
    from osbench.report import FigureOptions, build_report
    from osbench.report.writer import DEFAULT_FORMATS, write

    def work() -> dict[str, Any]:
        runs = [results.load(path) for path in args.runs]
        built = build_report(runs, FigureOptions(), title=f"perf: {len(runs)} runs")
        written = write(built, args.out, DEFAULT_FORMATS)
        return {"runs": len(runs), "plots": len(built.plots), "tables": len(built.tables),
                "files": len(written.files),
                "bytes": sum(p.stat().st_size for p in written.files),
                "documents": [str(p) for p in written.documents]}

    return measured(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(required=True)
    p = commands.add_parser("boot")
    p.add_argument("scenario", type=Path)
    p.add_argument("results_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-large", action="store_true")
    p.set_defaults(func=boot)
    p = commands.add_parser("report")
    p.add_argument("out", type=Path)
    p.add_argument("runs", type=Path, nargs="+")
    p.set_defaults(func=report)
    args = parser.parse_args()
    print(json.dumps(args.func(args)))


if __name__ == "__main__":
    main()
