"""Reading runs back: `load(run_dir)` -> manifest and tables as DataFrames.

Reports and comparisons are built from here alone, never from a live run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osbench.errors import UserError
from osbench.journal import EVENTS, MANIFEST, SCHEMA_VERSION

#: Upgrade steps: version N -> a function turning a v N manifest (and events)
#: into v N+1. Empty while only version 1 exists.
_UPGRADES: dict[int, Callable[[dict[str, Any], list[dict[str, Any]]], None]] = {}


@dataclass
class Run:
    """One run read from disk."""

    path: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    #: True when the run never finished (killed, crashed, or still running).
    incomplete: bool
    #: Lines of events.jsonl that could not be read (a write cut by a kill).
    unreadable_lines: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.path.name))

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    def table(self, name: str) -> pd.DataFrame:
        """Table `name`, or an empty DataFrame when the run wrote no rows of it."""
        return self.tables.get(name, pd.DataFrame())


def load(run_dir: str | Path) -> Run:
    """Read `run_dir`; refuses a newer schema, upgrades older ones, reads killed runs."""
    path = Path(run_dir)
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not a run directory (no {MANIFEST})",
                        hint="pass a directory under results/") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{manifest_path}: unreadable manifest: {exc}") from None
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise UserError(f"{manifest_path}: no schema_version; not an osbench result")
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{path}: written by a newer osbench (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION})",
            hint="upgrade osbench to read it",
        )
    events, unreadable = _read_events(path / EVENTS)
    notes = []
    while version < SCHEMA_VERSION:
        _UPGRADES[version](manifest, events)
        notes.append(f"upgraded from schema {version}")
        version += 1
        manifest["schema_version"] = version
    incomplete = manifest.get("status") == "running"
    if incomplete:
        notes.append("incomplete: the run did not finish (killed or still running)")
    if unreadable:
        notes.append(f"{unreadable} unreadable line(s) in {EVENTS} skipped")
    return Run(path=path, manifest=manifest, tables=_tables(events), incomplete=incomplete,
               unreadable_lines=unreadable, notes=notes)


def _read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    events: list[dict[str, Any]] = []
    unreadable = 0
    try:
        f = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return events, 0
    with f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1
                continue
            if isinstance(event, dict) and isinstance(event.get("table"), str):
                events.append(event)
            else:
                unreadable += 1
    return events, unreadable


def _tables(events: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        table = event.pop("table")
        rows[table].append(event)
    tables = {}
    for name, table_rows in rows.items():
        df = pd.DataFrame.from_records(table_rows)
        for column in df.columns:
            if str(column).endswith("_at"):
                df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601")
        tables[name] = df
    return tables
