"""pytest in a checkout: the osbench scenario plugin, and pytester for its tests.

An installed osbench registers `bench.pytest_plugin` through its `pytest11`
entry point, which pytest loads before any conftest; naming it here as well
would register the same module twice, which pytest rejects ("Plugin already
registered under a different name"). So it is named here only when the entry
point did not load it (osbench not installed, or PYTEST_DISABLE_PLUGIN_AUTOLOAD).
"""

import sys

pytest_plugins = ["pytester"]
if "bench.pytest_plugin" not in sys.modules:
    pytest_plugins.append("bench.pytest_plugin")
