"""`osbench validate` and `import osbench` stay light (issue 14): validating a file
imports none of the heavy libraries the kinds need only to run or to report.
Each check runs in a fresh interpreter and reads its `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("*.yaml"))
#: What validation must not import: the run-time and report libraries.
HEAVY = ("pandas", "matplotlib", "openstack", "aiohttp", "paramiko", "numpy", "scipy",
         "keystoneauth1", "rich")

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def _top_level_modules(body: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_validate_every_shipped_scenario_imports_no_heavy_library() -> None:
    body = ("from osbench.cli.program import main\n"
            f"code = main(['validate', *{SCENARIOS!r}])\n"
            "assert code == 0, code")
    loaded = _top_level_modules(body)
    assert "osbench" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_api_validates_without_heavy_imports() -> None:
    body = ("import osbench\n"
            f"for path in {SCENARIOS!r}:\n"
            "    assert osbench.validate(path).cases >= 1")
    loaded = _top_level_modules(body)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("body", ["import osbench", "import osbench.pytest_plugin",
                                  "from osbench import kinds; kinds.specs()"])
def test_import_and_the_kind_registry_are_light(body: str) -> None:
    """pytest imports the plugin in every session of an environment with osbench."""
    loaded = _top_level_modules(body)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_probe_sees_a_heavy_import() -> None:
    """The checks above can fail: running a kind's code does import them."""
    # The registration server no longer uses aiohttp (issue 19); the simulated cloud does.
    loaded = _top_level_modules("import osbench.kinds.boot.run, osbench.sim.server")
    assert {"pandas", "openstack", "aiohttp"} <= loaded


def test_the_public_names_are_listed_once_and_all_resolve() -> None:
    """`osbench.__all__` and its lazy table name the same things, and each loads."""
    import osbench

    assert set(osbench.__all__) == {"__version__", *osbench._EXPORTS}
    for name in osbench.__all__:
        assert getattr(osbench, name) is not None, name
    with pytest.raises(AttributeError):
        _ = osbench.no_such_name  # type: ignore[attr-defined]
