"""Reading runs back: schema checks, cut-off lines, killed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osbench import results
from osbench.errors import UserError
from osbench.journal import SCHEMA_VERSION, Journal


def make_run(tmp_path: Path) -> Journal:
    journal = Journal.create(tmp_path, "run-1", {"scenario": {"name": "x"}})
    journal.record("samples", {"case": "a", "value": 1.5, "nan": float("nan")})
    journal.record("samples", {"case": "a", "value": 2.5, "nan": 1.0})
    journal.record("other", {"case": "a", "seen_at": "2026-11-24T03:00:00+00:00"})
    return journal


def test_finished_run_round_trips(tmp_path: Path) -> None:
    journal = make_run(tmp_path)
    journal.finish("completed")
    run = results.load(tmp_path / "run-1")
    assert not run.incomplete
    assert run.status == "completed"
    assert run.table("samples")["value"].tolist() == [1.5, 2.5]
    assert run.table("samples")["nan"].isna().tolist() == [True, False]
    assert str(run.table("other")["seen_at"].dtype) == "datetime64[us, UTC]"
    assert run.table("absent").empty


def test_unfinished_run_is_incomplete_and_cut_line_is_skipped(tmp_path: Path) -> None:
    journal = make_run(tmp_path)
    journal.close()  # the process died before finish()
    with (tmp_path / "run-1" / "events.jsonl").open("a") as f:
        f.write('{"table": "samples", "case": "a", "val')  # a write cut by kill -9
    run = results.load(tmp_path / "run-1")
    assert run.incomplete
    assert run.unreadable_lines == 1
    assert len(run.table("samples")) == 2
    assert "1 unreadable line(s) in events.jsonl skipped" in run.notes


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    make_run(tmp_path).finish("completed")
    path = tmp_path / "run-1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(UserError) as exc:
        results.load(tmp_path / "run-1")
    assert str(exc.value) == (
        f"{tmp_path / 'run-1'}: written by a newer osbench (schema {SCHEMA_VERSION + 1}, "
        f"this one reads up to {SCHEMA_VERSION}) (upgrade osbench to read it)")


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run directory"):
        results.load(tmp_path)


def test_journal_refuses_writes_after_finish(tmp_path: Path) -> None:
    journal = make_run(tmp_path)
    journal.finish("completed")
    with pytest.raises(RuntimeError, match="closed"):
        journal.record("samples", {"value": 3})
