"""Work measured in a fresh Python process: a boot, or a report.

    python -m tests.perf.child boot SCENARIO.yaml RESULTS_DIR [--seed N] [--allow-large]
                                    [--cloud NAME]
    python -m tests.perf.child report OUT_DIR RUN_DIR...

`boot` runs the scenario as `osbench run` would: with `--cloud NAME` against
that clouds.yaml entry (the benchmarks point it at `osbench sim serve`, a
process of its own, so this process is the harness alone), without it on the
embedded simulator in this same process. `report` builds and writes the report
of the runs as `osbench report RUN... --format html,md,png` does. Each prints
one JSON line of figures.

Why a process of its own: ru_maxrss is a process's peak over its whole life,
so measured inside pytest it would also hold whatever an earlier benchmark
(1000-connection bursts, other boots) left behind. Here the peak belongs to
this work alone, and `rss_before_mib` (after imports, before the work) lets
the test subtract the interpreter and libraries.

A boot also reports how long its event loop waited: `loop_waiting_s` is the
time the loop spent blocked in its selector (nothing ready: waiting on the
cloud's replies, the poll interval, the guests), so `wall_s - loop_waiting_s`
is the time the loop was running the harness's own code. The openstacksdk
calls run on worker threads; their CPU is in `cpu_s` (every thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import selectors
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_file


def rss_mib() -> float:
    """Resident set size now (Linux /proc), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss is KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`work()`'s own figures plus wall, CPU (every thread: user + system) and memory."""
    rss_before = rss_mib()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    figures = work()
    wall = time.perf_counter() - wall0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    user, system = usage.ru_utime - usage0.ru_utime, usage.ru_stime - usage0.ru_stime
    figures.update({
        "wall_s": wall,
        "cpu_s": user + system,
        "cpu_user_s": user,
        "cpu_system_s": system,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    })
    return figures


class TimedSelector(selectors.DefaultSelector):
    """The platform's selector, adding up the time `select()` blocks."""

    waited_s = 0.0

    def select(self, timeout: float | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            return super().select(timeout)
        finally:
            self.waited_s += time.perf_counter() - t0


def boot(args: argparse.Namespace) -> dict[str, Any]:
    scenario = parse_scenario(load_file(args.scenario))
    options = RunOptions(results_dir=args.results_dir, seed=args.seed,
                         target=TargetSpec(cloud=args.cloud),
                         kind_options={"allow_large": True} if args.allow_large else {})
    selector = TimedSelector()

    def work() -> dict[str, Any]:
        with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as loop:
            result = loop.run(Runner(scenario, options).run())
        return {"status": result.status, "path": str(result.path),
                "errors": [c.error for c in result.cases if c.error]}

    figures = measured(work)
    figures["loop_waiting_s"] = selector.waited_s
    return figures


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
    p.add_argument("--cloud", default=None,
                   help="clouds.yaml entry (default: the embedded simulated cloud)")
    p.set_defaults(func=boot)
    p = commands.add_parser("report")
    p.add_argument("out", type=Path)
    p.add_argument("runs", type=Path, nargs="+")
    p.set_defaults(func=report)
    args = parser.parse_args()
    print(json.dumps(args.func(args)))


if __name__ == "__main__":
    main()
