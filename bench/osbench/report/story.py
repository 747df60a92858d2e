"""Stories: a report's opening chapters that retell a known sequence of findings,
each with what was seen in the field, what these runs measured, and the figure that
shows it. `osbench report --story field-notes` (the demo) retells the field notes.

A chapter picks its runs from the report's runs by scenario name or kind, so the
story is built from results alone like the rest of the report. The sentence under
"measured here" is computed from those runs; a chapter whose runs are missing
says which scenario to run instead of showing an empty figure.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from osbench.compare import compare
from osbench.report import boot, netsweep, rootwrap
from osbench.report.model import Item, Plot, Section, Table
from osbench.report.series import kind_of
from osbench.report.style import FigureOptions
from osbench.results import Run

Select = Callable[[Run], bool]
Tell = Callable[[Sequence[Run], FigureOptions], tuple[str, list[Item]]]


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    #: What the field notes report (shown as quoted context).
    field: str
    #: Which runs show it, and where to get them when none does.
    select: Select
    missing: str
    #: The "measured here" sentence and the figures/tables, from the selected runs.
    tell: Tell


def _named(*names: str) -> Select:
    return lambda run: str(run.manifest.get("scenario", {}).get("name")) in names


def _kind(kind: str) -> Select:
    return lambda run: kind_of(run) == kind


def _outcomes(run: Run) -> list[tuple[str, int, Counter[str]]]:
    """(case, requested, outcome counts) per case of one boot run."""
    return [(series.case, requested, counts)
            for series, requested, counts in boot.outcome_counts([run])]


def _started(run: Run) -> str:
    """'name: 97 of 100 started' (per case, joined) for a boot run."""
    parts = []
    for case, requested, counts in _outcomes(run):
        name = str(run.manifest.get("scenario", {}).get("name") or run.run_id)
        where = f"{name}: " if case == "default" else f"{name} {case}: "
        parts.append(f"{where}{counts['ok']} of {requested} started")
    return "; ".join(parts) or "no instances recorded"


def _renamed(item: Item, name: str) -> Item:
    """The same figure or table under a chapter's own file name (no two files clash)."""
    return dataclasses.replace(item, name=name)


