"""`python -m bench` is the `osbench` command."""

from bench.entry import main

main()
