"""The boot kind's chapters of the field-notes story (findings 1, 2, 3, 5 and 6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from osbench.compare import compare
from osbench.kinds.boot import report
from osbench.kinds.rootwrap.story import ratio_sentence
from osbench.report.model import Item, Table
from osbench.report.story import Chapter, named, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run


def _outcomes(run: Run) -> list[tuple[str, int, Counter[str]]]:
    """(case, requested, outcome counts) per case of one boot run."""
    return [(series.case, requested, counts)
            for series, requested, counts in report.outcome_counts([run])]


def _started(run: Run) -> str:
    """'name: 97 of 100 started' (per case, joined) for a boot run."""
    parts = []
    for case, requested, counts in _outcomes(run):
        name = str(run.manifest.get("scenario", {}).get("name") or run.run_id)
        where = f"{name}: " if case == "default" else f"{name} {case}: "
        parts.append(f"{where}{counts['ok']} of {requested} started")
    return "; ".join(parts) or "no instances recorded"


def _small_pets(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    runs = sorted(runs, key=lambda run: str(run.manifest["scenario"]["name"]))  # small first
    lines = []
    for run in runs:
        for _, requested, counts in _outcomes(run):
            not_started = requested - counts["ok"]
            lines.append(f"{run.manifest['scenario']['name']}: {not_started} of {requested} "
                         "did not start")
    items: list[Item] = [
        renamed(report.timeline_figure(runs, options), "finding-1-timeline"),
        Table("finding-1-outcomes", "Outcomes: small pets, then big pets",
              report.outcome_table(runs)),
    ]
    if len(runs) == 2:
        items.append(Table("finding-1-compare", "Big pets against small pets "
                           "(osbench compare: is the fix real?)", compare(*runs)))
    return "; ".join(lines) + ".", items


def _silent(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    lines = []
    for run in runs:
        for _, requested, counts in _outcomes(run):
            active = counts["ok"] + counts["no_phone_home"]
            lines.append(f"{active} of {requested} ACTIVE, {counts['ok']} phoned home, "
                         f"{counts['no_phone_home']} silent")
    classes = report.console_classes(runs)
    if not classes.empty:
        lines.append("console logs of the silent ones: " + ", ".join(
            f"{row.console_class} {row.count}" for row in classes.itertuples(index=False)))
    return "; ".join(lines) + ".", [
        renamed(report.timeline_figure(runs, options), "finding-2-timeline"),
        Table("finding-2-console", "Console-log classes of the silent instances", classes),
    ]


def _vif_fatal(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    lines = []
    for run in runs:
        for _, requested, counts in _outcomes(run):
            lines.append(f"{counts['error']} of {requested} went to ERROR, "
                         f"{counts['no_phone_home']} booted without an address")
    reasons = report.failure_reasons(runs)
    if not reasons.empty:
        top = reasons.iloc[0]
        lines.append(f"most frequent reason ({int(top['count'])}): "
                     f"{str(top['reason']).rstrip('.')}")
    return "; ".join(lines) + ".", [
        renamed(report.failure_figure(runs, options), "finding-3-failures"),
        Table("finding-3-reasons", "Failure reasons", reasons),
    ]


def _daemon(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    probes = [run for run in runs if of_kind("rootwrap")(run)]
    boots = [run for run in runs if of_kind("boot")(run)]
    lines = [ratio_sentence(probes, "daemon")] if probes else []
    lines.extend(_started(run) for run in boots)
    items: list[Item] = []
    if boots:
        items.append(renamed(report.timeline_figure(boots, options), "finding-5-timeline"))
        items.append(Table("finding-5-outcomes", "Outcomes with the rootwrap daemon",
                           report.outcome_table(boots)))
    return "; ".join(lines) + ".", items


def _gateway_timeout(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    errors = report.create_errors(runs)
    unknown = errors[errors["outcome"].astype(str) == "unknown"]
    lines = [f"create request answered {status!s} after {float(t_s):.0f} s (outcome unknown, "
             "not re-sent)" for status, t_s in zip(unknown["status"], unknown["t_s"], strict=True)]
    lines.extend(_started(run) for run in runs)
    return "; ".join(lines) + ".", [
        renamed(report.timeline_figure(runs, options), "finding-6-timeline"),
        Table("finding-6-creates", "Create requests", errors),
    ]


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(1, "100 instances on small control-plane pets: 4 to 7 never start",
            "100 instances in one request with Nova and Neutron pets of 4 cores / 8 GB: "
            "every run, 4 to 7 instances did not start; raising the pets to 16 cores / "
            "16 GB fixed 100.",
            named("seed-replay-1-small-pets-100", "seed-replay-2-big-pets-100"),
            "scenarios/seed-replay/01-small-pets-100.yaml and 02-big-pets-100.yaml",
            _small_pets),
    Chapter(2, "200 instances: all ACTIVE, some never phone home",
            "All 200 reported ACTIVE by the API, but 8 to 20 never phoned home: their "
            "consoles showed the DHCP client giving up after 300 s, as Nova had marked "
            "them running while their ports were still BUILD.",
            named("seed-replay-3-big-pets-200"),
            "scenarios/seed-replay/03-big-pets-200.yaml", _silent),
    Chapter(3, "vif_plugging_is_fatal: the same instances go to ERROR",
            "With Nova waiting for network-vif-plugged (vif_plugging_is_fatal = True, "
            "timeout 300 s), the same instances went to ERROR instead of booting without "
            "an address: the bottleneck is allocating 200 ports.",
            named("seed-replay-4-vif-fatal-200"),
            "scenarios/seed-replay/04-vif-fatal-200.yaml", _vif_fatal),
    Chapter(5, "Fix: the rootwrap daemon; 200, 400 and 1000 all start",
            "With root_helper_daemon (neutron-rootwrap-daemon) in neutron.conf [agent], "
            "200, 400 and 1000 instances all started.",
            lambda run: of_kind("rootwrap")(run) or named(
                "seed-replay-5-rootwrap-daemon", "seed-replay-6-rootwrap-daemon-1000")(run),
            "scenarios/seed-replay/05-rootwrap-daemon.yaml and 06-rootwrap-daemon-1000.yaml",
            _daemon),
    Chapter(6, "1000 instances: HTTP 504 on create, created anyway",
            "At 1000 the client got 504 Gateway Timeout from the reverse proxy; nova-api "
            "finished later with 200 and the instances were created anyway.",
            named("seed-replay-6-rootwrap-daemon-1000"),
            "scenarios/seed-replay/06-rootwrap-daemon-1000.yaml", _gateway_timeout),
)}
