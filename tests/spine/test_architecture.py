"""ARCHITECTURE.md stays true: its tree lists every module of the package and
nothing else, and no module is over 600 lines (STYLE.md: one idea per module)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bench" / "osbench"
MAX_LINES = 600
CLI_IMPORT = re.compile(r"^\s*(from osbench\.cli\b|import osbench\.cli\b"
                        r"|from osbench import .*\bcli\b)", re.M)


def _tree_paths() -> set[str]:
    """The module paths the tree block of ARCHITECTURE.md names (from its indentation)."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- tree:[^>]*-->\s*```\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no tree block"
    lines = block.group(1).splitlines()
    assert lines[0] == "bench/osbench/"
    stack: list[str] = []
    paths = set()
    for line in lines[1:]:
        indent = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        del stack[indent - 1:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        else:
            paths.add("/".join([*stack, name]))
    return paths


def test_the_tree_lists_every_module_and_only_those() -> None:
    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    listed = _tree_paths()
    assert not actual - listed, f"missing from ARCHITECTURE.md: {sorted(actual - listed)}"
    assert not listed - actual, f"listed but gone: {sorted(listed - actual)}"


def test_no_module_is_over_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_the_library_does_not_import_the_cli() -> None:
    """Only the CLI itself and `__main__` may import `osbench.cli`."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        if CLI_IMPORT.search(path.read_text(encoding="utf-8")):
            offenders.append(str(rel))
    assert not offenders, offenders
