"""The process's open-file limit: every connection, file and pipe takes one.

Linux starts processes with a soft limit of 1024 open files (systemd and
most shells), while the hard limit a process may raise it to is usually far
higher (524288 on systemd systems). At 1024, 1,100 idle connections to the
phone-home port left no descriptor for the run's own guests.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)


def open_file_limit() -> int:
    """The soft limit on open files now in force."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def raise_open_file_limit() -> int:
    """Raise the open-file soft limit to the hard limit; return the soft limit
    now in force. Call it once at start; calling it again changes nothing.

    If the kernel refuses (an unlimited hard limit is not a valid soft limit
    for open files on Linux), the limit stays as it was and a warning says so.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
        return soft
    log.debug("open-file limit raised from %d to %d", soft, hard)
    return hard
