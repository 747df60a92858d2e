"""The boot kind's chapters of the field-notes story (findings 1, 2, 3, 5 and 6, then
capacity_story's "How far does each fix go?").

Each chapter's title and "measured here" sentence are built from the runs' outcome
counts, and a pure `judge_*` function per finding sets those counts against the
shape of the field's finding (not its exact figures, which are quoted as theirs):
- 1: on small pets a few instances never start (at least one, at most 10%); on
  big pets none;
- 2: at 200, all ACTIVE, a minority silent, and most silent consoles show the
  DHCP client giving up;
- 3: with vif_plugging_is_fatal they go to ERROR (mostly Nova's network-allocation
  fault) and none boots without an address;
- 5: with the rootwrap daemon every case (200, 400, 1000) starts in full;
- 6: at 1000 the create is answered 504, and every instance is created anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from osbench.compare import compare
from osbench.kinds.boot import capacity_story, report
from osbench.kinds.boot.causes import causes, create_in_flight, dhcp_backlog, saturated
from osbench.kinds.boot.params import VIF_FAILURE
from osbench.kinds.rootwrap.story import Ratio, judge_daemon, ratio_sentence, ratios, times
from osbench.report.model import Item, Table
from osbench.report.series import case_rows
from osbench.report.story import Chapter, Judgement, Told, counted, named, of_kind, renamed
from osbench.report.style import FigureOptions
from osbench.results import Run

SMALL_100 = "seed-replay-1-small-pets-100"
BIG_100 = "seed-replay-2-big-pets-100"
BIG_200 = "seed-replay-3-big-pets-200"
VIF_FATAL_200 = "seed-replay-4-vif-fatal-200"
DAEMON = "seed-replay-5-rootwrap-daemon"
DAEMON_1000 = "seed-replay-6-rootwrap-daemon-1000"

#: "A few" of finding 1: at most this share of the request never starts (the
#: field's 4 to 7 of 100 is well inside it).
FEW_SHARE = 0.10


@dataclass(frozen=True)
class BootCase:
    """What the story needs of one case of a boot run, from its tables."""

    #: Scenario name, with the case when the scenario sweeps.
    label: str
    requested: int
    #: Instances per outcome (ok, error, no_phone_home, not_created, build_timeout).
    outcomes: Counter[str]
    #: Instances whose console log shows the DHCP client giving up.
    dhcp_timeouts: int = 0
    #: Instances whose fault is Nova's network-allocation failure (VIF_FAILURE).
    vif_failures: int = 0
    #: Create requests answered 504 Gateway Timeout.
    gateway_timeouts: int = 0

    @property
    def not_started(self) -> int:
        return self.requested - self.outcomes["ok"]

    @property
    def active(self) -> int:
        return self.outcomes["ok"] + self.outcomes["no_phone_home"]

    @property
    def created(self) -> int:
        return self.requested - self.outcomes["not_created"]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as strings ("" where missing), empty when the table has no such column."""
    if name not in frame.columns:
        return pd.Series([], dtype=str)
    return frame[name].fillna("").astype(str)


def _other_profile(run: Run) -> str:
    """' (simulated profile X)' when the run overrode its scenario's profile, whose name
    the chapters go by (e.g. `--sim-profile small-pets` on the big-pets scenario)."""
    wanted = (run.manifest.get("scenario", {}).get("target") or {}).get("sim_profile")
    used = sorted({str(t["profile"]) for t in run.manifest.get("targets", [])
                   if isinstance(t, dict) and t.get("profile")} - {str(wanted)})
    return f" (simulated profile {', '.join(used)})" if wanted and used else ""


def boot_cases(runs: Sequence[Run]) -> list[BootCase]:
    """One BootCase per case of every run, in order, from the instances and creates
    tables."""
    out = []
    for series, requested, counts in report.outcome_counts(runs):
        run = series.run
        name = str(run.manifest.get("scenario", {}).get("name") or run.run_id)
        instances = case_rows(run.table("instances"), series.case)
        creates = case_rows(run.table("creates"), series.case)
        out.append(BootCase(
            label=(name if series.case == "default" else f"{name} {series.case}")
            + _other_profile(run),
            requested=requested, outcomes=counts,
            dhcp_timeouts=int((_column(instances, "console_class") == "dhcp_timeout").sum()),
            vif_failures=int(_column(instances, "fault").str.contains(
                VIF_FAILURE, regex=False).sum()),
            # Journaled as a number; a float column prints it as "504.0".
            gateway_timeouts=int((pd.to_numeric(creates["status"], errors="coerce") == 504)
                                 .sum()) if "status" in creates.columns else 0))
    return out


