"""osbench installed from its wheel, as a user gets it, into a clean virtualenv.

The src layout's promise (issue 14): the import package is `osbench` and nothing
named `bench` is installed, so a project with its own `bench` package (a common
name for benchmarks) can install osbench, import its own `bench`, and run its
tests under pytest with the osbench plugin loaded.

To stay fast and offline the wheel is built once from a copy of the source (the
checkout is left untouched: no build/ or egg-info in it), and the virtualenv
has no pip and no system site-packages: the wheel goes in with this venv's pip
(`pip --python`), and the dependencies come from a folder of links to this
venv's site-packages, minus everything osbench (its editable install), named
in a .pth file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: Bound on each step (the whole module takes ~15 s on 2 cores).
STEP_TIMEOUT_S = 180


def _clean_env() -> dict[str, str]:
    """This environment without anything that steers Python or pytest from outside."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV", "COV_"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=_clean_env(), text=True,
                          capture_output=True, timeout=STEP_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{args}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    site_packages: Path
    deps: Path

    def run(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        return _run([self.python, *args], cwd)


def _build_wheel(out: Path) -> Path:
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "bench", src / "bench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
          "--wheel-dir", out / "wheels", src], out)
    (wheel,) = (out / "wheels").glob("osbench-*.whl")
    return wheel


def _link_dependencies(into: Path) -> None:
    """Links to everything in this venv's site-packages except osbench itself."""
    into.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        name = entry.name
        if (name.lower().startswith(("osbench", "__editable__", "_virtualenv"))
                or name.endswith(".pth") or name == "__pycache__"):
            continue
        (into / name).symlink_to(entry)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    work = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(work)
    root = work / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", root], work)
    python = root / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   work).stdout.strip()
    env = Venv(root, python, Path(purelib), work / "deps")
    _link_dependencies(env.deps)
    (env.site_packages / "zz_osbench_test_deps.pth").write_text(f"{env.deps}\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
          "--no-index", "--quiet", wheel], work)
    return env


def test_nothing_named_bench_is_installed(venv: Venv, tmp_path: Path) -> None:
    installed = sorted(p.name for p in venv.site_packages.iterdir())
    assert "osbench" in installed
    assert not [name for name in installed if name.lower().startswith("bench")], installed
    (record,) = venv.site_packages.glob("osbench-*.dist-info/RECORD")
    files = [venv.site_packages / line.rsplit(",", 2)[0]
             for line in record.read_text().splitlines()]
    outside = {f.resolve().parent for f in files if venv.site_packages not in f.resolve().parents}
    assert outside == {venv.root / "bin"}  # the `osbench` script
    top_levels = {f.relative_to(venv.site_packages).parts[0] for f in files
                  if f.resolve().parent not in outside}
    assert all(name.startswith("osbench") for name in top_levels), top_levels
    # No `bench` anywhere on the venv's path (the deps folder included).
    probe = venv.run("-c", "import importlib.util; print(importlib.util.find_spec('bench'))",
                     cwd=tmp_path)
    assert probe.stdout.strip() == "None"


def test_osbench_imports_from_site_packages_with_its_kinds(venv: Venv, tmp_path: Path) -> None:
    probe = venv.run("-c", textwrap.dedent("""\
        import osbench, osbench.kinds
        print(osbench.__file__)
        print(",".join(osbench.kinds.available()))
        """), cwd=tmp_path)
    where, available = probe.stdout.splitlines()
    assert Path(where) == venv.site_packages / "osbench" / "__init__.py"
    assert ROOT not in Path(where).parents
    assert {"boot", "netsweep", "rootwrap"} <= set(available.split(","))
    # The console script, and the scenario schema it reads from package data.
    scenario = ROOT / "scenarios" / "rootwrap-probe.yaml"
    checked = _run([venv.root / "bin" / "osbench", "validate", scenario], tmp_path)
    assert "rootwrap" in checked.stdout + checked.stderr


PROJECT_BENCH = '"""A project\'s own benchmarks package."""\n\nOWNER = "the project"\n'

PROJECT_TEST = '''\
from pathlib import Path

import bench


def test_bench_is_the_projects_own() -> None:
    assert bench.OWNER == "the project"
    assert Path(bench.__file__).resolve() == Path.cwd().resolve() / "bench" / "__init__.py"


def test_the_osbench_plugin_is_loaded_from_site_packages(pytestconfig) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("osbench")
    assert plugin is not None and plugin.__name__ == "osbench.pytest_plugin"
    assert "site-packages" in Path(plugin.__file__).parts
'''

PROJECT_SCENARIO = """\
name: probe
kind: rootwrap
params: {modes: [direct], samples: 3}
"""


def test_a_project_with_its_own_bench_package_runs_its_tests(venv: Venv,
                                                             tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "bench").mkdir(parents=True)
    (project / "bench" / "__init__.py").write_text(PROJECT_BENCH)
    (project / "tests").mkdir()
    (project / "tests" / "test_x.py").write_text(PROJECT_TEST)
    (project / "scenarios").mkdir()
    (project / "scenarios" / "probe.yaml").write_text(PROJECT_SCENARIO)
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")

    tests = venv.run("-m", "pytest", "-q", "tests", cwd=project)
    assert "2 passed" in tests.stdout, tests.stdout

    helped = venv.run("-m", "pytest", "--help", cwd=project)
    assert "--cloud=NAME" in helped.stdout and "--osbench-results" in helped.stdout
    # The plugin collects a scenario file as test items (not run: it needs root).
    collected = venv.run("-m", "pytest", "--collect-only", "-q", "scenarios/probe.yaml",
                         cwd=project)
    assert "scenarios/probe.yaml::" in collected.stdout, collected.stdout
