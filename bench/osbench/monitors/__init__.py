"""Monitors: what the control plane does while a case runs, journaled beside it.

A scenario of any kind may have a `monitors:` section (`config.py`). For each
case the runner opens a `MonitorSession` (`session.py`) before the kind runs
the case and closes it after the case's cleanups, however the case ends. Each
source is a `Sampler` (`sampler.py`) called every `interval` on the case's
clock; each reading is one row of the `monitor` table:

    case, t_s (case clock), source, metric, value, label.<name> ...

Metric names the judge stage (`attribution.py`) and the report understand:

    source "processes@HOST" (processes.py):
        service_cpu_pct {service}      percent of one core, a rate between two samples
        service_rss_bytes {service}    resident memory of the service's processes
        service_processes {service}    how many processes matched
        host_cpu_pct                   busy share of all the host's cores, in percent
        host_cores, host_load1, host_mem_used_bytes, host_mem_total_bytes
    source "rabbitmq@WHERE" (rabbitmq.py):
        queue_ready, queue_unacked, queue_consumers {queue, group}
        group_queues {group}           how many queues the group's pattern matched
        group_ready, group_unacked {group}   summed over those queues
    source "prometheus:NAME" (prometheus.py): names and labels as scraped, raw
        values (counters stay counters; rates are computed when read)
    source "prometheus:sim": the simulated cloud's modelled state
        (`osbench_sim_*`, bench/osbench/sim/profiles/README.md)
    source "api" (api_calls.py): one row per request the harness made:
        api_latency_s {operation, status, request_id}

A sampler that fails never stops the case: its first error is a row of
`monitor_errors` (one per source and case), and every source ends with one
row of `monitor_sources` (samples taken, failed, the first and last error).

This package's `__init__` and `config` import nothing heavy: validating a
scenario needs only the schema.
"""