def _cases(runs: Sequence[Run], *names: str) -> list[BootCase]:
    return boot_cases([run for run in runs if named(*names)(run)])


def _where(case: BootCase, cases: Sequence[BootCase]) -> str:
    """' in <label>' when the clause could be about more than one case."""
    return f" in {case.label}" if len(cases) > 1 else ""


def _of(counts: Sequence[int], cases: Sequence[BootCase]) -> str:
    """'8 of 100', '8 and 5 of 100' or '8 of 100 and 5 of 50'."""
    sizes = {case.requested for case in cases}
    if len(sizes) == 1:
        return f"{counted(counts)} of {sizes.pop()}"
    return counted([f"{n} of {case.requested}" for n, case in zip(counts, cases, strict=True)])


def _instances(cases: Sequence[BootCase]) -> str:
    """'100 instances' when every case asked for the same count."""
    sizes = {case.requested for case in cases}
    return f"{sizes.pop()} instances" if len(sizes) == 1 else "Instances"


# Finding 1 ----------------------------------------------------------------------

def judge_small_pets(small: Sequence[BootCase], big: Sequence[BootCase]) -> Judgement:
    """Small pets lose a few (1 to 10% never start); big pets lose none."""
    agrees, differs = [], []
    for case in small:
        lost, where = case.not_started, _where(case, small)
        if lost == 0:
            differs.append(f"on small pets all {case.requested} started{where}; in the "
                           "field notes 4 to 7 of 100 did not start, every run")
        elif lost > FEW_SHARE * case.requested:
            differs.append(f"on small pets {lost} of {case.requested} never started{where}, "
                           f"more than a few (over {FEW_SHARE:.0%}); in the field notes 4 "
                           "to 7 of 100 did not")
        else:
            agrees.append(f"on small pets a few never started{where}, {lost} of "
                          f"{case.requested} (at most {FEW_SHARE:.0%}; the field notes' runs "
                          "lost 4 to 7 of 100)")
    for case in big:
        lost, where = case.not_started, _where(case, big)
        if lost:
            differs.append(f"on big pets {lost} of {case.requested} never started{where}; "
                           "in the field notes the bigger pets fixed 100")
        else:
            agrees.append(f"on big pets all {case.requested} started{where}")
    missing = [f"{pets} pets: no run of scenarios/seed-replay/{scenario}" for pets, cases,
               scenario in (("small", small, "01-small-pets-100.yaml"),
                            ("big", big, "02-big-pets-100.yaml")) if not cases]
    return Judgement(tuple(agrees), tuple(differs), tuple(missing))


def _small_pets_title(small: Sequence[BootCase], big: Sequence[BootCase]) -> str:
    """'100 instances on small pets: 8 of 100 never started; on big pets none'."""
    clauses = []
    elided = False
    for pets, cases in (("small", small), ("big", big)):
        if not cases:
            continue
        lost = [case.not_started for case in cases]
        if not any(lost):
            clauses.append((pets, "none" if elided else "all started"))
        else:
            clauses.append((pets, _of(lost, cases) + ("" if elided else " never started")))
            elided = True
    (pets, phrase), *rest = clauses
    return f"{_instances([*small, *big])} on {pets} pets: {phrase}" + "".join(
        f"; on {pets} pets {phrase}" for pets, phrase in rest)


def _small_pets(runs: Sequence[Run], options: FigureOptions) -> Told:
    runs = sorted(runs, key=lambda run: str(run.manifest["scenario"]["name"]))  # small first
    small, big = _cases(runs, SMALL_100), _cases(runs, BIG_100)
    lines = [f"{case.label}: {case.not_started} of {case.requested} did not start"
             for case in [*small, *big]]
    items: list[Item] = [
        renamed(report.timeline_figure(runs, options), "finding-1-timeline"),
        Table("finding-1-outcomes", "Outcomes: small pets, then big pets",
              report.outcome_table(runs)),
    ]
    if len(runs) == 2:
        items.append(Table("finding-1-compare", "Big pets against small pets "
                           "(osbench compare: is the fix real?)", compare(*runs)))
    cause, tables = causes(runs, "finding-1", saturated("nova-conductor"))
    return Told(_small_pets_title(small, big), "; ".join(lines) + ". " + cause,
                judge_small_pets(small, big), [*items, *tables])


