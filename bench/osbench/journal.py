"""The results journal: `results/<run-id>/` written as events happen.

Layout:
    manifest.json   what ran, where, with what (schema version, scenario as run,
                    target without secrets, provenance, times, final status);
                    rewritten atomically (temp file + rename) on every change
    events.jsonl    append-only, one JSON object per line: {"table": ..., ...row}

Every event is handed to the OS as soon as it is recorded (line-buffered
writes), so a `kill -9` loses nothing already recorded; only a crash of the
machine itself can lose the page cache, which `close()` guards with fsync.
A run that never reached `finish()` keeps `status: running`, and the loader
reports it as incomplete.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

#: Bump when the layout or the meaning of a field changes; add an upgrade step
#: to osbench.results for the previous version at the same time.
SCHEMA_VERSION = 1

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"


def new_run_id(slug: str, now: datetime | None = None) -> str:
    """`20261124T031500Z-boot-200-a1b2c3`: sortable, readable, unique."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{slug}-{secrets.token_hex(3)}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot journal {type(value).__name__}: {value!r}")


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON: journal them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _line(table: str, row: Mapping[str, Any]) -> str:
    """One journal line. NaN and infinities are rare: the row is cleaned only
    when dumping it as it is fails on one (cleaning each value always cost
    ~3 us of a phone-home's ~60 us, issue 19)."""
    try:
        return dumps({"table": table, **row}) + "\n"
    except ValueError:
        return dumps({"table": table, **{k: _clean(v) for k, v in row.items()}}) + "\n"


#: Made once: `json.dumps` with arguments makes an encoder per call, 0.7 of
#: the 3.1 us a phone-home row took (issue 19). It keeps no state between
#: calls, so threads share it.
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), allow_nan=False)


def dumps(obj: Any) -> str:
    """One JSON document on one line, as the journal writes it."""
    return _ENCODER.encode(obj)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as JSON so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, default=_json_default, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class Journal:
    """Writes one run's manifest and events."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.events_written = 0
        # record() may be called from the registration server's thread too.
        self._lock = threading.Lock()
        self._events: IO[str] | None = (path / EVENTS).open("a", encoding="utf-8", buffering=1)

    @classmethod
    def create(cls, results_dir: Path, run_id: str, manifest: Mapping[str, Any]) -> Journal:
        """Make `results_dir/run_id/` and write the first manifest (status running)."""
        path = Path(results_dir) / run_id
        path.mkdir(parents=True, exist_ok=False)
        full = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "status": "running",
            "started_at": datetime.now(UTC),
            "ended_at": None,
            **manifest,
        }
        write_json_atomic(path / MANIFEST, full)
        return cls(path, full)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    def record(self, table: str, row: Mapping[str, Any]) -> None:
        """Append one row of `table`; it reaches the OS before this returns."""
        self.record_many(table, (row,))

    def record_many(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows of `table` in one write; they reach the OS before this
        returns. Safe to call from any thread."""
        text = "".join(_line(table, row) for row in rows)
        with self._lock:
            if self._events is None:
                raise RuntimeError(f"journal {self.path} is closed")
            self._events.write(text)
            self.events_written += text.count("\n")

    def update_manifest(self, **fields: Any) -> None:
        """Set manifest fields and rewrite it atomically."""
        self.manifest.update(fields)
        write_json_atomic(self.path / MANIFEST, self.manifest)

    def finish(self, status: str, **fields: Any) -> None:
        """Mark the run ended with `status` and close the event file."""
        self.close()
        self.update_manifest(status=status, ended_at=datetime.now(UTC), **fields)

    def close(self) -> None:
        with self._lock:
            if self._events is not None:
                self._events.flush()
                os.fsync(self._events.fileno())
                self._events.close()
                self._events = None
