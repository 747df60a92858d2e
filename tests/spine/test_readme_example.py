"""The README's Python example runs as written (in a scratch folder, so its results
and report land there), and prints what it says it prints."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no marked Python example"
    return match.group(1)


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    done = subprocess.run([sys.executable, "-c", _example()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("completed ['PASS phone_home_ok_pct == 100"), done.stdout
    runs = list((tmp_path / "results").iterdir())
    assert len(runs) == 1
    assert re.search(r"^ok\s+100$", done.stdout, re.M), done.stdout
    report = Path("reports") / runs[0].name
    assert f"{report / 'index.html'} {report / 'report.md'}" in done.stdout
    assert (tmp_path / report / "index.html").is_file()
    verdicts = re.findall(r"^\d+\s+(\S+)\s+(\S+)$", done.stdout, re.M)
    assert verdicts and {v for _, v in verdicts} == {"noise"}, done.stdout