# Finding 2 ----------------------------------------------------------------------

def judge_silent(cases: Sequence[BootCase]) -> Judgement:
    """All ACTIVE; a minority silent (at least one, under half); most of the silent
    ones' consoles show the DHCP client giving up."""
    agrees, differs = [], []
    for case in cases:
        where, silent = _where(case, cases), case.outcomes["no_phone_home"]
        if case.active == case.requested:
            agrees.append(f"all {case.requested} ACTIVE{where}")
        else:
            differs.append(f"{case.requested - case.active} of {case.requested} never "
                           f"became ACTIVE{where}; in the field notes all 200 did")
        if silent == 0:
            differs.append(f"no ACTIVE instance was silent{where}; in the field notes 8 to "
                           "20 of 200 never phoned home")
            continue
        if 2 * silent >= case.requested:
            differs.append(f"{silent} of {case.requested} never phoned home{where}, not a "
                           "minority; in the field notes 8 to 20 of 200 did not")
        else:
            agrees.append(f"a minority never phoned home{where}, {silent} of "
                          f"{case.requested} (the field notes: 8 to 20 of 200)")
        if 2 * case.dhcp_timeouts > silent:
            which = ("all" if case.dhcp_timeouts == silent
                     else f"{case.dhcp_timeouts} of the")
            agrees.append(f"the consoles of {which} {silent} silent instances show the "
                          f"DHCP client giving up{where}")
        else:
            differs.append(f"the consoles of only {case.dhcp_timeouts} of the {silent} "
                           f"silent instances show the DHCP client giving up{where}; in "
                           "the field notes theirs did")
    return Judgement(tuple(agrees), tuple(differs))


def _silent_title(cases: Sequence[BootCase]) -> str:
    """'200 instances on big pets: all 200 ACTIVE, 14 never phoned home'."""
    clauses = []
    for case in cases:
        active = (f"all {case.requested} ACTIVE" if case.active == case.requested
                  else f"{case.active} of {case.requested} ACTIVE")
        silent = case.outcomes["no_phone_home"]
        clauses.append(f"{active}, " + (f"{silent} never phoned home" if silent
                                         else "every ACTIVE one phoned home"))
    return f"{_instances(cases)} on big pets: " + "; ".join(clauses)


def _silent(runs: Sequence[Run], options: FigureOptions) -> Told:
    cases = boot_cases(runs)
    lines = [f"{case.active} of {case.requested} ACTIVE, {case.outcomes['ok']} phoned home, "
             f"{case.outcomes['no_phone_home']} silent" for case in cases]
    classes = report.console_classes(runs)
    if not classes.empty:
        lines.append("console logs of the silent ones: " + ", ".join(
            f"{row.console_class} {row.count}" for row in classes.itertuples(index=False)))
    cause, tables = causes(runs, "finding-2", dhcp_backlog)
    return Told(_silent_title(cases), "; ".join(lines) + ". " + cause, judge_silent(cases), [
        renamed(report.timeline_figure(runs, options), "finding-2-timeline"),
        Table("finding-2-console", "Console-log classes of the silent instances", classes),
        *tables,
    ])


# Finding 3 ----------------------------------------------------------------------

def judge_vif_fatal(cases: Sequence[BootCase]) -> Judgement:
    """Instances go to ERROR, mostly with Nova's network-allocation fault; none boots
    without an address."""
    agrees, differs = [], []
    for case in cases:
        where, error = _where(case, cases), case.outcomes["error"]
        silent = case.outcomes["no_phone_home"]
        if error == 0:
            differs.append(f"none of {case.requested} went to ERROR{where}; in the field "
                           "notes the instances whose ports were late did")
        elif 2 * case.vif_failures > error:
            agrees.append(f"{error} of {case.requested} went to ERROR{where}, "
                          f"{case.vif_failures} of them with \"{VIF_FAILURE}\"")
        else:
            differs.append(f"{error} went to ERROR{where} but only {case.vif_failures} with "
                           f"\"{VIF_FAILURE}\"; in the field notes the ports were the cause")
        if silent:
            differs.append(f"{silent} booted without an address{where} even so; in the "
                           "field notes none did")
        else:
            agrees.append(f"none booted without an address{where}")
    return Judgement(tuple(agrees), tuple(differs))


