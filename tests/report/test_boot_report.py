"""The boot kind's tables and figures, on journal-written runs with known contents."""

from __future__ import annotations

import numpy as np

from osbench import results
from osbench.kinds.boot import report as boot_module
from osbench.report import FigureOptions, markdown
from osbench.report.build import build_report

OUTCOME_TABLE = """\
| run | case | status | requested | ok | error | no_phone_home | not_created | build_timeout |
|---|---|---|---:|---|---|---|---|---|
| boot-test | count=10 | completed | 10 | 6 (60.0%) | 2 (20.0%) | 1 (10.0%) | 1 (10.0%) | 0 (0.0%) |
| boot-test | count=0 | completed | 0 | 0 | 0 | 0 | 0 | 0 |
"""


def test_outcome_table_golden(boot: results.Run) -> None:
    assert markdown.table(boot_module.outcome_table([boot])) == OUTCOME_TABLE


def test_killed_run_outcomes_say_incomplete(killed_boot: results.Run) -> None:
    table = boot_module.outcome_table([killed_boot]).set_index("case")
    assert killed_boot.incomplete
    assert table.loc["count=0", "status"] == "incomplete"
    assert table.loc["count=0", "requested"] == 0


def test_fault_messages_group_without_their_uuids(boot: results.Run) -> None:
    reasons = boot_module.failure_reasons([boot])
    assert reasons.to_dict("records") == [
        {"series": "count=10", "reason": "error: Build of instance <uuid> aborted: Failed to "
         "allocate the network(s), not rescheduling.", "count": 2},
        {"series": "count=10", "reason": "no_phone_home: dhcp_timeout", "count": 1},
        {"series": "count=10", "reason": "not_created", "count": 1},
    ]
    assert boot_module.console_classes([boot]).to_dict("records") == [
        {"series": "count=10", "console_class": "dhcp_timeout", "count": 1}]


def test_address_family_share(boot: results.Run) -> None:
    table = boot_module.address_families([boot]).set_index("series")
    assert table.loc["count=10", ["phone_homes", "ipv4", "ipv6"]].tolist() == [6, 5, 1]
    assert table.loc["count=10", "ipv6_pct"] == 16.7
    assert np.isnan(table.loc["count=0", "ipv6_pct"])


def test_504_is_marked_on_the_timeline_at_its_reply(boot: results.Run) -> None:
    plot = boot_module.timeline_figure([boot], FigureOptions())
    marks = plot.data[plot.data["event"] == "create HTTP 504"]
    assert marks["t_s"].tolist() == [61.0]  # reply 62.0 s after a request sent at 1.0 s
    lines = [line for ax in plot.figure.axes for line in ax.get_lines()
             if line.get_label() == "count=10: create HTTP 504"]
    assert len(lines) == 2  # one per panel
    assert {tuple(line.get_xdata()) for line in lines} == {(61.0, 61.0)}
    active = plot.data[plot.data["event"] == "active"]
    assert active["count"].max() == 7  # 6 ok + the silent one went ACTIVE


def test_timeline_axes_say_modelled_seconds(boot: results.Run) -> None:
    plot = boot_module.timeline_figure([boot], FigureOptions())
    assert all("modelled s" in ax.get_xlabel() for ax in plot.figure.axes[:2])


def test_report_figures_and_titles(boot: results.Run) -> None:
    report = build_report([boot])
    assert [p.title for p in report.plots] == [
        "Instances ACTIVE and phoned home over time",
        "Time to ACTIVE and to phone-home (CDF)",
        "Why instances did not start",
        "Phone-homes by address family",
    ]
    assert [p.figure.get_suptitle() for p in report.plots] == [p.title for p in report.plots]


def test_several_runs_share_figures(sim_runs: list[results.Run]) -> None:
    """Finding 1 and its fix side by side: one line per run in the same panels."""
    plot = boot_module.timeline_figure(sim_runs, FigureOptions())
    labels = {line.get_label() for line in plot.figure.axes[1].get_lines()}
    assert labels == {"seed-replay-1-small-pets-100", "seed-replay-2-big-pets-100"}
    outcomes = boot_module.outcome_table(sim_runs).set_index("run")
    small_ok = int(outcomes.loc["seed-replay-1-small-pets-100", "ok"].split()[0])
    assert 90 <= small_ok <= 99  # finding 1's shape: a few of 100 never start
    assert outcomes.loc["seed-replay-2-big-pets-100", "ok"] == "100 (100.0%)"
    cdf = boot_module.cdf_figure(sim_runs, FigureOptions())
    phoned = cdf.data[cdf.data["metric"] == "time_to_phone_home_s"]
    assert phoned.groupby("series")["fraction"].max().tolist() == [1.0, 1.0]
