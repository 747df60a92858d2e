"""`python -m osbench` is the `osbench` command."""

from osbench.entry import main

main()
