"""`--story field-notes`: each finding with what the runs measured and its figure,
and `--compare`: later runs judged against the first. Finding 1 comes from real
seed-replay runs on the simulated cloud; 4 and 7 from journal-written runs.

A chapter's title and judgement are computed from its runs: the tests read the
expected numbers from the runs' own tables, for runs that agree with the field
notes and for runs that contradict them (one made for real on the simulated
cloud, the others journal-written with the counts that contradict each finding).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from osbench import results
from osbench.cli.program import main
from osbench.kinds.boot.story import BootCase, judge_silent, judge_small_pets
from osbench.kinds.netsweep.story import judge_queues
from osbench.kinds.rootwrap.story import Ratio, judge_daemon, judge_rootwrap
from osbench.report import Extras, build_report, html
from osbench.report.story import DIFFERS_MARK, stories
from tests.report.runs import outcomes_run, rootwrap_run

DIFFERS = "Differs from the field notes: "
AGREES = "Agrees with the field notes: "


@pytest.fixture
def probe(tmp_path: Path) -> results.Run:
    return results.load(rootwrap_run(tmp_path, "rw-run"))


def _chapters(runs: list[results.Run]) -> dict[int, tuple[str, list[str]]]:
    """Chapter number -> (section title, its notes): the field's findings, and the
    question it left open (chapter 8, "Question 8: How far does each fix go?")."""
    report = build_report(runs, extras=Extras(story="field-notes"))
    out = {}
    for section in report.sections:
        match = re.match(r"(?:Finding|Question) (\d): ", section.title)
        if match:
            out[int(match[1])] = (section.title, section.notes)
    return out


def _note(notes: list[str], lead: str) -> str:
    """The one note that starts with `lead`, or "" when none does."""
    found = [note for note in notes if note.startswith(lead)]
    assert len(found) <= 1, notes
    return found[0] if found else ""


def _lost(run: results.Run, case: str | None = None) -> int:
    """Instances of the run (or one case) that did not start, from its own table."""
    instances = run.table("instances")
    if case is not None:
        instances = instances[instances["case"] == case]
    return int((instances["outcome"] != "ok").sum())


def test_every_finding_has_a_chapter_measured_or_missing(
        sim_runs: list[results.Run], probe: results.Run, netsweep: results.Run) -> None:
    chapters = _chapters([*sim_runs, probe, netsweep])
    assert sorted(chapters) == [c.number for c in stories()["field-notes"]] == list(range(1, 9))
    small, big = (_lost(run) for run in sim_runs)
    assert 1 <= small <= 10 and big == 0  # the runs show the field's finding...
    title, notes = chapters[1]
    # ... so the title states their figures, and the field's are quoted as the field's.
    assert title == f"Finding 1: 100 instances on small pets: {small} of 100 never started; " \
                    "on big pets none"
    assert notes[0].startswith("Field notes: ") and "every run, 4 to 7 " in notes[0]
    assert f"seed-replay-1-small-pets-100: {small} of 100 did not start" in notes[1]
    assert "seed-replay-2-big-pets-100: 0 of 100 did not start" in notes[1]
    assert _note(notes, AGREES) == (
        f"{AGREES}on small pets a few never started, {small} of 100 (at most 10%; the field "
        "notes' runs lost 4 to 7 of 100); on big pets all 100 started.")
    assert not _note(notes, DIFFERS)
    # The journal-written probe: medians 48 ms direct, 713 ms rootwrap, 60 ms daemon.
    title, notes = chapters[4]
    assert title == ("Finding 4: Root cause: rootwrap's start-up makes each call 14.9x the "
                     "direct one")
    assert "direct 48.0 ms, rootwrap 713.0 ms (14.9x, median)" in " ".join(notes)
    assert "took 14.9x as long as direct, at least 5x" in _note(notes, AGREES)
    title, notes = chapters[5]  # the probe only: its daemon half, judged
    assert title == "Finding 5: Fix: the rootwrap daemon: calls 1.2x direct"
    assert "through the daemon the call took 1.2x as long as direct" in _note(notes, AGREES)
    assert "no run of scenarios/seed-replay/05-rootwrap-daemon.yaml" in " ".join(notes)
    title, notes = chapters[7]  # the lab's kernel variants, named as the field's kernels
    assert title == ("Finding 7: Throughput against NIC queues: kernel-3.13 3.3 Gb/s at 1 "
                     "queue, 3.6 at 8; kernel-4.4 3.2 Gb/s at 1 queue, 8.4 at 8")
    assert "kernel-4.4 went 2.6x from 1 to 8 queues, as kernel 4.4 scaled" in _note(
        notes, AGREES)
    for missing in (2, 3, 6, 8):
        title, notes = chapters[missing]
        assert "Not in this report: run scenarios/" in notes[-1]
        assert "Measured here" not in " ".join(notes) and DIFFERS_MARK not in title
    assert chapters[2][0] == "Finding 2: 200 instances on big pets: ACTIVE, and phoned home"


def test_a_run_that_contradicts_finding_one_says_so(
        sim_runs: list[results.Run], big_pets_on_small: results.Run) -> None:
    """For real: the big-pets scenario run on the small pets' profile loses some."""
    small, big = _lost(sim_runs[0]), _lost(big_pets_on_small)
    assert big >= 1
    title, notes = _chapters([sim_runs[0], big_pets_on_small])[1]
    assert title == (f"Finding 1: 100 instances on small pets: {small} of 100 never started; "
                     f"on big pets {big} of 100{DIFFERS_MARK}")
    assert _note(notes, DIFFERS) == (f"{DIFFERS}on big pets {big} of 100 never started; in "
                                     "the field notes the bigger pets fixed 100.")
    # The run overrode its scenario's profile, and the measured line says so.
    assert (f"seed-replay-2-big-pets-100 (simulated profile small-pets): {big} of 100 did "
            "not start") in notes[1]
    assert "none" not in title and "all 100 started" not in " ".join(notes)


