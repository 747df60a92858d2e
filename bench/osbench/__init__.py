"""osbench: benchmark and load-test harness for OpenStack clouds.

The public API (see `osbench.api`): load and validate a scenario, run it, load
runs, build and write a report, compare runs, clean up a run. Importing
`osbench` is light (pytest imports it in every session through the plugin):
each name is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    **dict.fromkeys(("load_scenario", "validate", "Validation", "plan", "run", "run_async",
                     "parse_kind_options", "load_run", "load_runs", "build_report",
                     "write_report", "compare_runs", "cleanup_run", "Cleanup"),
                    "osbench.api"),
    **dict.fromkeys(("RunOptions", "RunResult", "CaseOutcome"), "osbench.runner"),
    **dict.fromkeys(("Scenario", "Case", "TargetSpec"), "osbench.scenario"),
    **dict.fromkeys(("OsbenchError", "UserError", "ScenarioError", "TargetError",
                     "CleanupIncomplete"), "osbench.errors"),
    **dict.fromkeys(("ProgressSink", "Progress"), "osbench.progress"),
    "Run": "osbench.results",
    "FigureOptions": "osbench.report.style",
}

__all__ = [
    "Case",
    "CaseOutcome",
    "Cleanup",
    "CleanupIncomplete",
    "FigureOptions",
    "OsbenchError",
    "Progress",
    "ProgressSink",
    "Run",
    "RunOptions",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "TargetError",
    "TargetSpec",
    "UserError",
    "Validation",
    "__version__",
    "build_report",
    "cleanup_run",
    "compare_runs",
    "load_run",
    "load_runs",
    "load_scenario",
    "parse_kind_options",
    "plan",
    "run",
    "run_async",
    "validate",
    "write_report",
]

if TYPE_CHECKING:
    from osbench.api import (
        Cleanup,
        Validation,
        build_report,
        cleanup_run,
        compare_runs,
        load_run,
        load_runs,
        load_scenario,
        parse_kind_options,
        plan,
        run,
        run_async,
        validate,
        write_report,
    )
    from osbench.errors import (
        CleanupIncomplete,
        OsbenchError,
        ScenarioError,
        TargetError,
        UserError,
    )
    from osbench.progress import Progress, ProgressSink
    from osbench.report.style import FigureOptions
    from osbench.results import Run
    from osbench.runner import CaseOutcome, RunOptions, RunResult
    from osbench.scenario import Case, Scenario, TargetSpec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'osbench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
