"""The audit's report: a one-line verdict, the drift table per role, the hosts
that did not answer, the exposure table (instance, hypervisor, port, expected,
seen), a figure of exposed instances per hypervisor, and the notes of the run
(e.g. probes skipped on the simulated cloud, and why). With two runs, what
changed between them: new drift, fixed drift, newly exposed, fixed.

Built from the journal alone (`drift`, `version_hosts`, `probes`, `audit_notes`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd
from matplotlib.ticker import MaxNLocator

from osbench.kinds.audit.run import metrics
from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.series import run_labels
from osbench.report.style import FigureOptions
from osbench.results import Run

DRIFT_COLUMNS = ["item_type", "item", "majority", "majority_hosts", "role_hosts", "host",
                 "value"]
EXPOSURE_COLUMNS = ["instance", "name", "hypervisor", "address", "protocol", "port",
                    "expected", "seen", "finding"]


def verdict(run: Run) -> str:
    """One line: what the audit found, or that it found nothing, and what it could not see."""
    tables = run.tables
    m = metrics({name: run.table(name) for name in tables})
    parts = []
    if "version_hosts" in tables:
        parts.append("versions not compared (no host answered)" if math.isnan(
            m["drifted_hosts"]) else "no version drift" if not m["drifted_hosts"] else
                     f"version drift on {m['drifted_hosts']:.0f} host(s): "
                     f"{m['drifted_packages']:.0f} package(s), {m['drifted_configs']:.0f} "
                     f"config(s), {m['drifted_kernels']:.0f} kernel role(s)")
        if m["hosts_unanswered"]:
            parts.append(f"{m['hosts_unanswered']:.0f} host(s) did not answer")
    if "instances" in tables or ("audit_notes" in tables and _firewall_ran(run)):
        if math.isnan(m["instances_in_scope"]):
            parts.append("firewall check failed before reading the scope (see the notes)")
        elif not m["instances_in_scope"]:
            parts.append("firewall: no instance in scope")
        elif "probes" not in tables:
            parts.append(f"firewall not probed ({m['instances_in_scope']:.0f} instance(s) "
                         "read from the API)")
        elif not (m["exposed_instances"] or m["unreachable_open_ports"]):
            parts.append(f"every probed instance enforced its security groups "
                         f"({m['instances_in_scope']:.0f} in scope)")
        else:
            parts.append(f"{m['exposed_instances']:.0f} exposed instance(s) "
                         f"({m['exposed_ports']:.0f} port(s)), "
                         f"{m['unreachable_open_ports']:.0f} unreachable open port(s), on "
                         f"{m['hypervisors_affected']:.0f} hypervisor(s)")
    return "; ".join(parts) or "nothing audited"


def _firewall_ran(run: Run) -> bool:
    notes = run.table("audit_notes")
    return bool(not notes.empty and (notes["check"] == "firewall").any())


def _stem(text: str) -> str:
    """`text` fit for a file name (tables are written as CSV under their name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def drift_tables(run: Run, label: str, k: int = 1) -> list[Table]:
    rows = run.table("drift")
    if rows.empty:
        return []
    return [Table(f"audit-drift-{k}-{_stem(str(role))}", f"Drift in role {role} ({label})",
                  group[DRIFT_COLUMNS].reset_index(drop=True),
                  note="each host whose value differs from the role's majority")
            for role, group in rows.groupby("role", sort=False)]


def exposures(run: Run) -> pd.DataFrame:
    probes = run.table("probes")
    if probes.empty:
        return pd.DataFrame(columns=EXPOSURE_COLUMNS)
    found = probes[probes["finding"].isin(["exposed", "unreachable_open"])]
    return found[EXPOSURE_COLUMNS].sort_values(["hypervisor", "name", "port"]).reset_index(
        drop=True)


def _figure(runs: list[tuple[str, Run]], options: FigureOptions) -> Plot:
    """Bars of exposed instances per hypervisor, every probed hypervisor shown (a
    clean one at zero: the contrast is the finding), one bar per run."""
    figure, (ax,) = figures.new_figure(options, 1)
    figure.suptitle("Exposed instances per hypervisor")
    data = []
    for label, run in runs:
        probes = run.table("probes")
        if probes.empty:
            continue
        exposed = probes[probes["finding"] == "exposed"]
        counts = exposed.groupby("hypervisor")["instance"].nunique()
        data += [{"run": label, "hypervisor": h, "exposed_instances": int(counts.get(h, 0))}
                 for h in sorted(probes["hypervisor"].unique())]
    frame = pd.DataFrame(data, columns=["run", "hypervisor", "exposed_instances"])
    if frame.empty:
        figures.no_data(ax, "nothing probed")
    else:
        hosts = sorted(frame["hypervisor"].unique())
        labels = list(dict.fromkeys(frame["run"]))
        width = 0.8 / len(labels)
        for k, label in enumerate(labels):
            mine = frame[frame["run"] == label].set_index("hypervisor")["exposed_instances"]
            ax.bar([i + k * width for i in range(len(hosts))],
                   [int(mine.get(h, 0)) for h in hosts], width=width, label=label)
        ax.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(hosts))], hosts,
                      rotation=30, ha="right")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("exposed instances")
        figures.legend_below(figure, [ax])
    return Plot("audit-exposed-per-hypervisor", "Exposed instances per hypervisor", figure,
                frame, caption="instances where a port their security groups close answered "
                               "a probe, per hypervisor that was probed")


