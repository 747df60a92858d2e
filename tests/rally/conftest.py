"""Rally against the simulated cloud (issue 18), run by `nox -s rally` only.

Rally's tasks take minutes and need Rally's own virtualenv, so a plain
`pytest` (and `nox -s tests`) does not collect them: the session sets
OSBENCH_RALLY_SESSION=1 and OSBENCH_RALLY (its `rally`). The driver beside
this file is also used by the perf suite's comparison (tests/perf).
"""

from __future__ import annotations

import os

#: The switch `nox -s rally` sets.
RALLY_SESSION_ENV = "OSBENCH_RALLY_SESSION"

if os.environ.get(RALLY_SESSION_ENV) != "1":
    collect_ignore_glob = ["test_*.py"]
