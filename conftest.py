"""pytest in a checkout: the osbench scenario plugin, and pytester for its tests.

An installed osbench registers `osbench.pytest_plugin` through its `pytest11`
entry point, which pytest loads before any conftest; naming it here as well
would register the same module twice, which pytest rejects ("Plugin already
registered under a different name"). So it is named here only when the entry
point did not load it (osbench not installed, or PYTEST_DISABLE_PLUGIN_AUTOLOAD);
then the package is imported from `bench/`, the source root of the src layout.
"""

import sys
from pathlib import Path

pytest_plugins = ["pytester"]
if "osbench.pytest_plugin" not in sys.modules:
    source_root = str(Path(__file__).resolve().parent / "bench")
    if source_root not in sys.path:
        sys.path.insert(0, source_root)
    pytest_plugins.append("osbench.pytest_plugin")
