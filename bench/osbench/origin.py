"""Where a result came from: osbench version, git commit, Python, libraries, host.

Every manifest and report carries this block so a number can be traced back to
the code and the machine that produced it.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from osbench import __version__

#: Libraries whose versions change what osbench measures or how it reads.
LIBRARIES = (
    "openstacksdk", "keystoneauth1", "aiohttp", "pandas", "numpy", "matplotlib",
    "paramiko", "PyYAML", "oslo.rootwrap",
)


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, Any]:
    """The commit osbench runs from and whether its tree has local changes."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str | None]:
    """Installed versions of LIBRARIES (None when not installed)."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def describe() -> dict[str, Any]:
    """The provenance block of a manifest."""
    return {
        "osbench": {"version": __version__, **git_state()},
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "libraries": library_versions(),
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    }