@pytest.fixture
def contradicting(tmp_path: Path) -> list[results.Run]:
    """Runs under the seed-replay names whose counts contradict findings 1-6: small
    pets lose more than a few and big pets some, none is silent at 200, vif-fatal
    leaves some without an address, at 1000 no 504 and some never created, and
    rootwrap costs only twice direct."""
    made = [
        outcomes_run(tmp_path, "small", "seed-replay-1-small-pets-100",
                     {"default": {"ok": 77, "error": 20, "not_created": 3}}),
        outcomes_run(tmp_path, "big", "seed-replay-2-big-pets-100",
                     {"default": {"ok": 98, "error": 2}}),
        outcomes_run(tmp_path, "silent", "seed-replay-3-big-pets-200",
                     {"default": {"ok": 200}}),
        outcomes_run(tmp_path, "vif", "seed-replay-4-vif-fatal-200",
                     {"default": {"ok": 185, "error": 9, "no_phone_home": 6}}),
        outcomes_run(tmp_path, "daemon", "seed-replay-5-rootwrap-daemon",
                     {"count=200": {"ok": 200}, "count=400": {"ok": 396, "error": 4}}),
        outcomes_run(tmp_path, "daemon-1000", "seed-replay-6-rootwrap-daemon-1000",
                     {"default": {"ok": 990, "not_created": 10}}),
        rootwrap_run(tmp_path, "probe", samples={"direct": [48.0, 47.0, 50.0, 49.0, 46.0],
                                                 "rootwrap": [96.0, 94.0, 99.0, 97.0, 95.0],
                                                 "daemon": [60.0, 58.0, 62.0, 61.0, 59.0]}),
    ]
    return [results.load(path) for path in made]