def _diff(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of `after` not in `before` ("new") and of `before` not in `after` ("fixed")."""
    def keyed(frame: pd.DataFrame) -> dict[tuple[object, ...], dict[str, object]]:
        if frame.empty:
            return {}
        return {tuple(r[k] for k in keys): {k: r[k] for k in keys}
                for r in frame.to_dict("records")}

    old, new = keyed(before), keyed(after)
    rows = ([{"change": "new", **row} for key, row in new.items() if key not in old]
            + [{"change": "fixed", **row} for key, row in old.items() if key not in new])
    return pd.DataFrame(rows, columns=["change", *keys])


def changes(old: Run, new: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(drift changes, exposure changes) from `old` to `new`."""
    return (_diff(old.table("drift"), new.table("drift"),
                  ["role", "item_type", "item", "host", "value"]),
            _diff(exposures(old), exposures(new),
                  ["instance", "name", "address", "protocol", "port", "finding"]))


def sections(runs: Sequence[Run], options: FigureOptions) -> list[Section]:
    labels = run_labels(runs)
    section = Section("Audit: version drift and security-group enforcement")
    for k, (run, label) in enumerate(zip(runs, labels, strict=True), start=1):
        section.notes.append(f"{label}: {verdict(run)}")
        section.items += drift_tables(run, label, k)
        hosts = run.table("version_hosts")
        if not hosts.empty and (~hosts["answered"].astype(bool)).any():
            section.items.append(Table(f"audit-unanswered-{k}",
                                       f"Hosts that did not answer ({label})",
                                       hosts[~hosts["answered"].astype(bool)][
                                           ["host", "roles", "error"]].reset_index(drop=True)))
        found = exposures(run)
        if "probes" in run.tables:
            section.items.append(Table(f"audit-exposure-{k}",
                                       f"Exposure: ports whose answer contradicts the "
                                       f"security groups ({label})", found,
                                       note="seen: open (a service answered), refused (the "
                                            "packet reached the instance), filtered (dropped)"))
        notes = run.table("audit_notes")
        for note in notes.to_dict("records") if not notes.empty else []:
            section.notes.append(f"{label}: {note['check']} {note['level']}: {note['message']}")
    if any("probes" in run.tables for run in runs):
        section.items.append(_figure(list(zip(labels, runs, strict=True)), options))
    if len(runs) == 2:
        drift_change, exposure_change = changes(runs[0], runs[1])
        if any("version_hosts" in run.tables for run in runs):
            section.items.append(Table("audit-drift-changes",
                                       f"Drift: {labels[0]} -> {labels[1]}", drift_change))
        if any("probes" in run.tables for run in runs):
            section.items.append(Table("audit-exposure-changes",
                                       f"Exposure: {labels[0]} -> {labels[1]}",
                                       exposure_change))
    return [section]
