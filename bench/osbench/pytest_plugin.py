"""pytest plugin: scenario files as test items, one per case, passed or failed by SLA.

`pytest scenarios/boot-scale-up.yaml --cloud NAME` runs the scenario exactly as
`osbench run` would (same RunOptions, one `results/<run-id>/` per scenario
file) and turns each case into a pytest item, so CI gets pass/fail per case,
`--junitxml`, `-m boot` and `-k` selection for free.

Which YAML files are scenarios: a file named on the command line, or any
`.yaml`/`.yml` file whose top level has both `name:` and `kind:` keys. Every
other YAML file (CI configs, clouds.yaml, host inventories, Kubernetes
manifests, which have `kind:` but no top-level `name:`) is ignored, so the
plugin never breaks a suite that merely contains YAML. Files are found only
where pytest looks anyway: the paths given, else the configured testpaths.

A scenario runs once, when its first selected item runs; the other items read
their case's outcome from that run. Running case by case would split one
scenario over several run directories, and `osbench report`/`compare` treat a
run as a scenario's cases side by side. Deselected cases (`-k`, `-m`) are not
run at all: the run's manifest lists only the cases that ran.

A scenario with a `search:` section is one item, `NAME[capacity-PARAM]`: its
cases are chosen by the search as it goes, so they cannot be items. It passes
when every search's capacity is at least `search.require`, or, without
`require`, when every search ended by itself (done, or at its budget). Its
junit properties carry each search's capacity, first_fail, points and steps
("10 pass, 20 pass, 40 fail, 30 pass").

Registered as the `osbench` pytest11 entry point; the repository's top-level
conftest.py loads it from a checkout where osbench is not installed.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from osbench.errors import OsbenchError, UserError

if TYPE_CHECKING:
    from osbench.runner import CaseOutcome, RunOptions, RunResult
    from osbench.scenario import Case, Scenario

# pytest imports every installed pytest11 plugin at start-up, in every project
# of the environment; osbench's runner pulls in pandas (~0.5 s), so it is
# imported only once a scenario file is collected.

#: A top-level `name:` / `kind:` key: column 0, as a scenario file writes them.
_TOP_NAME = re.compile(r"^name\s*:", re.MULTILINE)
_TOP_KIND = re.compile(r"^kind\s*:", re.MULTILINE)
#: How much of a YAML file is read to tell whether it is a scenario: a big data
#: file in the repository is never read whole. The scenario loader refuses files
#: larger than this (osbench.scenario.source.MAX_FILE_BYTES) anyway.
_SNIFF_BYTES = 256 * 1024

#: What each scenario run that ran in this session ended as, for the summary.
_RUNS_KEY = pytest.StashKey["list[tuple[Scenario, RunResult]]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("osbench", "osbench scenarios (scenario YAML files as tests)")
    group.addoption("--cloud", dest="osbench_cloud", metavar="NAME",
                    help="clouds.yaml entry to run against (default: OS_CLOUD, else the "
                    "simulated cloud)")
    group.addoption("--hosts", dest="osbench_hosts", metavar="FILE",
                    help="host inventory YAML (default: the local lab)")
    group.addoption("--sim-profile", dest="osbench_sim_profile", metavar="NAME",
                    help="simulated cloud profile (see `osbench sim profiles`)")
    group.addoption("--time-scale", dest="osbench_time_scale", type=float, metavar="X",
                    help="simulated cloud speed-up factor")
    group.addoption("--osbench-results", dest="osbench_results", type=Path,
                    default=Path("results"), metavar="DIR",
                    help="where run directories go (default: results/)")
    group.addoption("--seed", dest="osbench_seed", type=int, default=0,
                    help="seed for everything random in a scenario run (default 0)")
    from osbench import kinds  # the kinds' specs only: light

    for option in kinds.options():  # e.g. boot's --phone-home-url and --allow-large
        if option.metavar:
            group.addoption(option.flag, dest=f"osbench_{option.name}",
                            metavar=option.metavar, help=option.help)
        else:
            group.addoption(option.flag, dest=f"osbench_{option.name}", action="store_true",
                            help=option.help)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "osbench: a case of an osbench scenario file (each "
                            "case also carries its kind as a marker: boot, netsweep, ...)")
    config.stash[_RUNS_KEY] = []


def _register_kind_markers(config: pytest.Config) -> None:
    """One marker per kind (`-m boot`), declared because our users' configs, like ours,
    use --strict-markers. Done at the first scenario collected, not at configure, to
    keep the kind registry (and pandas) out of runs that collect no scenario."""
    from osbench import kinds

    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    for kind in kinds.available():
        if kind not in declared:
            config.addinivalue_line("markers", f"{kind}: a case of an osbench `{kind}` "
                                    "scenario")


def is_scenario_file(path: Path, session: pytest.Session) -> bool:
    """A YAML file given on the command line, or one with top-level `name:` and `kind:`."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    if session.isinitpath(path):
        return True
    try:
        with path.open("rb") as f:
            text = f.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_TOP_NAME.search(text) and _TOP_KIND.search(text))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if not is_scenario_file(file_path, parent.session):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