def _small_pets(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    runs = sorted(runs, key=lambda run: str(run.manifest["scenario"]["name"]))  # small first
    lines = []
    for run in runs:
        for _, requested, counts in _outcomes(run):
            not_started = requested - counts["ok"]
            lines.append(f"{run.manifest['scenario']['name']}: {not_started} of {requested} "
                         "did not start")
    items: list[Item] = [
        _renamed(boot.timeline_figure(runs, options), "finding-1-timeline"),
        Table("finding-1-outcomes", "Outcomes: small pets, then big pets",
              boot.outcome_table(runs)),
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
    classes = boot.console_classes(runs)
    if not classes.empty:
        lines.append("console logs of the silent ones: " + ", ".join(
            f"{row.console_class} {row.count}" for row in classes.itertuples(index=False)))
    return "; ".join(lines) + ".", [
        _renamed(boot.timeline_figure(runs, options), "finding-2-timeline"),
        Table("finding-2-console", "Console-log classes of the silent instances", classes),
    ]


def _vif_fatal(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    lines = []
    for run in runs:
        for _, requested, counts in _outcomes(run):
            lines.append(f"{counts['error']} of {requested} went to ERROR, "
                         f"{counts['no_phone_home']} booted without an address")
    reasons = boot.failure_reasons(runs)
    if not reasons.empty:
        top = reasons.iloc[0]
        lines.append(f"most frequent reason ({int(top['count'])}): "
                     f"{str(top['reason']).rstrip('.')}")
    return "; ".join(lines) + ".", [
        _renamed(boot.failure_figure(runs, options), "finding-3-failures"),
        Table("finding-3-reasons", "Failure reasons", reasons),
    ]


def _ratio_sentence(runs: Sequence[Run], mode: str) -> str:
    table = rootwrap.ratio_table(runs)
    lines = []
    for series, group in table.groupby("series", sort=False):
        p50 = dict(zip(group["mode"].astype(str), group["p50_ms"].astype(float), strict=True))
        if "direct" in p50 and mode in p50:
            direct, wrapped = p50["direct"], p50[mode]
            lines.append(f"{series!s}: direct {direct:.1f} ms, {mode} {wrapped:.1f} ms "
                         f"({wrapped / direct:.1f}x, median)")
    return "; ".join(lines) or f"no {mode} samples"


def _rootwrap_cost(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    return _ratio_sentence(runs, "rootwrap") + ".", [
        _renamed(rootwrap.latency_figure(rootwrap.latency_samples(runs), options),
                 "finding-4-latency"),
        Table("finding-4-ratios", "Latency per mode and ratio to direct",
              rootwrap.ratio_table(runs)),
    ]


def _daemon(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    probes = [run for run in runs if _kind("rootwrap")(run)]
    boots = [run for run in runs if _kind("boot")(run)]
    lines = [_ratio_sentence(probes, "daemon")] if probes else []
    lines.extend(_started(run) for run in boots)
    items: list[Item] = []
    if boots:
        items.append(_renamed(boot.timeline_figure(boots, options), "finding-5-timeline"))
        items.append(Table("finding-5-outcomes", "Outcomes with the rootwrap daemon",
                           boot.outcome_table(boots)))
    return "; ".join(lines) + ".", items


def _gateway_timeout(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    errors = boot.create_errors(runs)
    unknown = errors[errors["outcome"].astype(str) == "unknown"]
    lines = [f"create request answered {status!s} after {float(t_s):.0f} s (outcome unknown, "
             "not re-sent)" for status, t_s in zip(unknown["status"], unknown["t_s"], strict=True)]
    lines.extend(_started(run) for run in runs)
    return "; ".join(lines) + ".", [
        _renamed(boot.timeline_figure(runs, options), "finding-6-timeline"),
        Table("finding-6-creates", "Create requests", errors),
    ]


#: The field notes' table (Gb/s), for side-by-side reading with the sweep here.
FIELD_QUEUES = pd.DataFrame({"queues": [1, 2, 4, 8],
                             "kernel 3.13": [3.28, 3.41, 3.51, 3.57],
                             "kernel 4.4": [3.23, 6.00, 8.02, 8.42]})


def _queues(runs: Sequence[Run], options: FigureOptions) -> tuple[str, list[Item]]:
    stats = netsweep.throughput_stats(runs)
    lines = []
    for series, group in stats.groupby("series", sort=False):
        points = group[group["n"] > 0]
        name = "this lab" if series == "default" else str(series)
        lines.append(f"{name}: " + ", ".join(
            f"{queues} queue(s) {gbps:.1f} Gb/s" for queues, gbps in
            zip(points["queues"].astype(int), points["mean_gbps"].astype(float), strict=True)))
    plot: Plot = netsweep.throughput_figure(stats, options)
    return "; ".join(lines) + ".", [
        _renamed(plot, "finding-7-sweep"),
        Table("finding-7-throughput", "Summed goodput here, Gb/s (mean ± 95% half-width)",
              netsweep.throughput_table(stats)),
        Table("finding-7-field", "The field notes' table, Gb/s", FIELD_QUEUES),
    ]


FIELD_NOTES: tuple[Chapter, ...] = (
    Chapter(1, "100 instances on small control-plane pets: 4 to 7 never start",
            "100 instances in one request with Nova and Neutron pets of 4 cores / 8 GB: "
            "every run, 4 to 7 instances did not start; raising the pets to 16 cores / "
            "16 GB fixed 100.",
            _named("seed-replay-1-small-pets-100", "seed-replay-2-big-pets-100"),
            "scenarios/seed-replay/01-small-pets-100.yaml and 02-big-pets-100.yaml",
            _small_pets),
    Chapter(2, "200 instances: all ACTIVE, some never phone home",
            "All 200 reported ACTIVE by the API, but 8 to 20 never phoned home: their "
            "consoles showed the DHCP client giving up after 300 s, as Nova had marked "
            "them running while their ports were still BUILD.",
            _named("seed-replay-3-big-pets-200"),
            "scenarios/seed-replay/03-big-pets-200.yaml", _silent),
    Chapter(3, "vif_plugging_is_fatal: the same instances go to ERROR",
            "With Nova waiting for network-vif-plugged (vif_plugging_is_fatal = True, "
            "timeout 300 s), the same instances went to ERROR instead of booting without "
            "an address: the bottleneck is allocating 200 ports.",
            _named("seed-replay-4-vif-fatal-200"),
            "scenarios/seed-replay/04-vif-fatal-200.yaml", _vif_fatal),
    Chapter(4, "Root cause: every DHCP host-file update pays rootwrap's start-up",
            "Each port update runs `ip netns exec qdhcp-<uuid> ip route list` through "
            "neutron-rootwrap: 0.713 s instead of 0.048 s without it (about 15x).",
            _kind("rootwrap"), "scenarios/rootwrap-probe.yaml (as root)", _rootwrap_cost),
    Chapter(5, "Fix: the rootwrap daemon; 200, 400 and 1000 all start",
            "With root_helper_daemon (neutron-rootwrap-daemon) in neutron.conf [agent], "
            "200, 400 and 1000 instances all started.",
            lambda run: _kind("rootwrap")(run) or _named(
                "seed-replay-5-rootwrap-daemon", "seed-replay-6-rootwrap-daemon-1000")(run),
            "scenarios/seed-replay/05-rootwrap-daemon.yaml and 06-rootwrap-daemon-1000.yaml",
            _daemon),
    Chapter(6, "1000 instances: HTTP 504 on create, created anyway",
            "At 1000 the client got 504 Gateway Timeout from the reverse proxy; nova-api "
            "finished later with 200 and the instances were created anyway.",
            _named("seed-replay-6-rootwrap-daemon-1000"),
            "scenarios/seed-replay/06-rootwrap-daemon-1000.yaml", _gateway_timeout),
    Chapter(7, "Network node: throughput against NIC queues",
            "Six parallel TCP streams through the network node, summed, mean of ten runs, "
            "with 1, 2, 4, 8 queues (ethtool -L): kernel 4.4 scaled from 3.2 to 8.4 Gb/s, "
            "kernel 3.13 stayed near 3.5 Gb/s. On this lab's veth links (2 cores) no gain "
            "is expected: the sweep shows the mechanism, not a NIC.",
            _kind("netsweep"), "scenarios/netsweep-multiqueue.yaml (as root, on `osbench "
            "lab up`)", _queues),
)

STORIES: dict[str, tuple[Chapter, ...]] = {"field-notes": FIELD_NOTES}


def sections(story: Sequence[Chapter], runs: Sequence[Run],
             options: FigureOptions) -> list[Section]:
    """One section per chapter, in order; a chapter without runs says how to get them."""
    out = []
    for chapter in story:
        chosen = [run for run in runs if chapter.select(run)]
        title = f"Finding {chapter.number}: {chapter.title}"
        notes = [f"Field notes: {chapter.field}"]
        if not chosen:
            notes.append(f"Not in this report: run {chapter.missing} and report it with "
                         "the others.")
            out.append(Section(title, notes=notes))
            continue
        measured, items = chapter.tell(chosen, options)
        notes.append(f"Measured here: {measured}")
        out.append(Section(title, items, notes=notes))
    return out
