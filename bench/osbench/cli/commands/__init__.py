"""One module per `osbench` command, each with `add_parser()` and `run()`."""
