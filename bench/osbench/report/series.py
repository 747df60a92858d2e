"""Names for what a report puts side by side: runs, and cases within runs.

With one run a series is just its case; with several (the 100/200/400/1000 steps,
before/after profiles) it is "run label / case", and a case called "default" (a
scenario without a sweep) is left out of the name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from osbench.results import Run


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Scenario name per run; the run id is added where two runs share a name."""
    names = [str(run.manifest.get("scenario", {}).get("name") or run.run_id) for run in runs]
    counts = Counter(names)
    labels = [name if counts[name] == 1 else f"{name} ({run.run_id})"
              for name, run in zip(names, runs, strict=True)]
    # The same run given twice still needs two names, or its series would merge.
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def kind_of(run: Run) -> str:
    """The run's scenario kind ("unknown" for a manifest without one)."""
    return str((run.manifest.get("scenario") or {}).get("kind", "unknown"))


def case_ids(run: Run) -> list[str]:
    """Every case of a run in manifest order, then any only seen in its tables
    (a killed run's manifest may list cases that never started, and vice versa)."""
    ids: list[str] = [str(c.get("case_id")) for c in run.manifest.get("cases", [])
                      if isinstance(c, dict)]
    for frame in run.tables.values():
        if "case" in frame.columns:
            for case in frame["case"].dropna().astype(str).unique():
                if case not in ids:
                    ids.append(case)
    return ids


def series_label(run_label: str, case: str, several_runs: bool) -> str:
    if not several_runs:
        return case
    return run_label if case == "default" else f"{run_label} / {case}"


def case_rows(frame: pd.DataFrame, case: str) -> pd.DataFrame:
    """Rows of `frame` for `case` (empty when the table or column is missing)."""
    if frame.empty or "case" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame["case"].astype(str) == case]


def time_unit(runs: Sequence[Run]) -> str:
    """Axis wording for times: modelled seconds on the simulated cloud, real otherwise."""
    clocks = {str(run.manifest.get("clock", "real")) for run in runs}
    if clocks == {"modelled"}:
        return "modelled s"
    if "modelled" in clocks:
        return "s; modelled for simulated runs"
    return "s"