def _vif_fatal_title(cases: Sequence[BootCase]) -> str:
    """'vif_plugging_is_fatal, 200 instances: 19 went to ERROR, none booted without
    an address'."""
    clauses = []
    for case in cases:
        error, silent = case.outcomes["error"], case.outcomes["no_phone_home"]
        clauses.append((f"{error} went to ERROR" if error else "none went to ERROR") + ", "
                       + (f"{silent} booted without an address" if silent
                          else "none booted without an address"))
    return (f"vif_plugging_is_fatal, {_instances(cases).lower()}: " + "; ".join(clauses))


def _vif_fatal(runs: Sequence[Run], options: FigureOptions) -> Told:
    cases = boot_cases(runs)
    lines = [f"{case.outcomes['error']} of {case.requested} went to ERROR, "
             f"{case.outcomes['no_phone_home']} booted without an address" for case in cases]
    reasons = report.failure_reasons(runs)
    if not reasons.empty:
        top = reasons.iloc[0]
        lines.append(f"most frequent reason ({int(top['count'])}): "
                     f"{str(top['reason']).rstrip('.')}")
    cause, tables = causes(runs, "finding-3", dhcp_backlog)
    return Told(_vif_fatal_title(cases), "; ".join(lines) + ". " + cause,
                judge_vif_fatal(cases), [
                    renamed(report.failure_figure(runs, options), "finding-3-failures"),
                    Table("finding-3-reasons", "Failure reasons", reasons),
                    *tables,
                ])


# Finding 5 ----------------------------------------------------------------------

def _all_started(cases: Sequence[BootCase]) -> tuple[str, ...]:
    """('200, 400 and 1000 all started',) for the cases that started in full, or ()."""
    full = sorted(case.requested for case in cases if case.not_started == 0)
    if not full:
        return ()
    return (f"all {full[0]} started" if len(full) == 1 else f"{counted(full)} all started",)


def judge_all_start(cases: Sequence[BootCase]) -> Judgement:
    """With the daemon every instance of every case starts."""
    agrees = _all_started(cases)
    differs = tuple(f"at {case.requested}, {case.not_started} never started"
                    f"{_where(case, cases)}; in the field notes all started"
                    for case in cases if case.not_started)
    return Judgement(agrees, differs)


def _daemon_title(cases: Sequence[BootCase], daemon: Sequence[Ratio], fix: bool) -> str:
    """'Fix: the rootwrap daemon: calls 1.2x direct; 200, 400 and 1000 all started'."""
    clauses = []
    if daemon:
        clauses.append(f"calls {times(daemon)} direct")
    clauses.extend(_all_started(cases))
    clauses.extend(f"at {case.requested} {case.not_started} never started"
                   for case in cases if case.not_started)
    lead = "Fix: the rootwrap daemon" if fix else "The rootwrap daemon"
    return f"{lead}: " + "; ".join(clauses)


def _daemon(runs: Sequence[Run], options: FigureOptions) -> Told:
    probes = [run for run in runs if of_kind("rootwrap")(run)]
    boots = [run for run in runs if of_kind("boot")(run)]
    daemon = ratios(probes, "daemon")
    cases = boot_cases(boots)
    lines = [ratio_sentence(daemon, "daemon")] if probes else []
    lines.extend(f"{case.label}: {case.outcomes['ok']} of {case.requested} started"
                 for case in cases)
    judgement = ((judge_daemon(daemon) if probes else Judgement(not_compared=(
        "the daemon's cost per call: no rootwrap probe in this report "
        "(scenarios/rootwrap-probe.yaml)",)))
        + (judge_all_start(cases) if boots else Judgement(not_compared=(
            "whether 200, 400 and 1000 start: no run of scenarios/seed-replay/"
            "05-rootwrap-daemon.yaml or 06-rootwrap-daemon-1000.yaml",))))
    items: list[Item] = []
    measured = "; ".join(lines) + "."
    if boots:
        items.append(renamed(report.timeline_figure(boots, options), "finding-5-timeline"))
        items.append(Table("finding-5-outcomes", "Outcomes with the rootwrap daemon",
                           report.outcome_table(boots)))
        cause, tables = causes(boots, "finding-5", dhcp_backlog)
        measured += " " + cause
        items.extend(tables)
    return Told(_daemon_title(cases, daemon, not judgement.differs), measured,
                judgement, items)


# Finding 6 ----------------------------------------------------------------------

