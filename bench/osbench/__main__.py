"""`python -m osbench` is the `osbench` command."""

from osbench.cli.entry import main

main()
