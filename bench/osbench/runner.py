"""The asyncio runner: a scenario's cases, one at a time, against a target.

For each case it opens (or reuses) the target, runs the kind's `run_case`
with a CaseContext that journals every row as it is recorded, then runs the
case's cleanups (last added first, shielded from further signals), and judges
the SLA criteria on the rows the case recorded.

SIGINT/SIGTERM: no new case starts, the running case (or the opening of its
target) is cancelled, its cleanups run, the journal is flushed and the
manifest says `interrupted`. A second signal abandons whatever is still
running, cleanup included: the manifest says `cleanup: abandoned` and
`on_abandon` (the CLI: print, exit at once) is called; `osbench cleanup RUN`
finds what is left. A cleanup that ends without proof that everything is
gone (a create still unanswered, deletions unfinished) is listed in
`RunResult.cleanup_problems`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import traceback
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from osbench import interrupts, kinds, origin, targets
from osbench import planning as plans
from osbench.clock import Clock, RealClock
from osbench.errors import OsbenchError
from osbench.journal import Journal, new_run_id
from osbench.kinds import CaseContext, Kind, KindSpec
from osbench.monitors.session import open_session as open_monitors
from osbench.progress import ProgressSink, SilentProgress
from osbench.scenario import Case, Scenario, TargetSpec, expand
from osbench.scenario.sla import Verdict

log = logging.getLogger("osbench.runner")
#: A search's budget is wall time, whatever the target's clock.
_WALL = RealClock()


@dataclass(frozen=True)
class RunOptions:
    """How to run a scenario (the CLI and the pytest plugin build one from their options)."""

    results_dir: Path = Path("results")
    seed: int = 0
    target: TargetSpec = field(default_factory=TargetSpec)
    #: How the run was started, for the manifest (argv of `osbench run` or pytest).
    command: tuple[str, ...] = ()
    #: Values of the kinds' options (`KindSpec.options`), e.g. {"allow_large": True}.
    kind_options: Mapping[str, Any] = field(default_factory=dict)
    #: Run only these cases (ids); None: every case of the scenario.
    cases: frozenset[str] | None = None
    #: Route SIGINT/SIGTERM to a clean stop while the run lasts (the CLI and the
    #: pytest plugin do; a library caller may have its own handlers).
    handle_signals: bool = False
    #: Upper bound on one cleanup action; cleanup of 1000 servers on a slow
    #: real cloud has been seen to take minutes, so this is generous.
    cleanup_timeout_s: float = 1800.0


@dataclass
class CaseOutcome:
    case_id: str
    status: str  # completed | error | interrupted
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: With monitors, when the SLA was missed: the bottleneck attribution names first.
    bottleneck: str | None = None

    @property
    def sla_passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


@dataclass
class RunResult:
    run_id: str
    path: Path
    status: str  # completed | failed | interrupted
    cases: list[CaseOutcome]
    #: Cleanups that could not prove everything they own is gone; non-empty
    #: means the target may hold what this run created (`osbench cleanup RUN`).
    cleanup_problems: list[str] = field(default_factory=list)
    #: A capacity search's summaries (`search_summary` rows), one per search.
    searches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class _Context(CaseContext):
    def __init__(self, runner: Runner, case: Case, target: targets.Target, seed: int) -> None:
        self._runner = runner
        self.case = case
        self.run_id = runner.journal.run_id
        self.run_path = runner.journal.path
        self.options = runner.options.kind_options
        self.target = target
        self.target_spec = targets.resolve(case.target, runner.options.target)
        self.clock: Clock = target.clock
        self.t0 = self.clock.monotonic()
        self.seed = seed
        self.log = logging.getLogger(f"osbench.case.{case.case_id}")
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.cleanups: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    def record(self, table: str, row: Mapping[str, Any]) -> None:
        full = {"case": self.case.case_id, **row}
        self._runner.journal.record(table, full)
        self.rows[table].append(full)

    def record_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        fulls = [{"case": self.case.case_id, **row} for row in rows]
        self._runner.journal.record_many(table, fulls)  # one write, under its lock
        self.rows[table].extend(fulls)  # one call: atomic beside the run's own thread

    def progress(self, **counters: int) -> None:
        self._runner.progress.update(**counters)

    def add_cleanup(self, action: Callable[[], Awaitable[None]], label: str) -> None:
        self.cleanups.append((label, action))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: pd.DataFrame.from_records(rows) for name, rows in self.rows.items()}


def case_seed(seed: int, case: Case) -> int:
    """A per-case seed that differs between cases but is fixed for a given run seed."""
    return (seed * 1_000_003 + zlib.crc32(case.case_id.encode())) % 2**31


class Runner:
    """Runs one scenario; `run()` returns when every case ended or a signal stopped it."""

    def __init__(self, scenario: Scenario, options: RunOptions,
                 progress: ProgressSink | None = None,
                 on_abandon: Callable[[RunResult], None] | None = None) -> None:
        self.spec: KindSpec = _spec(scenario.kind)
        self.scenario = kinds.apply_options(scenario, options.kind_options)
        self.options = options
        self.kind: Kind = self.spec.kind()
        #: What to run: the sweep's cases, or a capacity search's points as they come.
        self.plan: plans.Plan = plans.make(
            self.scenario, options.cases, lambda table, row: self.journal.record(table, row))
        #: The sweep's cases (a search's sweep points): their targets are checked first.
        self.bases = [c for c in expand(self.scenario)
                      if options.cases is None or c.case_id in options.cases]
        self.progress: ProgressSink = progress or SilentProgress()
        #: Called on a second signal once the journal is finished; the CLI exits
        #: there (a thread stuck in a silent API would otherwise hold the process).
        self.on_abandon = on_abandon
        self.journal: Journal
        self._stopping = asyncio.Event()
        self._stop_reason: str | None = None
        #: What the first signal cancels: the running case, or the opening of a target.
        self._interruptible: asyncio.Task[Any] | None = None
        self._cleanup_task: asyncio.Future[None] | None = None
        self._cleaning = False
        self._abandoned = False
        self._cases_started = 0
        self._outcomes: list[CaseOutcome] = []
        self._cleanup_problems: list[str] = []

    # -- signals ---------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """What SIGINT/SIGTERM call: the first stops after cleanup, the second
        abandons everything still running."""
        if self._abandoned:
            return
        if self._stopping.is_set():
            self._abandon(reason)
            return
        self._stop_reason = reason
        self._stopping.set()
        self.progress.message(f"{reason}: stopping; running cleanup first "
                              "(a second signal abandons it)")
        if self._interruptible is not None and not self._cleaning:
            self._interruptible.cancel()

    def abandoned(self) -> bool:
        """A second signal gave up on whatever was still running."""
        return self._abandoned

    def _abandon(self, reason: str) -> None:
        self._abandoned = True
        what = "cleanup" if self._cleaning else "the run"
        self.progress.message(f"{reason} again: abandoning {what}")
        if self._cases_started:
            self._cleanup_problems.append(f"{what} abandoned by a second {reason}")
        self.journal.record("events", {"event": "abandoned", "detail": f"{what} ({reason})"})
        for task in (self._cleanup_task, self._interruptible):
            if task is not None:
                task.cancel()
        if self.on_abandon is not None:
            result = self._finish("interrupted", None)
            self.on_abandon(result)

    def _install_signals(self) -> list[tuple[signal.Signals, Any]]:
        """Route SIGINT/SIGTERM to `request_stop`; returns what to restore."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
            except (NotImplementedError, RuntimeError):  # not the main thread
                continue
            installed.append((sig, previous))
        return installed

    @staticmethod
    def _restore_signals(installed: list[tuple[signal.Signals, Any]]) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in installed:
            loop.remove_signal_handler(sig)  # leaves SIG_DFL for SIGTERM ...
            if previous is not None:
                signal.signal(sig, previous)  # ... so put the caller's back

    # -- the run ---------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        return {
            "scenario": {"file": self.scenario.file, **self.scenario.as_dict()},
            **self.plan.describe(),
            "seed": self.options.seed,
            "command": list(self.options.command),
            "target_spec": dataclasses.asdict(self.options.target),
            "targets": [],
            "clock": None,
            **origin.describe(),
        }

    async def run(self) -> RunResult:
        # Signals first: checking a cloud imports openstacksdk (seconds on a busy
        # machine); a signal then is handled at the first await, as a stop.
        installed = self._install_signals() if self.options.handle_signals else []
        if installed and (name := interrupts.pending()) is not None:
            # A signal before these handlers whose KeyboardInterrupt an import
            # swallowed (osbench.interrupts): it still stops the run.
            self.request_stop(name)
        try:
            # A target that cannot be named (unknown cloud) is a user error before
            # the run starts: it leaves no results directory behind.
            for kind, spec in {(self.spec.target_kind(c.params),
                                targets.resolve(c.target, self.options.target))
                               for c in self.bases}:
                targets.check_target(kind, spec)
            self.journal = Journal.create(self.options.results_dir,
                                          new_run_id(self.scenario.slug), self._manifest())
        except BaseException:
            self._restore_signals(installed)
            raise
        status = "error"
        error: str | None = None
        try:
            await self._run_cases()
            if self._stopping.is_set():
                status = "interrupted"
            else:
                status = "completed" if self.plan.met(self._outcomes) else "failed"
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            status = "interrupted"  # stopped while opening a target
        except OsbenchError as exc:  # e.g. the target could not be opened
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._restore_signals(installed)
            result = self._finish(status, error)
        return result

    def _finish(self, status: str, error: str | None) -> RunResult:
        """Close the journal (once) and say how the run ended."""
        if self.journal.manifest["status"] == "running":
            self.progress.close()
            self.journal.finish(
                status,
                stop_reason=self._stop_reason,
                error=error,
                cleanup=("abandoned" if self._abandoned else
                         "incomplete" if self._cleanup_problems else "complete"),
                cleanup_problems=self._cleanup_problems,
                summary={o.case_id: {"status": o.status, "sla_passed": o.sla_passed,
                                     "error": o.error} for o in self._outcomes},
                **({"search": list(self.plan.summaries)} if self.plan.summaries else {}),
            )
        return RunResult(run_id=self.journal.run_id, path=self.journal.path,
                         status=self.journal.manifest["status"], cases=list(self._outcomes),
                         cleanup_problems=list(self._cleanup_problems),
                         searches=list(self.plan.summaries))

    async def _run_cases(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            open_spec: tuple[str, TargetSpec] | None = None
            target: targets.Target | None = None
            # Asked only while no signal came: asking starts the next search, which
            # would then end "interrupted" without having run a case.
            while (not self._stopping.is_set()
                   and (case := self.plan.next_case(_WALL.monotonic())) is not None):
                spec = targets.resolve(case.target, self.options.target)
                kind = self.spec.target_kind(case.params)
                if (kind, spec) != open_spec or target is None:
                    await stack.aclose()
                    opening = asyncio.ensure_future(stack.enter_async_context(
                        targets.open_target(kind, spec, self.options.seed)))
                    self._interruptible = opening
                    try:
                        target = await opening
                    finally:
                        self._interruptible = None
                    open_spec = (kind, spec)
                    if self._stopping.is_set():
                        break
                    self.journal.update_manifest(
                        targets=[*self.journal.manifest["targets"],
                                 {"cases_from": case.case_id, **target.describe()}],
                        clock="modelled" if target.clock.modelled else "real",
                    )
                if (checked := self.plan.checks_before(case)) is not None:
                    try:  # e.g. quotas for the search's max, before its first point
                        await self.kind.preflight(checked, target, self.options.kind_options)
                    except OsbenchError as exc:
                        self.plan.checks_failed(f"{type(exc).__name__}: {exc}")
                        self.progress.message(f"search {case.case_id}: {exc}")
                        continue
                outcome = await self._run_case(case, target)
                self._outcomes.append(outcome)
                self._describe_again(target)
                wait = self.plan.record(case, outcome, _WALL.monotonic())
                if wait > 0 and not self._stopping.is_set():
                    pause = asyncio.ensure_future(target.clock.sleep(wait))
                    self._interruptible = pause
                    try:
                        await pause
                    except asyncio.CancelledError:
                        if not self._stopping.is_set():
                            raise
                    finally:
                        self._interruptible = None
            if self._stopping.is_set():
                self.plan.stop("interrupted")

    def _describe_again(self, target: targets.Target) -> None:
        """The manifest's entry of `target` as it describes itself now: a case can
        teach it something (a cloud's clock against ours, osbench.cloudclock)."""
        entries = self.journal.manifest["targets"]
        described = {**entries[-1], **target.describe()}
        if described != entries[-1]:
            self.journal.update_manifest(targets=[*entries[:-1], described])

    async def _run_case(self, case: Case, target: targets.Target) -> CaseOutcome:
        ctx = _Context(self, case, target, case_seed(self.options.seed, case))
        started = datetime.now(UTC)
        self.progress.start_case(case.case_id, case.index, self.plan.total())
        outcome = CaseOutcome(case_id=case.case_id, status="completed")
        self._cases_started += 1
        bug: BaseException | None = None
        case_task: asyncio.Task[None] | None = None
        monitors = None
        try:
            if self.scenario.monitors is not None:
                monitors = await open_monitors(self.scenario.monitors, ctx)
            if self._stopping.is_set():  # a signal while the monitors opened
                raise asyncio.CancelledError
            case_task = asyncio.create_task(self.kind.run_case(case, ctx))
            self._interruptible = case_task
            await case_task
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise  # the runner itself is cancelled; cleanup still runs below
            outcome.status = "interrupted"
        except OsbenchError as exc:
            outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # A bug: journal it, clean up, and let it keep its traceback.
            outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
            self.journal.record("events", {"case": case.case_id, "event": "bug",
                                           "detail": traceback.format_exc()})
            bug = exc
        finally:
            self._interruptible = None
            await self._cleanup(ctx)
            if monitors is not None:  # after the cleanups: deletes are API load too
                await monitors.close()
        if bug is not None:
            self._record_case(case, outcome, started)
            self.progress.end_case(outcome.status, outcome.error or "")
            raise bug
        if outcome.status == "completed":
            tables = ctx.tables()
            outcome.metrics = self.kind.compute_metrics(tables)
            samples = tables.get(self.spec.sample_table, pd.DataFrame())
            outcome.verdicts = [c.judge(outcome.metrics, samples) for c in self.scenario.sla]
            if monitors is not None and not outcome.sla_passed:
                # The verdicts are journaled only after this: the symptoms (a missed
                # time criterion is one) need them among the case's tables now.
                sla = pd.DataFrame(_sla_rows(case, outcome.verdicts))
                outcome.bottleneck = _top_bottleneck(self.spec, {**tables, "sla": sla})
        self._record_case(case, outcome, started)
        detail = "; ".join(v.describe() for v in outcome.verdicts)
        self.progress.end_case(outcome.status, outcome.error or detail)
        return outcome

    async def _cleanup(self, ctx: _Context) -> None:
        """Run the case's cleanups, last first; the first signal does not interrupt
        them, a second abandons them."""
        self._cleaning = True
        try:
            for label, action in reversed(ctx.cleanups):
                if self.abandoned():
                    ctx.record("events", {"event": "cleanup_abandoned", "detail": label})
                    continue
                task = asyncio.ensure_future(
                    _bounded(action, self.options.cleanup_timeout_s))
                self._cleanup_task = task
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    if self.abandoned():  # a second signal cancelled the cleanup
                        ctx.record("events", {"event": "cleanup_abandoned", "detail": label})
                        continue
                    await task  # our caller was cancelled; finish cleaning anyway
                    raise
                except Exception as exc:
                    self.progress.message(f"cleanup {label!r} failed: {exc}")
                    ctx.record("events", {"event": "cleanup_failed", "detail": label,
                                          "error": f"{type(exc).__name__}: {exc}"})
                    self._cleanup_problems.append(f"{label}: {exc}")
                else:
                    ctx.record("events", {"event": "cleanup_done", "detail": label})
                finally:
                    self._cleanup_task = None
        finally:
            self._cleaning = False

    def _record_case(self, case: Case, outcome: CaseOutcome, started: datetime) -> None:
        ended = datetime.now(UTC)
        self.journal.record("cases", {
            "case": case.case_id, "index": case.index, "repeat": case.repeat,
            **{f"sweep.{k}": v for k, v in case.sweep_values.items()},
            "status": outcome.status, "error": outcome.error,
            "started_at": started, "ended_at": ended,
            "wall_duration_s": (ended - started).total_seconds(),
            **{f"metric.{k}": v for k, v in outcome.metrics.items()},
        })
        for row in _sla_rows(case, outcome.verdicts):
            self.journal.record("sla", row)


async def _bounded(action: Callable[[], Awaitable[object]], timeout_s: float) -> None:
    """`action` within `timeout_s` (TimeoutError after). asyncio.timeout, not wait_for:
    on Python 3.11 wait_for can drop a cancel that arrives as the action finishes, and
    a second Ctrl-C must abandon the cleanup it cancels."""
    async with asyncio.timeout(timeout_s):
        await action()


def _sla_rows(case: Case, verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The case's `sla` rows, one per criterion."""
    return [{"case": case.case_id, "criterion": v.criterion.text, "label": v.criterion.label,
             "op": v.criterion.op, "threshold": v.criterion.threshold,
             "measured": v.measured, "passed": v.passed} for v in verdicts]


def _top_bottleneck(spec: KindSpec, tables: Mapping[str, pd.DataFrame]) -> str | None:
    """The first bottleneck attribution names for a case's tables, with its evidence."""
    from osbench.monitors.attribution import attribute_case

    found = attribute_case(tables, spec.symptom_function())
    return f"{found.verdict}: {found.findings[0].evidence}" if found.findings else (
        found.verdict)


def _spec(name: str) -> KindSpec:
    spec = kinds.get(name)
    if spec is None:  # load_scenario already checked; a registry change since is a bug
        raise RuntimeError(f"kind {name!r} vanished from the registry")
    return spec


def plan(scenario: Scenario, options: RunOptions) -> str:
    """The `--dry-run` text: every case and every action that would write to a target."""
    kind = _spec(scenario.kind)
    scenario = kinds.apply_options(scenario, options.kind_options)
    cases = expand(scenario)
    implementation = kind.kind()
    lines = [
        f"scenario {scenario.name!r} ({scenario.file}), kind {kind.name}, "
        f"{len(cases)} case(s), seed {options.seed}",
        f"would write results to {options.results_dir}/<run-id>/",
    ]
    search = scenario.search
    if search is not None:
        bound = plans.max_points(search.start, search.max, search.resolution, search.factor)
        lines.append(
            f"capacity search over {search.param} from {search.start:g} (x{search.factor:g}) "
            f"up to {search.max:g}, then bisecting to {search.resolution:g}: at most {bound} "
            f"point(s) x {search.repeats} repeat(s) (pass: {search.pass_rule.text}) per "
            f"search; each point cleaned up before the next"
            + (f", {search.cooldown:g} s apart" if search.cooldown else "")
            + (f"; budget {search.budget:g} s" if search.budget else ""))
    for case in cases:
        spec = targets.resolve(case.target, options.target)
        where = {"cloud": f"cloud {spec.cloud!r}" if spec.cloud else
                 f"simulated cloud (profile {spec.sim_profile or 'default'})",
                 "hosts": f"hosts {spec.hosts!r}" if spec.hosts else "local lab",
                 "local": "this machine"}[kind.target_kind(case.params)]
        if search is not None:  # the largest point it may run
            case = plans.SearchPlan.at(search, case, search.max)
            lines.append(f"search {case.index + 1}/{len(cases)} on {where}, its largest "
                         f"point ({case.case_id}):")
        else:
            lines.append(f"case {case.index + 1}/{len(cases)} {case.case_id} on {where}:")
        actions = implementation.plan(case) or ["(no writes to the target)"]
        lines.extend(f"  - {a}" for a in actions)
    if scenario.sla:
        lines.append("SLA: " + "; ".join(c.text for c in scenario.sla))
    return "\n".join(lines)
