"""The cause beside the symptom in the boot kind's field-notes chapters (issue 16).

Each chapter adds, for every case of its runs that has monitor rows, what the
monitors measured: the symptom (from the case's own tables), the bottleneck
that attribution names first with its evidence, and the control-plane figure
the finding turns on (the pets' saturated time, the DHCP agent's backlog and
its oldest port's wait against the guests' DHCP timeout, the oldest create in
flight against the proxy's timeout). Runs without monitors add nothing: the
chapter then says the cause was not measured. Everything comes from the runs'
tables (`osbench.monitors.attribution`, `osbench.monitors.series`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from osbench.monitors import attribution, series
from osbench.monitors.attribution import Attribution, num
from osbench.report.model import Table
from osbench.results import Run

#: The simulated cloud's gauges a chapter may quote (metric -> how it reads).
BACKLOG = "osbench_sim_dhcp_agent_backlog_ports"
PORTS_BUILD = "osbench_sim_ports_build"
OLDEST_WAIT = "osbench_sim_dhcp_agent_oldest_wait_seconds"
OLDEST_CREATE = "osbench_sim_create_oldest_in_flight_seconds"
PROXY_TIMEOUT = "osbench_sim_proxy_timeout_seconds"


@dataclass(frozen=True)
class CaseCause:
    """What the monitors say about one case."""

    label: str
    attribution: Attribution
    monitor: pd.DataFrame
    #: The simulated cloud's profile parameters from the manifest ({} on a real cloud).
    profile: Mapping[str, Any] = field(default_factory=dict)

    @property
    def symptom(self) -> str:
        return "; ".join(s.text for s in self.attribution.symptoms) or "none"

    @property
    def cause(self) -> str:
        top = self.attribution.findings[:1]
        return top[0].evidence if top else self.attribution.verdict


Figure = Callable[[CaseCause], str | None]


def _label(run: Run, case: str) -> str:
    name = str((run.manifest.get("scenario") or {}).get("name") or run.run_id)
    return name if case == "default" else f"{name} {case}"


def _profile(run: Run, case: str) -> Mapping[str, Any]:
    """The simulated profile a case ran on, from the manifest's targets."""
    found: Mapping[str, Any] = {}
    for target in run.manifest.get("targets") or []:
        if isinstance(target, dict) and isinstance(target.get("profile_params"), dict):
            found = target["profile_params"]  # the last one opened at or before the case
        if isinstance(target, dict) and target.get("cases_from") == case:
            break
    return found


def case_causes(runs: Sequence[Run]) -> list[CaseCause]:
    """Every monitored case of `runs`, in order."""
    out = []
    for run in runs:
        monitor = run.table("monitor")
        for case, found in attribution.attribute_run(run).items():
            rows = monitor[monitor["case"].astype(str) == case]
            out.append(CaseCause(_label(run, case), found, rows, _profile(run, case)))
    return out


def _peak(monitor: pd.DataFrame, metric: str) -> tuple[float, float] | None:
    rows = monitor[monitor["metric"] == metric] if not monitor.empty else monitor
    if rows.empty:
        return None
    values = rows["value"].to_numpy(dtype=float)
    i = int(np.nanargmax(values))
    return float(values[i]), float(rows["t_s"].iloc[i])


def saturated(component: str) -> Figure:
    """'nova-conductor at >= 90% of its cores for 76 s in all (peak 100%)', from the
    saturation rule's findings, or that it never was."""
    def figure(c: CaseCause) -> str | None:
        cpu = [s for s in series.cpu_series(c.monitor) if s.component == component]
        if not cpu:
            return None
        fired = [f for f in attribution.saturation(c.monitor) if f.component == component]
        peak = max((p[0] for s in cpu if (p := s.peak()) is not None), default=float("nan"))
        if not fired:
            return (f"{component} never at >= {attribution.SATURATION_PCT:g}% of its cores "
                    f"for {attribution.SATURATION_SAMPLES} samples (peak {num(peak)}%)")
        return "; ".join(f.evidence for f in fired)
    return figure


def _port_deadline(profile: Mapping[str, Any]) -> str:
    """What gives up on a late port in this profile, and after how long."""
    compute, guest = profile.get("compute") or {}, profile.get("guest") or {}
    if compute.get("vif_plugging_timeout_s"):
        return f"Nova gives up on a port after {num(compute['vif_plugging_timeout_s'])} s"
    if guest.get("dhcp_timeout_s"):
        return f"a guest's DHCP client gives up after {num(guest['dhcp_timeout_s'])} s"
    return ""


def dhcp_backlog(c: CaseCause) -> str | None:
    """The DHCP agent's backlog peak, ports in BUILD, and the oldest port's longest
    wait against what gives up on a late port."""
    backlog, wait = _peak(c.monitor, BACKLOG), _peak(c.monitor, OLDEST_WAIT)
    if backlog is None or wait is None:
        return None
    build = _peak(c.monitor, PORTS_BUILD)
    deadline = _port_deadline(c.profile)
    return (f"DHCP agent backlog peaked at {num(backlog[0])} ports at t={num(backlog[1])} s"
            + (f" ({num(build[0])} ports in BUILD)" if build else "")
            + f"; the longest a port waited for it was {num(wait[0])} s"
            + (f" ({deadline})" if deadline else ""))


def create_in_flight(c: CaseCause) -> str | None:
    """The oldest create in flight against the proxy's timeout."""
    oldest, timeout = _peak(c.monitor, OLDEST_CREATE), _peak(c.monitor, PROXY_TIMEOUT)
    if oldest is None or timeout is None:
        return None
    crossed = "crossed" if oldest[0] >= timeout[0] else "stayed under"
    return (f"the oldest create in flight reached {num(oldest[0])} s and {crossed} the "
            f"proxy's {num(timeout[0])} s timeout")


def causes(runs: Sequence[Run], name: str, figure: Figure) -> tuple[str, list[Table]]:
    """The chapter's cause sentence and its table (both empty without monitors)."""
    found = case_causes(runs)
    if not found:
        return ("Cause: not measured (these runs had no monitors: add `monitors:` to the "
                "scenario).", [])
    rows, clauses = [], []
    for c in found:
        shown = figure(c)
        rows.append({"case": c.label, "symptom": c.symptom,
                     "bottleneck named first": c.attribution.verdict,
                     "evidence": c.cause, "control plane": shown or ""})
        clauses.append(f"{c.label}: " + (shown or c.cause))
    sentence = "Cause, as the monitors measured it: " + "; ".join(clauses) + "."
    return sentence, [Table(f"{name}-causes", "Symptom and measured cause per case "
                            "(osbench.monitors.attribution)", pd.DataFrame(rows))]
