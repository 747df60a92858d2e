"""The suite's two workers keep apart only the modules tests/conftest.py lists as
MACHINE_WIDE: a test module elsewhere that builds namespaces or a lab, or changes
iptables or sysctls, would run beside them and tear down, or be torn down by, a
lab with the same names (as happened before the lock)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import MACHINE_WIDE

ROOT = Path(__file__).resolve().parents[1]

#: What a module that changes the machine says somewhere in its source.
CHANGES_THE_MACHINE = re.compile(
    r'"netns"|\bip netns\b|"iptables"|\biptables -|"ebtables"|"sysctl"|\bsysctl -w\b'
    r"|/proc/sys/\S+\)\.write_text|running_lab|\blab\.up\(|tests\.support\.lab"
    r"|from osbench import lab\b|from osbench\.lab import|osbench\.netns")
#: Helpers that only listed modules import, and this check with its conftest.
NOT_TEST_MODULES = ("tests/support/", "tests/conftest.py", "tests/test_machine_wide.py")


def test_every_module_that_changes_the_machine_is_listed() -> None:
    unlisted = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(MACHINE_WIDE + NOT_TEST_MODULES):
            continue
        said = CHANGES_THE_MACHINE.search(path.read_text())
        if said:
            unlisted[where] = said.group(0)
    assert unlisted == {}, "add these to MACHINE_WIDE in tests/conftest.py"


def test_every_listed_module_exists() -> None:
    for where in MACHINE_WIDE:
        assert (ROOT / where).exists(), f"{where} in MACHINE_WIDE is gone"


def test_the_pattern_finds_what_it_is_for() -> None:
    """It finds something in every listed entry (else the first test could never
    fail) but one: test_processes.py is listed for reading every process of the
    machine, which the pattern does not look for."""
    def found(where: str) -> bool:
        path = ROOT / where
        files = [path] if path.suffix == ".py" else path.rglob("*.py")
        return any(CHANGES_THE_MACHINE.search(f.read_text()) for f in files)

    assert [w for w in MACHINE_WIDE if not found(w)] == ["tests/monitors/test_processes.py"]
