"""The provenance block: where one run's numbers come from (target, versions,
commit, date, seed, scenario as run), and its SLA verdicts per case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import yaml

from osbench.report.model import Provenance
from osbench.results import Run


def describe_target(target: dict[str, Any]) -> str:
    """One line per target: simulated or real, and which."""
    kind = str(target.get("type", "unknown"))
    simulated = bool(target.get("simulated"))
    if kind == "simulated-cloud" or (simulated and "profile" in target):
        text = f"SIMULATED cloud, profile {target.get('profile', '?')}, {_calibration(target)}"
        if target.get("time_scale"):
            text += f", time scale {target['time_scale']}"
        return text
    if target.get("lab"):
        return "REAL hosts: the local namespace lab (veth links on this machine)"
    if kind == "hosts":
        return f"REAL hosts, inventory {target.get('inventory', '?')}"
    name = target.get("cloud") or target.get("name")
    prefix = "SIMULATED" if simulated else "REAL"
    return f"{prefix} {kind}" + (f" {name}" if name else "")


def _calibration(target: dict[str, Any]) -> str:
    """What a simulated cloud's parameters were fitted to, as its run recorded them."""
    params = target.get("profile_params")
    if not isinstance(params, dict) or "calibration" not in params:
        return "calibration not recorded"  # runs from before profiles named one
    calibration = str(params["calibration"] or "").strip()
    return f"calibrated to {calibration}" if calibration else "uncalibrated parameters"


def _targets(manifest: dict[str, Any]) -> str:
    targets = manifest.get("targets") or []
    lines = list(dict.fromkeys(describe_target(t) for t in targets if isinstance(t, dict)))
    return "; ".join(lines) or "unknown (not recorded)"


def _version(manifest: dict[str, Any]) -> str:
    info = manifest.get("osbench") or {}
    text = f"osbench {info.get('version', '?')}"
    commit = info.get("commit")
    if commit:
        text += f", commit {str(commit)[:12]}"
        if info.get("dirty"):
            text += " (dirty tree)"
    else:
        text += ", commit unknown"
    return text


def _clock(manifest: dict[str, Any]) -> str:
    clock = manifest.get("clock")
    if clock == "modelled":
        return "modelled seconds (times are the simulated cloud's, not wall time)"
    if clock == "real":
        return "real seconds"
    return "not recorded"


def _date(manifest: dict[str, Any]) -> str:
    started = manifest.get("started_at")
    ended = manifest.get("ended_at")
    if not started:
        return "not recorded"
    text = str(started)
    if ended:
        try:
            seconds = (pd.Timestamp(ended) - pd.Timestamp(started)).total_seconds()
            text += f" to {ended} ({seconds:.0f} s wall)"
        except ValueError:
            text += f" to {ended}"
    else:
        text += " (no end recorded)"
    return text


def _cloud_versions(manifest: dict[str, Any]) -> str:
    """A real cloud's API versions and, when its clouds.yaml entry gave them, the
    software versions (e.g. minicloud's OpenStack packages); "" when not recorded."""
    parts: list[str] = []
    for target in manifest.get("targets") or []:
        if not isinstance(target, dict):
            continue
        apis = target.get("api_versions") or {}
        if apis:
            parts.append("APIs: " + ", ".join(f"{k} {v}" for k, v in apis.items()))
        for name, values in (target.get("metadata") or {}).items():
            if isinstance(values, dict):
                for group, versions in values.items():
                    if isinstance(versions, dict):
                        parts.append(f"{name} {group}: " + ", ".join(
                            f"{k} {v}" for k, v in versions.items()))
    return "; ".join(dict.fromkeys(parts))


def sla_verdicts(run: Run) -> pd.DataFrame:
    """case, criterion, measured, verdict (PASS/FAIL) for every SLA row of the run."""
    sla = run.table("sla")
    columns = ["case", "criterion", "measured", "verdict"]
    if sla.empty:
        return pd.DataFrame(columns=columns)
    measured = sla["measured"] if "measured" in sla.columns else pd.Series(None, index=sla.index)
    passed = sla["passed"] if "passed" in sla.columns else pd.Series(False, index=sla.index)
    return pd.DataFrame({
        "case": sla.get("case", pd.Series("", index=sla.index)).astype(str),
        "criterion": sla.get("criterion", pd.Series("", index=sla.index)).astype(str),
        "measured": [("nothing measured" if pd.isna(m) else f"{float(m):.6g}") for m in measured],
        "verdict": ["PASS" if bool(p) else "FAIL" for p in passed.fillna(False)],
    }, columns=columns)


def scenario_text(manifest: dict[str, Any]) -> str:
    """The scenario as run (defaults filled in), as YAML."""
    scenario = manifest.get("scenario") or {}
    return str(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=88))


def provenance(run: Run, label: str) -> Provenance:
    m = run.manifest
    python = m.get("python") or {}
    libraries = m.get("libraries") or {}
    host = m.get("host") or {}
    scenario = m.get("scenario") or {}
    fields = [
        ("run", run.run_id),
        ("status", "INCOMPLETE (the run did not finish)" if run.incomplete
         else str(m.get("status", "unknown")) + _cleanup_warning(m)),
        ("scenario", f"{scenario.get('name', '?')} (kind {scenario.get('kind', '?')}, "
                     f"file {scenario.get('file', '?')})"),
        ("target", _targets(m)),
        ("clock", _clock(m)),
        ("date", _date(m)),
        ("seed", str(m.get("seed", "not recorded"))),
        ("osbench", _version(m)),
        ("python", str(python.get("version", "?"))),
        ("libraries", ", ".join(f"{k} {v}" for k, v in libraries.items()) or "not recorded"),
        ("host", f"{host.get('hostname', '?')}, {host.get('platform', '?')}, "
                 f"{host.get('cpu_count', '?')} CPUs"),
        ("cases", ", ".join(str(c.get("case_id")) for c in m.get("cases", [])
                            if isinstance(c, dict)) or "none recorded"),
    ]
    versions = _cloud_versions(m)
    if versions:
        fields.append(("cloud versions", versions))
    if m.get("command"):
        fields.append(("command", " ".join(str(part) for part in m["command"])))
    if m.get("error"):
        fields.append(("error", str(m["error"])))
    cases = run.table("cases")
    if "error" in cases.columns:
        for _, row in cases[cases["error"].notna()].iterrows():
            fields.append((f"error in {row.get('case', '?')}", str(row["error"])))
    return Provenance(label=label, run_id=run.run_id, incomplete=run.incomplete,
                      fields=fields, scenario_text=scenario_text(m), notes=list(run.notes),
                      sla=sla_verdicts(run))


def _cleanup_warning(manifest: Mapping[str, Any]) -> str:
    """`; CLEANUP INCOMPLETE: ...` when the run could not prove its cleanup."""
    state = manifest.get("cleanup")
    if state not in ("incomplete", "abandoned"):
        return ""
    problems = "; ".join(str(p) for p in manifest.get("cleanup_problems") or [])
    return (f"; CLEANUP {str(state).upper()}: {problems or 'see the events table'} "
            "(`osbench cleanup RUN` deletes what is left)")
