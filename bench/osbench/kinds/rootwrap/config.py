"""The probe's own rootwrap configuration: rootwrap.conf plus one filters file,
written to a fresh temporary folder that the case's cleanup removes.

The text itself lives in `helper` (the remote helper writes the same files on
a remote host); this module owns the local folder and the default wrappers.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from osbench.kinds.rootwrap import helper


@dataclass(frozen=True)
class GeneratedConfig:
    """A generated configuration: its folder, rootwrap.conf and filters file."""

    directory: Path
    conf: Path
    filters: Path

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def generate(parent: str | Path | None = None) -> GeneratedConfig:
    """Write rootwrap.conf and filters.d/ip.filters to a new temporary folder."""
    directory = Path(tempfile.mkdtemp(prefix="osbench-rootwrap-", dir=parent))
    conf = Path(helper.write_config(str(directory)))
    return GeneratedConfig(directory, conf, directory / "filters.d" / "ip.filters")


def default_wrapper(name: str = "oslo-rootwrap") -> str:
    """`name` next to this Python (the project's environment), else as found on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else name
