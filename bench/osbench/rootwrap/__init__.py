"""The rootwrap latency probe (field notes section 2): configuration, the timed
call on the machine that runs it (also the remote helper), how a probe is run,
and its statistics. The scenario kind is `osbench.kinds.rootwrap`."""
