"""Results written before the osbench restructure still load, render and compare.

tests/data/old-results/ holds results folders written by the `bench` package at
commit f555a5a (its README says how). Today's CLI renders them in a subprocess,
and the report's tables must show what each run journaled. The expected values are
read from the folders' own manifest.json and events.jsonl with json alone (not
with osbench), so a loader or renderer that lost or changed a value fails here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "old-results"
RUNS = sorted(p.parent for p in FIXTURES.glob("*/manifest.json"))
TIMEOUT_S = 300

Tables = dict[str, list[dict[str, Any]]]


def journal(run: Path) -> tuple[dict[str, Any], Tables]:
    """The manifest and every journaled row by table, as the old code wrote them."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    tables: Tables = {}
    for line in (run / "events.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            tables.setdefault(row.pop("table"), []).append(row)
    return manifest, tables


def kind(run: Path) -> str:
    return str(journal(run)[0]["scenario"]["kind"])


def cell(value: Any) -> str:
    """A number as the report prints it: a whole number bare, else 4 significant
    digits (whole from 1000 on)."""
    if value is None:
        return ""
    number = float(value)
    if math.isnan(number):
        return ""
    if number.is_integer():
        return str(int(number))
    return f"{number:.0f}" if abs(number) >= 1000 else f"{number:.4g}"


def row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def osbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "osbench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def digest(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())}


def render(out: Path, *runs: Path) -> str:
    """`osbench report RUN... --out OUT` in every format; the Markdown. Checks that
    the results folders are left as they were and every linked file was written."""
    before = {run: digest(run) for run in runs}
    proc = osbench("report", *map(str, runs), "--out", str(out),
                   "--format", "html,md,png,svg")
    assert proc.returncode == 0, proc.stderr
    assert {run: digest(run) for run in runs} == before, "report changed a results folder"
    text = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:figures|tables)/[^)]+)\)", text)
    assert links, "the report links no figure"
    for link in links:
        assert (out / link).stat().st_size > 0, link
    html = (out / "index.html").read_text(encoding="utf-8")
    for run in runs:
        assert journal(run)[0]["run_id"] in html
    return text


