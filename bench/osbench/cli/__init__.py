"""The `osbench` command line: `entry` (the console script: signal handling before
any third-party import), `program` (argv, printing, exit codes) and one module per
command in `commands`. Empty on purpose: the entry point imports this package
before it can install its signal handlers."""