def test_runs_that_contradict_each_finding_say_so_in_title_and_note(
        contradicting: list[results.Run]) -> None:
    small, big, silent, vif, daemon, daemon_1000, probe = contradicting
    samples = probe.table("samples")
    median = samples.groupby("mode")["latency_ms"].median()
    rootwrap_x = median["rootwrap"] / median["direct"]
    daemon_x = median["daemon"] / median["direct"]
    chapters = _chapters(contradicting)
    for number in (1, 2, 3, 4, 5, 6):
        title, notes = chapters[number]
        assert title.endswith(DIFFERS_MARK), title
        assert notes[0].startswith("Field notes: ") and notes[1].startswith("Measured here: ")
        assert notes[2].startswith(DIFFERS), notes  # the difference comes first
    lost_small, lost_big = _lost(small), _lost(big)
    title, notes = chapters[1]
    assert title == (f"Finding 1: 100 instances on small pets: {lost_small} of 100 never "
                     f"started; on big pets {lost_big} of 100{DIFFERS_MARK}")
    assert _note(notes, DIFFERS) == (
        f"{DIFFERS}on small pets {lost_small} of 100 never started, more than a few (over "
        "10%); in the field notes 4 to 7 of 100 did not; on big pets "
        f"{lost_big} of 100 never started; in the field notes the bigger pets fixed 100.")
    assert not _note(notes, AGREES)

    assert (silent.table("instances")["outcome"] == "ok").all()
    title, notes = chapters[2]
    assert title == ("Finding 2: 200 instances on big pets: all 200 ACTIVE, every ACTIVE one "
                     f"phoned home{DIFFERS_MARK}")
    assert "no ACTIVE instance was silent; in the field notes 8 to 20 of 200" in _note(
        notes, DIFFERS)
    assert _note(notes, AGREES) == f"{AGREES}all 200 ACTIVE."

    outcomes = vif.table("instances")["outcome"]
    errors, unaddressed = int((outcomes == "error").sum()), int(
        (outcomes == "no_phone_home").sum())
    title, notes = chapters[3]
    assert title == (f"Finding 3: vif_plugging_is_fatal, 200 instances: {errors} went to "
                     f"ERROR, {unaddressed} booted without an address{DIFFERS_MARK}")
    assert _note(notes, DIFFERS) == (f"{DIFFERS}{unaddressed} booted without an address even "
                                     "so; in the field notes none did.")

    title, notes = chapters[4]
    assert title == (f"Finding 4: Rootwrap's cost: each call {rootwrap_x:.1f}x the direct one"
                     f"{DIFFERS_MARK}")
    assert "Root cause" not in title
    assert (f"only {rootwrap_x:.1f}x as long as direct, under 5x: its start-up does not "
            "dominate") in _note(notes, DIFFERS)

    lost_400, lost_1000 = _lost(daemon, "count=400"), _lost(daemon_1000)
    title, notes = chapters[5]
    assert title == (f"Finding 5: The rootwrap daemon: calls {daemon_x:.1f}x direct; all 200 "
                     "started; "
                     f"at 400 {lost_400} never started; at 1000 {lost_1000} never started"
                     f"{DIFFERS_MARK}")
    assert "Fix" not in title
    assert _note(notes, DIFFERS) == (
        f"{DIFFERS}at 400, {lost_400} never started in seed-replay-5-rootwrap-daemon "
        "count=400; in the field notes all started; at 1000, "
        f"{lost_1000} never started in seed-replay-6-rootwrap-daemon-1000; in the field notes "
        "all started.")

    not_created = int((daemon_1000.table("instances")["outcome"] == "not_created").sum())
    title, notes = chapters[6]
    assert title == (f"Finding 6: 1000 instances: no HTTP 504 on create, {1000 - not_created} "
                     f"of 1000 created{DIFFERS_MARK}")
    assert _note(notes, DIFFERS) == (
        f"{DIFFERS}no create request was answered 504; in the field notes the proxy answered "
        f"504 at 1000; {not_created} of 1000 were never created; in the field notes all were.")


def test_the_markdown_shows_the_difference(contradicting: list[results.Run],
                                           tmp_path: Path) -> None:
    out = tmp_path / "rep"
    assert main(["report", *(str(r.path) for r in contradicting), "--out", str(out),
                 "--format", "md,html", "--story", "field-notes"]) == 0
    text = (out / "report.md").read_text()
    lost = _lost(contradicting[0])
    assert f"## Finding 1: 100 instances on small pets: {lost} of 100 never started" in text
    assert text.count(DIFFERS_MARK.strip() + "\n") == 6  # every heading of findings 1-6
    assert text.count(f"\n{DIFFERS}") == 6
    page = (out / "index.html").read_text()
    assert page.count(f"<p>{DIFFERS}") == 6


def test_finding_one_judges_the_fix_with_compare(sim_runs: list[results.Run]) -> None:
    report = build_report(list(reversed(sim_runs)), extras=Extras(story="field-notes"))
    (table,) = [t for t in report.tables if t.name == "finding-1-compare"]
    rate = table.frame.set_index("metric").loc["phone_home_ok_pct"]
    assert rate["baseline"] < 100 and rate["candidate"] == 100  # small pets is the baseline
    assert rate["verdict"] == "fixed"


def test_finding_one_shows_the_measured_cause_beside_the_symptom(
        sim_runs: list[results.Run]) -> None:
    """The seed-replay scenarios monitor the simulated cloud: the chapter names the
    saturated conductor on small pets, with its figures from the monitor table."""
    report = build_report(sim_runs, extras=Extras(story="field-notes"))
    (table,) = [t for t in report.tables if t.name == "finding-1-causes"]
    rows = table.frame.set_index("case")
    small = rows.loc["seed-replay-1-small-pets-100"]
    big = rows.loc["seed-replay-2-big-pets-100"]
    assert small["bottleneck named first"] == "saturation: nova-conductor"
    assert "MessagingTimeout" in small["symptom"]  # the builds that waited too long
    assert big["bottleneck named first"] == "no symptom: no bottleneck named"
    # The figure: how long each profile's conductor sat at >= 90%, from the samples.
    def saturated_samples(text: str) -> int:
        return sum(int(n) for n in re.findall(r"for (\d+) samples in a row", text))
    assert saturated_samples(small["control plane"]) >= 3 * max(
        1, saturated_samples(big["control plane"])), (small["control plane"],
                                                      big["control plane"])
    page = html.render(report)
    chapter = page[page.index("Finding 1: "):page.index("Finding 2")]
    assert "Cause, as the monitors measured it: seed-replay-1-small-pets-100: nova-conductor" in (
        chapter)