def judge_gateway_timeout(cases: Sequence[BootCase]) -> Judgement:
    """The create is answered 504; every instance is created anyway."""
    agrees, differs = [], []
    for case in cases:
        where = _where(case, cases)
        if case.gateway_timeouts:
            agrees.append(f"the create was answered 504{where}")
        else:
            differs.append(f"no create request was answered 504{where}; in the field notes "
                           "the proxy answered 504 at 1000")
        if case.created == case.requested:
            agrees.append(f"all {case.requested} were created{where}"
                          + (" anyway" if case.gateway_timeouts else ""))
        else:
            differs.append(f"{case.requested - case.created} of {case.requested} were never "
                           f"created{where}; in the field notes all were")
    return Judgement(tuple(agrees), tuple(differs))


def _gateway_timeout_title(cases: Sequence[BootCase]) -> str:
    """'1000 instances: HTTP 504 on create, all 1000 created anyway'."""
    clauses = []
    for case in cases:
        created = (f"all {case.requested} created" if case.created == case.requested
                   else f"{case.created} of {case.requested} created")
        if case.gateway_timeouts:
            clauses.append(f"HTTP 504 on create, {created}"
                           + (" anyway" if case.created == case.requested else ""))
        else:
            clauses.append(f"no HTTP 504 on create, {created}")
    return f"{_instances(cases)}: " + "; ".join(clauses)


def _gateway_timeout(runs: Sequence[Run], options: FigureOptions) -> Told:
    errors = report.create_errors(runs)
    cases = boot_cases(runs)
    unknown = errors[errors["outcome"].astype(str) == "unknown"]
    lines = [f"create request answered {status!s} after {float(t_s):.0f} s (outcome unknown, "
             "not re-sent)" for status, t_s in zip(unknown["status"], unknown["t_s"], strict=True)]
    lines.extend(f"{case.label}: {case.outcomes['ok']} of {case.requested} started"
                 for case in cases)
    cause, tables = causes(runs, "finding-6", create_in_flight)
    return Told(_gateway_timeout_title(cases), "; ".join(lines) + ". " + cause,
                judge_gateway_timeout(cases), [
                    renamed(report.timeline_figure(runs, options), "finding-6-timeline"),
                    Table("finding-6-creates", "Create requests", errors),
                    *tables,
                ])


#: Chapters by story name.
CHAPTERS: dict[str, tuple[Chapter, ...]] = {"field-notes": (
    Chapter(1, "100 instances on small control-plane pets, then on big ones",
            "100 instances in one request with Nova and Neutron pets of 4 cores / 8 GB: "
            "every run, 4 to 7 instances did not start; raising the pets to 16 cores / "
            "16 GB fixed 100.",
            named(SMALL_100, BIG_100),
            "scenarios/seed-replay/01-small-pets-100.yaml and 02-big-pets-100.yaml",
            _small_pets),
    Chapter(2, "200 instances on big pets: ACTIVE, and phoned home",
            "All 200 reported ACTIVE by the API, but 8 to 20 never phoned home: their "
            "consoles showed the DHCP client giving up after 300 s, as Nova had marked "
            "them running while their ports were still BUILD.",
            named(BIG_200), "scenarios/seed-replay/03-big-pets-200.yaml", _silent),
    Chapter(3, "200 instances with vif_plugging_is_fatal",
            "With Nova waiting for network-vif-plugged (vif_plugging_is_fatal = True, "
            "timeout 300 s), the same instances went to ERROR instead of booting without "
            "an address: the bottleneck is allocating 200 ports.",
            named(VIF_FATAL_200), "scenarios/seed-replay/04-vif-fatal-200.yaml", _vif_fatal),
    Chapter(5, "The rootwrap daemon at 200, 400 and 1000 instances",
            "With root_helper_daemon (neutron-rootwrap-daemon) in neutron.conf [agent], "
            "200, 400 and 1000 instances all started.",
            lambda run: of_kind("rootwrap")(run) or named(DAEMON, DAEMON_1000)(run),
            "scenarios/seed-replay/05-rootwrap-daemon.yaml and 06-rootwrap-daemon-1000.yaml",
            _daemon),
    Chapter(6, "1000 instances in one request behind a proxy",
            "At 1000 the client got 504 Gateway Timeout from the reverse proxy; nova-api "
            "finished later with 200 and the instances were created anyway.",
            named(DAEMON_1000), "scenarios/seed-replay/06-rootwrap-daemon-1000.yaml",
            _gateway_timeout),
    capacity_story.CHAPTER,  # not a finding: the capacities the fixes reach (issue 17)
)}
