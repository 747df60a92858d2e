"""The library API: what the `osbench` CLI, the pytest plugin and your own Python use.

    import osbench

    scenario = osbench.load_scenario("scenarios/seed-replay/02-big-pets-100.yaml")
    result = osbench.run(scenario, osbench.RunOptions(results_dir=Path("results")))
    run = osbench.load_run(result.path)
    osbench.write_report(osbench.build_report([run]), Path("reports/mine"))

Nothing here prints, reads argv, installs signal handlers (unless
`RunOptions.handle_signals`) or chooses an exit code; errors are `OsbenchError`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from osbench import kinds
from osbench.errors import UserError
from osbench.scenario import Scenario, expand
from osbench.scenario import load_scenario as _load_scenario

if TYPE_CHECKING:
    import pandas as pd

    from osbench.progress import ProgressSink
    from osbench.report.model import Report
    from osbench.report.style import FigureOptions
    from osbench.report.writer import Written
    from osbench.results import Run
    from osbench.runner import RunOptions, RunResult

T = TypeVar("T")


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (`ScenarioError`: file, line, key, fix)."""
    return _load_scenario(path)


@dataclass(frozen=True)
class Validation:
    """A valid scenario file: its kind and how many cases it expands to."""

    path: str
    scenario: Scenario
    cases: int


def validate(path: str | Path) -> Validation:
    """Load `path` and expand its cases, without importing any kind's run-time code."""
    scenario = _load_scenario(path)
    return Validation(str(path), scenario, len(expand(scenario)))


def plan(scenario: Scenario, options: RunOptions | None = None) -> str:
    """What running `scenario` would do, every write to a target included (a dry run)."""
    from osbench.runner import RunOptions
    from osbench.runner import plan as _plan

    return _plan(scenario, options or RunOptions())


async def run_async(scenario: Scenario, options: RunOptions | None = None, *,
                    progress: ProgressSink | None = None,
                    on_abandon: Callable[[RunResult], None] | None = None) -> RunResult:
    """Run `scenario`; journal under `options.results_dir`; return how it ended."""
    from osbench.runner import Runner, RunOptions

    return await Runner(scenario, options or RunOptions(), progress=progress,
                        on_abandon=on_abandon).run()


def run(scenario: Scenario, options: RunOptions | None = None, *,
        progress: ProgressSink | None = None,
        on_abandon: Callable[[RunResult], None] | None = None) -> RunResult:
    """`run_async` in its own event loop, which ends without waiting for worker threads
    a cancelled cloud call left behind (they end at the API timeout)."""
    return run_until_done(run_async(scenario, options, progress=progress,
                                    on_abandon=on_abandon))


def run_until_done(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, except that it does not wait for worker threads a cancelled
    call left behind: an SDK call stuck on a silent API ends at its api_timeout."""
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


def parse_kind_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """Kind option values from a command line (strings, or True for a flag), checked by
    each option's `parse`; None values are dropped."""
    by_name = {option.name: option for option in kinds.options()}
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or value is False:
            continue
        option = by_name.get(name)
        if option is None:
            raise UserError(f"no kind has an option {name!r}",
                            hint=f"kind options: {', '.join(sorted(by_name)) or 'none'}")
        if option.parse is not None and isinstance(value, str):
            try:
                value = option.parse(value)
            except ValueError as exc:
                raise UserError(f"{option.flag} {value!r}: {exc}") from None
        out[name] = value
    return out


def load_run(path: str | Path) -> Run:
    """One run from its `results/<run-id>/` directory (older schema versions upgraded)."""
    from osbench import results

    return results.load(path)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    return [load_run(path) for path in paths]


def build_report(runs: Sequence[Run], options: FigureOptions | None = None, *,
                 title: str | None = None, story: str | None = None, compare: bool = False,
                 thresholds: Mapping[str, float] | None = None,
                 alpha: float = 0.05) -> Report:
    """The report of `runs` (pure: nothing is written; see `write_report`)."""
    from osbench.report import Extras
    from osbench.report import build_report as _build

    extras = Extras(story=story, compare=compare, thresholds=dict(thresholds or {}),
                    alpha=alpha)
    return _build(runs, options, title=title, extras=extras)


def write_report(report: Report, out_dir: Path, formats: Iterable[str] | None = None, *,
                 dpi: int = 150) -> Written:
    """Write `report` as HTML/Markdown/figures into `out_dir`."""
    from osbench.report.writer import DEFAULT_FORMATS, write

    return write(report, out_dir, tuple(formats or DEFAULT_FORMATS), dpi=dpi)


def compare_runs(base: Run, candidate: Run, *, thresholds: Mapping[str, float] | None = None,
                 alpha: float = 0.05) -> pd.DataFrame:
    """One row per case and metric: baseline, candidate, ratio, p-value, verdict."""
    from osbench.compare import compare

    return compare(base, candidate, thresholds=thresholds, alpha=alpha)


@dataclass
class Cleanup:
    """What `cleanup_run` did: `reports` from the kind, or why nothing was needed."""

    run_id: str
    cloud: str | None
    nothing_to_do: str | None = None
    reports: list[Any] = field(default_factory=list)

    @property
    def left_over(self) -> int:
        return sum(len(r.leftover_servers) + len(r.leftover_ports) for r in self.reports)


def cleanup_run(run: Run, *, cloud: str | None = None, dry_run: bool = False) -> Cleanup:
    """Delete what `run` left on its cloud (`cloud` overrides the one it used), and
    nothing that does not carry its run id."""
    kind = run.manifest.get("scenario", {}).get("kind")
    spec = kinds.get(str(kind))
    clean = spec.cleanup_function() if spec is not None else None
    if clean is None:
        return Cleanup(run.run_id, None, f"{run.run_id}: a {kind} run creates nothing on a "
                                         "cloud; nothing to clean")
    opened = run.manifest.get("targets", [])
    cloud = cloud or next((str(t["cloud"]) for t in opened if t.get("type") == "cloud"), None)
    if cloud is None:
        if opened and not any(t.get("type") in ("cloud", "simulated-cloud") for t in opened):
            return Cleanup(run.run_id, None, f"{run.run_id} opened no cloud (its cases ran "
                                             "on hosts or this machine): nothing to clean")
        if any(t.get("simulated") for t in opened):
            return Cleanup(run.run_id, None, f"{run.run_id} ran on the embedded simulated "
                                             "cloud, which ended with it: nothing can be left")
        raise UserError(f"{run.path}: the manifest names no cloud", hint="pass --cloud NAME")
    reports = run_until_done(clean(run, cloud, dry_run=dry_run))
    return Cleanup(run.run_id, cloud, reports=list(reports))