def test_story_figures_have_their_own_names(sim_runs: list[results.Run],
                                            probe: results.Run) -> None:
    report = build_report([*sim_runs, probe], extras=Extras(story="field-notes"))
    names = [p.name for p in report.plots]
    assert len(names) == len(set(names))
    assert {"finding-1-timeline", "finding-4-latency", "boot-timeline"} <= set(names)


def test_compare_section_judges_later_runs_against_the_first(
        sim_runs: list[results.Run], probe: results.Run) -> None:
    report = build_report([*sim_runs, probe], extras=Extras(compare=True))
    section = report.sections[-1]
    assert section.title == "Comparison against seed-replay-1-small-pets-100"
    assert any("a rootwrap run, not compared with a boot baseline" in n for n in section.notes)
    table = section.tables[0]  # then the monitors' peaks (the seed replay monitors)
    assert "fixed" in set(table.frame["verdict"])
    assert '<td class="pass">fixed</td>' in html.render(report)


def test_cli_story_and_compare_options(sim_runs: list[results.Run], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    code = main(["report", *(str(r.path) for r in sim_runs), "--out", str(out), "--format",
                 "md", "--story", "field-notes", "--compare", "--threshold",
                 "time_to_active_s:50"])
    assert code == 0
    text = (out / "report.md").read_text()
    assert "## Finding 1: " in text and "## Comparison against" in text
    assert (out / "figures" / "finding-1-timeline.png").exists()
    assert main(["report", str(sim_runs[0].path), "--threshold", "nope"]) == 2
    assert "--threshold 'nope' is not METRIC:PCT" in capsys.readouterr().err


def _case(requested: int, **outcomes: int) -> BootCase:
    return BootCase("c", requested, Counter({"ok": requested - sum(outcomes.values()),
                                             **outcomes}))


@pytest.mark.parametrize(("small_lost", "big_lost", "agrees"), [
    (1, 0, True), (10, 0, True),          # "a few": at least one, at most 10%
    (0, 0, False), (11, 0, False),        # none lost, or more than a few
    (5, 1, False),                        # big pets must lose none
])
def test_finding_one_judges_the_shape_not_the_field_figure(small_lost: int, big_lost: int,
                                                           agrees: bool) -> None:
    judgement = judge_small_pets([_case(100, error=small_lost)], [_case(100, error=big_lost)])
    assert (not judgement.differs) is agrees
    assert len(judgement.agrees) + len(judgement.differs) == 2  # one clause per case


def test_silent_minority_and_its_consoles() -> None:
    silent = BootCase("c", 200, Counter(ok=190, no_phone_home=10), dhcp_timeouts=6)
    assert not judge_silent([silent]).differs
    quiet_consoles = BootCase("c", 200, Counter(ok=190, no_phone_home=10), dhcp_timeouts=5)
    assert judge_silent([quiet_consoles]).differs  # not most of the silent ones
    assert judge_silent([_case(200, no_phone_home=100)]).differs  # half is not a minority


@pytest.mark.parametrize(("rootwrap_ms", "daemon_ms", "differs"), [
    (240.0, 144.0, 0), (239.0, 144.0, 1), (240.0, 145.0, 1), (100.0, 200.0, 2)])
def test_rootwrap_thresholds(rootwrap_ms: float, daemon_ms: float, differs: int) -> None:
    """Rootwrap at least 5x direct (48 ms), the daemon at most 3x."""
    judgement = (judge_rootwrap([Ratio("s", "rootwrap", 48.0, rootwrap_ms)])
                 + judge_daemon([Ratio("s", "daemon", 48.0, daemon_ms)]))
    assert len(judgement.differs) == differs and len(judgement.agrees) == 2 - differs


def test_netsweep_judges_series_named_after_the_field_kernels() -> None:
    stats = pd.DataFrame({
        "series": ["kernel-4.4"] * 2 + ["3.13.0-170"] * 2 + ["default"] * 2 + ["one"],
        "queues": [1, 8, 1, 8, 1, 8, 4], "n": [3] * 7,
        "mean_gbps": [3.0, 4.0, 3.0, 3.5, 3.0, 6.0, 2.0]})
    judgement = judge_queues(stats)
    assert judgement.differs == ("kernel-4.4 went 1.3x from 1 to 8 queues, under 1.5x; in "
                                 "the field notes kernel 4.4 scaled 2.6x",)
    assert judgement.agrees == ("3.13.0-170 went 1.2x from 1 to 8 queues, flat (under 1.25x) "
                                "as kernel 3.13 was",)
    assert [c.split(";")[0] for c in judgement.not_compared] == [
        "this lab went 2.0x from 1 to 8 queues",
        "one has rounds at fewer than two queue counts"]
