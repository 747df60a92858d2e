"""The field-notes story's chapter "How far does each fix go?" (issue 17): the
capacities side by side, told from the runs' search_summary tables, judged against
the brackets the field's steps put them in.

The real runs are the session's two seeds of scenarios/capacity/
seed-replay-search.yaml (tests/search/test_seed_replay_search.py runs them once);
the judgement's edges are checked on hand-made searches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench import results
from osbench.kinds.boot import capacity_story
from osbench.kinds.boot.capacity_story import Found, judge_capacities
from osbench.report.build import Extras, build_report
from osbench.report.model import Section
from osbench.report.story import stories
from tests.search.test_seed_replay_search import (
    PROFILES,
    SEEDS,
    Searched,
    capacities,
    distinct,
    searched_runs,
)

NUMBER = capacity_story.CHAPTER.number


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Searched:
    return searched_runs(tmp_path_factory.mktemp("capacity-searches"))


def chapter(runs: list[results.Run]) -> Section:
    report = build_report(runs, extras=Extras(story="field-notes"))
    (section,) = [s for s in report.sections if s.title.startswith(f"Question {NUMBER}: ")]
    return section


def test_the_chapter_closes_the_field_notes_story() -> None:
    story = stories()["field-notes"]
    assert story[-1] is capacity_story.CHAPTER
    assert story[-1].topic == "How far does each fix go?"


@pytest.mark.slow
def test_the_capacities_side_by_side_are_the_runs_summaries(runs: Searched) -> None:
    made = distinct(runs)  # each seed's sweep, split over two runs
    section = chapter(made)
    (table,) = section.tables
    frame = table.frame
    # One row per search, the field's configurations in the field's order, then seed.
    assert list(frame["profile"]) == [p for p in PROFILES for _ in SEEDS]
    for row in frame.to_dict("records"):
        summary = capacities(runs[(row["seed"], row["profile"])])[row["profile"]]
        assert row["capacity"] == f"{summary['capacity']:g}"
        assert row["first fail"] == f"{summary['first_fail']:g}"
        assert (row["points"], row["cases"], row["status"]) == (
            summary["points"], summary["cases"], "done")
        assert row["first fail missed"] == ("create_errors == 0"
                                            if row["profile"] == "rootwrap-daemon"
                                            else "phone_home_ok_pct == 100")

    def span(profile: str) -> str:
        values = sorted({int(capacities(runs[(seed, profile)])[profile]["capacity"])
                         for seed in SEEDS})
        return f"{values[0]}" if len(values) == 1 else f"{values[0]} to {values[-1]}"

    said = ", ".join(f"{p} {span(p)}" for p in PROFILES)
    # One seed end to end in the suite (tests/search/test_seed_replay_search.py).
    over = f" over {len(made)} runs" if len(made) > 1 else ""
    counted = f"({len(SEEDS)} runs)" if len(SEEDS) > 1 else f"(seed {SEEDS[0]})"
    which = (f"each of the {len(SEEDS)} seeds that searched all three" if len(SEEDS) > 1
             else f"seed {SEEDS[0]}")
    assert section.title == (f"Question {NUMBER}: How far does each fix go? "
                             f"Capacity within the SLA: {said}")
    notes = "\n".join(section.notes)
    assert section.notes[0].startswith("Field notes: The engineers stepped through")
    assert (f"Measured here: the largest count one create request brought up within the "
            f"SLA (phone_home_ok_pct == 100; create_errors == 0), to within 10{over}: "
            f"{said}.") in notes
    assert "Differs" not in notes and "Not compared" not in notes
    agrees = next(n for n in section.notes if n.startswith("Agrees with the field notes: "))
    for profile in PROFILES:
        assert f"{profile} capacity {span(profile)} {counted}" in agrees
    assert (f"each fix goes further, for {which}: "
            f"small-pets {span('small-pets')} < big-pets {span('big-pets')} < "
            f"rootwrap-daemon {span('rootwrap-daemon')}") in agrees


def test_without_a_search_run_the_chapter_says_what_to_run(tmp_path: Path) -> None:
    report = build_report([], extras=Extras(story="field-notes"))
    (section,) = [s for s in report.sections if s.title.startswith(f"Question {NUMBER}: ")]
    assert section.title == f"Question {NUMBER}: How far does each fix go?"
    assert "scenarios/capacity/seed-replay-search.yaml" in section.notes[-1]


def found(profile: str | None, capacity: int | None, *, seed: int = 0, status: str = "done",
          sla: tuple[str, ...] = ("phone_home_ok_pct == 100", "create_errors == 0"),
          label: str | None = None) -> Found:
    return Found(label=label or str(profile), profile=profile, seed=seed, capacity=capacity,
                 first_fail=None if capacity is None else capacity + 10, points=5, cases=5,
                 status=status, stopped_by="", sla=sla)


def test_a_capacity_outside_the_fields_steps_differs() -> None:
    judged = judge_capacities([found("small-pets", 120), found("big-pets", 90),
                               found("rootwrap-daemon", 1000)])
    assert judged.differs == (
        "small-pets (seed 0): capacity 120, not under 100; in the field notes 4 to 7 of 100 "
        "did not start",
        "big-pets (seed 0): capacity 90, not at least 100 and under 200; in the field notes "
        "100 started, 8 to 20 of 200 never phoned home",
        "rootwrap-daemon (seed 0): capacity 1000, not at least 400 and under 1000; in the "
        "field notes 400 started; at 1000 the create got a 504",
        "the fixes do not go further in turn (seed 0): small-pets 120, big-pets 90, "
        "rootwrap-daemon 1000")
    assert judged.agrees == ()


def test_1000_counts_as_a_pass_when_the_sla_ignores_create_errors() -> None:
    """The field's 1000 all started; only the 504 made it a failure."""
    judged = judge_capacities([found("rootwrap-daemon", 1000, sla=("phone_home_ok_pct == 100",))])
    assert judged.differs == ()
    assert judged.agrees == ("rootwrap-daemon capacity 1000 (seed 0), at least 400 and under "
                             "1000 as the field's steps say (400 started; at 1000 the create "
                             "got a 504)",)


def test_unfinished_and_unknown_searches_are_not_compared() -> None:
    judged = judge_capacities([
        found("big-pets", 150, status="interrupted"), found("small-pets", None),
        found(None, 25, label="minicloud-search-5-40")])
    assert judged.not_compared == (
        "big-pets (seed 0): the search ended interrupted, at least 150",
        "minicloud-search-5-40: capacity 25 (seed 0); no field step to set it against")
    # No capacity at or above start is below every bracket's floor: small pets' has none.
    assert judged.agrees == ("small-pets capacity none (seed 0), under 100 as the field's steps "
                             "say (4 to 7 of 100 did not start)",)
