"""`--story field-notes`: each finding with what the runs measured and its figure,
and `--compare`: later runs judged against the first. Finding 1 comes from real
seed-replay runs on the simulated cloud; 4 and 7 from journal-written runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from osbench import results
from osbench.cli import main
from osbench.report import Extras, build_report, html
from osbench.report.story import stories
from tests.report.runs import rootwrap_run


@pytest.fixture
def probe(tmp_path: Path) -> results.Run:
    return results.load(rootwrap_run(tmp_path, "rw-run"))


def _chapters(runs: list[results.Run]) -> dict[int, str]:
    report = build_report(runs, extras=Extras(story="field-notes"))
    out = {}
    for section in report.sections:
        match = re.match(r"Finding (\d): ", section.title)
        if match:
            out[int(match[1])] = " ".join(section.notes)
    return out


def test_every_finding_has_a_chapter_measured_or_missing(
        sim_runs: list[results.Run], probe: results.Run, netsweep: results.Run) -> None:
    chapters = _chapters([*sim_runs, probe, netsweep])
    assert sorted(chapters) == [c.number for c in stories()["field-notes"]] == list(range(1, 8))
    small = sim_runs[0].table("instances")
    not_started = int((small["outcome"] != "ok").sum())
    assert f"seed-replay-1-small-pets-100: {not_started} of 100 did not start" in chapters[1]
    assert "seed-replay-2-big-pets-100: 0 of 100 did not start" in chapters[1]
    # The journal-written probe: medians 48 ms direct, 713 ms rootwrap.
    assert "direct 48.0 ms, rootwrap 713.0 ms (14.9x, median)" in chapters[4]
    assert "Gb/s" in chapters[7]
    for missing in (2, 3, 6):
        assert "Not in this report: run scenarios/seed-replay/" in chapters[missing]
    assert "Measured here" not in chapters[2]


def test_finding_one_judges_the_fix_with_compare(sim_runs: list[results.Run]) -> None:
    report = build_report(list(reversed(sim_runs)), extras=Extras(story="field-notes"))
    (table,) = [t for t in report.tables if t.name == "finding-1-compare"]
    rate = table.frame.set_index("metric").loc["phone_home_ok_pct"]
    assert rate["baseline"] < 100 and rate["candidate"] == 100  # small pets is the baseline
    assert rate["verdict"] == "fixed"


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
    (table,) = section.tables
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
