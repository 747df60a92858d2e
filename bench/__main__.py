"""`python -m bench` is the `osbench` command."""

from bench.cli import main

raise SystemExit(main())