def table_rows(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the Markdown table under `#### title`."""
    lines = text.splitlines()
    start = lines.index(f"#### {title}") + 1
    while not lines[start].startswith("|"):
        start += 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return table[0], table[2:]


def test_the_fixture_holds_a_run_of_each_kind_that_runs_without_the_lab() -> None:
    assert sorted(kind(run) for run in RUNS) == ["boot", "rootwrap"]
    for run in RUNS:
        manifest, tables = journal(run)
        assert manifest["run_id"] == run.name
        assert manifest["osbench"]["commit"].startswith("f555a5a")
        assert manifest["status"] == "completed"
        assert tables["sla"]


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_provenance_and_sla_verdicts_are_the_journaled_ones(run: Path, tmp_path: Path) -> None:
    manifest, tables = journal(run)
    text = render(tmp_path / "report", run)
    scenario = manifest["scenario"]
    assert row("run", manifest["run_id"]) in text
    assert row("status", manifest["status"]) in text
    assert row("seed", manifest["seed"]) in text
    assert row("scenario", f"{scenario['name']} (kind {scenario['kind']}, "
                           f"file {scenario['file']})") in text
    assert f"commit {manifest['osbench']['commit'][:12]}" in text
    assert row("command", " ".join(manifest["command"])) in text
    for sla in tables["sla"]:
        assert row(sla["case"], sla["criterion"], f"{float(sla['measured']):.6g}",
                   "PASS" if sla["passed"] else "FAIL") in text


def test_boot_tables_show_the_journaled_outcomes(tmp_path: Path) -> None:
    (run,) = (r for r in RUNS if kind(r) == "boot")
    manifest, tables = journal(run)
    text = render(tmp_path / "report", run)
    (case,) = tables["cases"]
    instances = tables["instances"]
    requested = int(case["metric.requested"])
    assert requested == len(instances) == manifest["scenario"]["params"]["count"]
    outcomes = Counter(i["outcome"] for i in instances)
    assert len(outcomes) >= 3, "the fixture should have several outcomes"

    header, rows = table_rows(text, "Outcome per case")
    columns = header[header.index("requested") + 1:]
    assert set(outcomes) <= set(columns)
    assert rows == [[manifest["scenario"]["name"], case["case"], case["status"], str(requested),
                     *(f"{outcomes[c]} ({100.0 * outcomes[c] / requested:.1f}%)"
                       for c in columns)]]

    # Why instances did not start: per outcome, the counts add up to the journal's,
    # and each reason matches the faults or console classes it counts.
    _, reasons = table_rows(text, "Most frequent failure reasons")
    counted: Counter[str] = Counter()
    for series, reason, count in reasons:
        assert series == case["case"]
        outcome, _, detail = reason.partition(": ")
        field = "fault" if outcome == "error" else "console_class"
        pattern = re.escape(detail).replace(re.escape("<id>"), r"\S+")
        matching = [i for i in instances if i["outcome"] == outcome
                    and re.fullmatch(pattern, str(i[field]))]
        assert len(matching) == int(count), reason
        counted[outcome] += int(count)
    assert counted == Counter({o: n for o, n in outcomes.items() if o != "ok"})

    classes = Counter(i["console_class"] for i in instances if i["console_class"])
    _, rows = table_rows(text, "Console-log classes (no phone-home)")
    assert {r[1]: int(r[2]) for r in rows} == classes and classes

    (create,) = tables["creates"]
    _, rows = table_rows(text, "Create requests (outcome unknown: 504 or timeout, "
                               "reconciled by listing)")
    assert rows == [[case["case"], str(create["batch"]), str(create["size"]),
                     str(create["status"]), create["outcome"], cell(create["sent_s"]),
                     cell(create["reply_s"]), cell(create["reply_s"] - create["sent_s"]),
                     create["error"]]]
    assert create["status"] == 504

    arrivals = [p for p in tables["phone_home"] if not p["duplicate"]]
    families = Counter(p["address_family"] for p in arrivals)
    assert families["ipv4"] and families["ipv6"]
    assert len(arrivals) == outcomes["ok"]
    expected = [case["case"], str(len(arrivals)), str(families["ipv4"]), str(families["ipv6"]),
                cell(round(100.0 * families["ipv6"] / len(arrivals), 1))]
    _, rows = table_rows(text, "Phone-homes by address family")
    assert rows == [expected]
    for name in ("boot-timeline", "boot-cdf", "boot-failures", "boot-address-family"):
        assert (tmp_path / "report" / "figures" / f"{name}.png").stat().st_size > 0


def test_rootwrap_table_shows_the_journaled_modes(tmp_path: Path) -> None:
    (run,) = (r for r in RUNS if kind(r) == "rootwrap")
    manifest, tables = journal(run)
    text = render(tmp_path / "report", run)
    (case,) = tables["cases"]
    samples = Counter(s["mode"] for s in tables["samples"])
    assert list(samples) == manifest["scenario"]["params"]["modes"]
    _, rows = table_rows(text, "Latency per mode and ratio to direct (median)")
    assert rows == [[case["case"], m["mode"], str(m["n"]), cell(m["p50_ms"]), cell(m["p90_ms"]),
                     cell(m["p99_ms"]), cell(m["ratio"]), cell(m["ratio_ci_low"]),
                     cell(m["ratio_ci_high"])] for m in tables["modes"]]
    assert [int(r[2]) for r in rows] == [samples[m] for m in samples]
    assert (tmp_path / "report" / "figures" / "rootwrap-latency.png").stat().st_size > 0


def test_both_runs_render_in_one_report(tmp_path: Path) -> None:
    text = render(tmp_path / "report", *RUNS)
    for run in RUNS:
        assert row("run", journal(run)[0]["run_id"]) in text


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_a_run_compared_with_itself_is_noise(run: Path) -> None:
    proc = osbench("compare", str(run), str(run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    assert lines[0][:2] == ["case", "metric"], proc.stdout
    assert len(lines) > 1, proc.stdout
    for fields in lines[1:]:
        assert fields[0] == journal(run)[1]["cases"][0]["case"]
        assert fields[-1] == "noise", proc.stdout
