"""Checks on processes the tests started (directly, over SSH, or in the lab)."""

from __future__ import annotations

import asyncio
from pathlib import Path


def running(pid: int) -> bool:
    """Alive and not a zombie (PID 1 of a container may never reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    """The parent's pid, from /proc/PID/stat."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def gone(pid: int, within_s: float = 5.0) -> bool:
    """True once `pid` has exited, False if it is still running after `within_s`."""
    for _ in range(int(within_s / 0.05)):
        if not running(pid):
            return True
        await asyncio.sleep(0.05)
    return not running(pid)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line and running(int(cmdline.parent.name)):
            found.append(line)
    return found