def run_options(config: pytest.Config, cases: frozenset[str] | None = None) -> RunOptions:
    """The same RunOptions `osbench run` builds from the same options."""
    from osbench import api, kinds
    from osbench.runner import RunOptions
    from osbench.scenario import TargetSpec

    return RunOptions(
        results_dir=config.getoption("osbench_results"),
        seed=config.getoption("osbench_seed"),
        target=TargetSpec(cloud=config.getoption("osbench_cloud"),
                          sim_profile=config.getoption("osbench_sim_profile"),
                          time_scale=config.getoption("osbench_time_scale"),
                          hosts=config.getoption("osbench_hosts")),
        command=("pytest", *config.invocation_params.args),
        kind_options=api.parse_kind_options(
            {option.name: config.getoption(f"osbench_{option.name}")
             for option in kinds.options()}),
        cases=cases,
        handle_signals=True,
    )


class ScenarioFile(pytest.File):
    """One scenario file: validated at collection, run once for all its cases."""

    scenario: Scenario
    _result: RunResult | None = None
    _error: BaseException | None = None

    def collect(self) -> Iterator[CaseItem | SearchItem]:
        from osbench import api, kinds
        from osbench.scenario import expand

        try:
            scenario = kinds.apply_options(api.load_scenario(self._display_path()),
                                           run_options(self.config).kind_options)
        except UserError as exc:  # ScenarioError says file:line key.path: problem (hint)
            raise self.CollectError(str(exc)) from None
        self.scenario = scenario
        _register_kind_markers(self.config)
        if scenario.search is not None:
            search = SearchItem.from_parent(
                self, name=f"{scenario.name}[capacity-{scenario.search.param}]")
            search.add_marker("osbench")
            search.add_marker(scenario.kind)
            yield search
            return
        for case in expand(scenario):
            item = CaseItem.from_parent(self, name=f"{scenario.name}[{case.case_id}]",
                                        case=case)
            item.add_marker("osbench")
            item.add_marker(scenario.kind)
            yield item

    def _display_path(self) -> Path:
        """The path as the user would type it (relative to where pytest was started), as
        `osbench run` keeps it: it is what errors and the run's manifest show."""
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path

    def result(self) -> RunResult:
        """The scenario's run, made on the first call."""
        if self._result is None and self._error is None:
            self._run()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def outcome(self, case_id: str) -> tuple[RunResult, CaseOutcome | None]:
        """Run the scenario (its selected cases) on first call; then the run and the
        case's outcome (None when the run stopped before the case)."""
        result = self.result()
        return result, next((c for c in result.cases if c.case_id == case_id), None)

    def _run(self) -> None:
        from osbench import api
        from osbench.cloudclient import quiet_sdk_warnings
        from osbench.progress import Progress

        # A search's one item runs every search (sweep point) of the file.
        selected = None if self.scenario.search is not None else frozenset(
            item.case.case_id for item in self.session.items
            if isinstance(item, CaseItem) and item.parent is self)
        try:
            with warnings.catch_warnings():
                quiet_sdk_warnings()
                self._result = asyncio.run(api.run_async(
                    self.scenario, run_options(self.config, selected), progress=Progress()))
        except Exception as exc:
            # The target could not be opened (an OsbenchError: its text), or a bug
            # in a kind (its traceback): every selected case fails with it.
            self._error = exc
            raise
        self.config.stash[_RUNS_KEY].append((self.scenario, self._result))


class CaseFailed(Exception):
    """A case that missed its SLA, errored, or whose target could not be opened: its
    message is the whole report (no traceback)."""


class _ScenarioItem(pytest.Item):
    """An item of a scenario file (a case, or the file's searches)."""

    @property
    def scenario_file(self) -> ScenarioFile:
        assert isinstance(self.parent, ScenarioFile)
        return self.parent


