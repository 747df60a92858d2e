"""Fixtures for osbench's own tests."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest

from tests.support.tickkind import register


@pytest.fixture(autouse=True, scope="session")
def _tick_kind() -> None:
    """The test-only `tick` kind, for testing the runner without a cloud."""
    register()


#: Test modules that change the machine itself (network namespaces and their labs,
#: iptables, sysctls, sshd) or look for processes across it. The tests session runs
#: the suite in two pytest-xdist workers, a module at a time (`-n 2 --dist loadfile`):
#: these modules take a lock for their whole life, module fixtures included, so
#: they run one after another as they would without xdist (~85 s of the suite).
#: Every other test runs on loopback ports of its own (port 0) and in its tmp_path.
#: tests/test_machine_wide.py finds a module that builds namespaces or a lab, or
#: changes iptables or sysctls, and is not listed here.
#: (Not xdist's `loadgroup`: pytest-xdist 3.8 marks a group by rewriting
#: `item._nodeid`, which pytest 9 no longer reads, so the groups are silently lost.)
MACHINE_WIDE = ("tests/lab/", "tests/netsweep/", "tests/rootwrap/", "tests/audit/",
                "tests/hosts/", "tests/minicloud/", "tests/perf/", "tests/test_procs.py",
                "tests/monitors/test_processes_lab.py", "tests/monitors/test_processes.py",
                "tests/monitors/test_monitored_lab_run.py")


@pytest.fixture(autouse=True, scope="module")
def _machine_wide_one_at_a_time(request: pytest.FixtureRequest,
                                tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Autouse fixtures come first in their scope, so the lock is held before a
    module's own fixtures (a lab) are made and until after they are torn down."""
    where = request.path.relative_to(request.config.rootpath).as_posix()
    if "PYTEST_XDIST_WORKER" not in os.environ or not where.startswith(MACHINE_WIDE):
        yield
        return
    # The workers' base temps (popen-gwN) share a parent made for this run.
    lock = tmp_path_factory.getbasetemp().parent / "machine-wide.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield
