"""`python -m bench` is the `osbench` command."""

from bench.cli import entry

entry()