class CaseItem(_ScenarioItem):
    """One case of a scenario; passes when it completed and met every criterion."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        file = self.scenario_file
        try:
            result, outcome = file.outcome(self.case.case_id)
        except OsbenchError as exc:
            raise CaseFailed(f"{file.scenario.name} could not run: {exc}") from exc
        self.user_properties += [("osbench_run_id", result.run_id),
                                 ("osbench_results", str(result.path))]
        if result.status == "interrupted" or outcome is None:
            # The runner caught SIGINT/SIGTERM and cleaned up; stop pytest as
            # Ctrl-C would (exit 2, junitxml still written).
            raise KeyboardInterrupt(f"osbench run interrupted; results in {result.path}")
        self.user_properties += [("osbench_status", outcome.status),
                                 *((f"metric.{k}", v) for k, v in outcome.metrics.items()),
                                 *((f"sla: {v.criterion.text}", v.describe())
                                   for v in outcome.verdicts)]
        if result.cleanup_problems:
            raise CaseFailed(f"cleanup incomplete: {'; '.join(result.cleanup_problems)}\n"
                             f"what the run created may still be on the target: run "
                             f"`osbench cleanup {result.path}`")
        if outcome.status != "completed":
            raise CaseFailed(f"case {self.case.case_id} of {file.scenario.name} errored: "
                            f"{outcome.error}\nresults: {result.path}")
        if not outcome.sla_passed:
            # The first line is what `-ra` and junitxml summaries show: the misses.
            missed = "; ".join(v.describe().removeprefix("FAIL ")
                               for v in outcome.verdicts if not v.passed)
            lines = [f"SLA failed: {missed}",
                     f"case {self.case.case_id} of {file.scenario.name}, run {result.run_id}:"]
            lines += [f"  {v.describe()}" for v in outcome.verdicts]
            lines.append(f"results: {result.path}")
            raise CaseFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        """SLA misses, user and target errors are findings, not bugs: their text only."""
        if isinstance(excinfo.value, CaseFailed | OsbenchError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.scenario_file.scenario.name}[{self.case.case_id}]"


def steps_text(run_path: Path, search: str) -> str:
    """"10 pass, 20 pass, 40 fail, 30 pass": a search's points in the order tried, from
    the run's `search` rows."""
    from osbench import api

    steps = api.load_run(run_path).table("search")
    if steps.empty or "search" not in steps.columns:
        return ""
    rows = steps[steps["search"].astype(str) == search]
    return ", ".join(f"{_g(v)} {verdict}" for v, verdict in zip(
        rows["value"], rows["verdict"], strict=True))


def _g(value: Any) -> str:
    return "none" if value is None or value != value else f"{float(value):g}"


class SearchItem(_ScenarioItem):
    """A scenario's capacity searches, one item: passes when every capacity is at least
    `search.require` (without it, when every search ended by itself)."""

    def runtest(self) -> None:
        file = self.scenario_file
        spec = file.scenario.search
        assert spec is not None
        try:
            result = file.result()
        except OsbenchError as exc:
            raise CaseFailed(f"{file.scenario.name} could not run: {exc}") from exc
        self.user_properties += [("osbench_run_id", result.run_id),
                                 ("osbench_results", str(result.path))]
        if result.status == "interrupted":
            raise KeyboardInterrupt(f"osbench run interrupted; results in {result.path}")
        several = len(result.searches) > 1
        lines, short = [], []
        for s in result.searches:
            name = str(s["search"])
            suffix = f"[{name}]" if several else ""
            steps = steps_text(result.path, name)
            self.user_properties += [(f"capacity{suffix}", _g(s["capacity"])),
                                     (f"first_fail{suffix}", _g(s["first_fail"])),
                                     (f"points{suffix}", s["points"]),
                                     (f"status{suffix}", s["status"]),
                                     (f"steps{suffix}", steps)]
            capacity = s["capacity"]
            # As the run's own verdict (planning.SearchPlan.met): a search that errored
            # fails even past `require`, since its capacity is then only a lower bound
            # and the error may be the cloud's.
            ok = s["status"] in ("done", "budget")
            why = f"ended {s['status']}"
            if ok and spec.require is not None:
                ok = capacity is not None and capacity >= spec.require
                why = f"capacity {_g(capacity)} < require {spec.require:g}"
            where = f"search {name}: " if several or name != "default" else ""
            line = (f"{where}{s['param']} capacity {_g(capacity)}, first_fail "
                    f"{_g(s['first_fail'])}, status {s['status']} ({s['points']} points); "
                    f"steps: {steps}" + (f"; error: {s['error']}" if s.get("error") else ""))
            lines.append(("  " if ok else "  FAIL ") + line)
            if not ok:
                short.append(f"{where}{why}")
        if result.cleanup_problems:
            raise CaseFailed(f"cleanup incomplete: {'; '.join(result.cleanup_problems)}\n"
                             f"what the run created may still be on the target: run "
                             f"`osbench cleanup {result.path}`")
        if not result.searches:
            raise CaseFailed(f"{file.scenario.name}: no search ran\nresults: {result.path}")
        if short:
            raise CaseFailed("\n".join([
                f"capacity search failed: {'; '.join(short)}",
                f"{file.scenario.name}, run {result.run_id}:", *lines,
                f"results: {result.path}"]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed | OsbenchError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Where each run's results are, as `osbench run` prints them."""
    runs = config.stash.get(_RUNS_KEY, [])
    if not runs:
        return
    terminalreporter.section("osbench runs")
    for scenario, result in runs:
        terminalreporter.write_line(f"{scenario.name}: {result.status}; results in "
                                    f"{result.path}")
