"""The `monitor` table read back as time series: what the rules (`attribution`), the
report's peaks table and control-plane panel, and `osbench compare` look at.

Pure: one case's `monitor` rows in, series out. Counters become rates between
consecutive samples here, never in a sampler. Each series says what it is
about (`component`), which `attribution` maps to a symptom's area:

- CPU as percent of the service's cores (`cpu_pct_of_cores`):
  - the simulated cloud: the rate of `osbench_sim_service_busy_seconds_total`
    over `osbench_sim_service_cores`;
  - processes: `service_cpu_pct` (percent of one core) summed over a service
    family's processes, over min(`service_processes`, `host_cores`) cores:
    a Python service process runs on at most one core at a time;
  - a host: `host_cpu_pct`, already a share of all its cores.
- Queue depths: RabbitMQ groups (`group_ready + group_unacked`);
  rabbitmq_prometheus per-queue metrics (ready + unacked per queue); the
  simulated cloud's DHCP-agent backlog, conductor queue, ports in BUILD and
  root-helper calls in flight.
- The harness's requests (`api_requests`): one row per request.
- Everything else (`other_series`): raw gauges, and `*_total` counters as rates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from osbench.monitors.presets import QUEUE_PRESETS

SIM_BUSY = "osbench_sim_service_busy_seconds_total"
SIM_CORES = "osbench_sim_service_cores"
#: The modelled instant of a scrape: rates of the simulated cloud's counters are
#: per modelled second between scrapes, not per second between the harness's
#: sends (at time scale 60 a scrape's 5 ms in flight is 0.3 modelled s, which
#: made a busy service read 125% of its core).
SIM_TIME = "osbench_sim_modelled_time_seconds"
#: The simulated cloud's queue-like gauges: metric -> (subject, component, unit).
SIM_QUEUES: dict[str, tuple[str, str, str]] = {
    "osbench_sim_dhcp_agent_backlog_ports": ("neutron-dhcp-agent backlog",
                                             "neutron-dhcp-agent queue", "ports"),
    "osbench_sim_conductor_queue_builds": ("nova-conductor queue", "nova-conductor queue",
                                           "builds"),
    "osbench_sim_ports_build": ("ports in BUILD", "ports BUILD", "ports"),
    "osbench_sim_root_helper_calls_in_flight": ("root-helper calls in flight", "root helper",
                                                "calls"),
}
#: rabbitmq_prometheus per-queue depth metrics (the `detailed` endpoint's too).
_RABBIT_QUEUE = re.compile(
    r"rabbitmq_(detailed_)?queue_messages_(ready|unacked|unacknowledged)")
#: Readings that describe the set-up, not the load: not series of their own.
BOOKKEEPING = frozenset({
    "service_processes", "host_cores", "host_mem_total_bytes", "queue_consumers",
    "group_queues", SIM_CORES, "osbench_sim_proxy_timeout_seconds",
    "osbench_sim_modelled_time_seconds"})
#: Labels that name one reading, not a series (every request has its own id).
_PER_READING_LABELS = ("label.request_id", "label.status")


@dataclass(frozen=True)
class Series:
    """One measured quantity of one case over time (t on the case clock)."""

    source: str
    metric: str
    subject: str
    #: What it is about, for attribution: a service ("nova-conductor"), a queue
    #: ("neutron-dhcp-agent queue"), "host", "ports BUILD", "root helper".
    component: str
    unit: str
    t: np.ndarray
    v: np.ndarray
    #: CPU series: the cores the percentage is of, per sample.
    cores: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.subject} ({self.source})"

    def peak(self) -> tuple[float, float] | None:
        """(peak value, t of its first occurrence), None without a finite value."""
        finite = np.isfinite(self.v)
        if not finite.any():
            return None
        i = int(np.nanargmax(np.where(finite, self.v, -np.inf)))
        return float(self.v[i]), float(self.t[i])


def _of(monitor: pd.DataFrame, metric: str) -> pd.DataFrame:
    if monitor.empty or "metric" not in monitor.columns:
        return monitor.iloc[0:0]
    return monitor[monitor["metric"] == metric]


def _label(rows: pd.DataFrame, name: str) -> pd.Series:
    column = f"label.{name}"
    if column in rows.columns:
        return rows[column]
    return pd.Series([np.nan] * len(rows), index=rows.index, dtype=object)


def _by_time(rows: pd.DataFrame) -> pd.Series:
    """value by t_s (the last reading of a t)."""
    return rows.groupby("t_s")["value"].last().sort_index()


def _rate_clock(clock: pd.DataFrame, source: object, t: np.ndarray) -> np.ndarray:
    """The times to take rates over: the simulated cloud's modelled instants where
    `clock` (its SIM_TIME rows) has them for `source`, else `t`."""
    modelled = _by_time(clock[clock["source"] == source]).reindex(t).to_numpy(float)
    return np.where(np.isfinite(modelled), modelled, t)


def queue_group(name: str) -> str | None:
    """The preset group a RabbitMQ queue name belongs to (None: no group)."""
    for group, pattern in QUEUE_PRESETS.items():
        if re.fullmatch(pattern, name):
            return group
    return None


# -- CPU --------------------------------------------------------------------------------


def _sim_cpu(monitor: pd.DataFrame) -> Iterator[Series]:
    busy, cores = _of(monitor, SIM_BUSY), _of(monitor, SIM_CORES)
    busy = busy.assign(service=_label(busy, "service"))
    cores = cores.assign(service=_label(cores, "service"))
    clock = _of(monitor, SIM_TIME)
    for (source, service), rows in busy.groupby(["source", "service"], sort=True):
        b = _by_time(rows)
        c = _by_time(cores[(cores["source"] == source) & (cores["service"] == service)])
        t = b.index.to_numpy(float)
        if len(t) < 2:
            continue
        dt, db = np.diff(_rate_clock(clock, source, t)), np.diff(b.to_numpy(float))
        n = c.reindex(t[1:]).to_numpy(float)
        ok = (dt > 0) & (db >= 0) & (n > 0)  # a counter reset breaks the series
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(ok, 100.0 * db / np.where(dt > 0, dt, 1.0) / np.where(
                n > 0, n, 1.0), np.nan)
        yield Series(str(source), "cpu_pct_of_cores", str(service), str(service), "%",
                     t[1:], pct, n)


def _process_cpu(monitor: pd.DataFrame) -> Iterator[Series]:
    cpu = _of(monitor, "service_cpu_pct")
    if cpu.empty:
        return
    procs, host_cores = _of(monitor, "service_processes"), _of(monitor, "host_cores")

    def keyed(rows: pd.DataFrame) -> pd.DataFrame:
        family = _label(rows, "family")
        return rows.assign(key=family.where(family.notna(), _label(rows, "service")))

    cpu, procs = keyed(cpu), keyed(procs)
    for (source, key), rows in cpu.groupby(["source", "key"], sort=True):
        used = rows.groupby("t_s")["value"].sum().sort_index()
        t = used.index.to_numpy(float)
        count = procs[(procs["source"] == source) & (procs["key"] == key)].groupby(
            "t_s")["value"].sum().reindex(t).to_numpy(float)
        host = _by_time(host_cores[host_cores["source"] == source]).reindex(t).to_numpy(float)
        n = np.where(np.isnan(host), count, np.fmin(count, host))
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(n > 0, used.to_numpy(float) / np.where(n > 0, n, 1.0), np.nan)
        yield Series(str(source), "cpu_pct_of_cores", str(key), str(key), "%", t, pct, n)


def _host_cpu(monitor: pd.DataFrame) -> Iterator[Series]:
    rows = _of(monitor, "host_cpu_pct")
    cores = _of(monitor, "host_cores")
    for source, part in rows.groupby("source", sort=True):
        v = _by_time(part)
        t = v.index.to_numpy(float)
        n = _by_time(cores[cores["source"] == source]).reindex(t).to_numpy(float)
        host = str(source).partition("@")[2] or str(source)
        yield Series(str(source), "host_cpu_pct", f"host {host}", "host", "%", t,
                     v.to_numpy(float), n)


def cpu_series(monitor: pd.DataFrame) -> list[Series]:
    """CPU as percent of the cores each service (or host) can use."""
    return [*_sim_cpu(monitor), *_process_cpu(monitor), *_host_cpu(monitor)]


# -- queues -----------------------------------------------------------------------------


def _rabbit_groups(monitor: pd.DataFrame) -> Iterator[Series]:
    ready, unacked = _of(monitor, "group_ready"), _of(monitor, "group_unacked")
    both = pd.concat([ready, unacked])
    if both.empty:
        return
    both = both.assign(group=_label(both, "group"))
    for (source, group), rows in both.groupby(["source", "group"], sort=True):
        depth = rows.groupby("t_s")["value"].sum().sort_index()
        yield Series(str(source), "queue_depth", f"{group} queues", f"{group} queue",
                     "messages", depth.index.to_numpy(float), depth.to_numpy(float))


def _rabbit_prometheus(monitor: pd.DataFrame) -> Iterator[Series]:
    if monitor.empty:
        return
    rows = monitor[monitor["metric"].astype(str).str.fullmatch(_RABBIT_QUEUE)]
    if rows.empty:
        return
    rows = rows.assign(queue=_label(rows, "queue").fillna(""))
    for (source, queue), part in rows.groupby(["source", "queue"], sort=True):
        depth = part.groupby("t_s")["value"].sum().sort_index()
        group = queue_group(str(queue))
        subject = f"queue {queue}" if queue else "all queues"
        yield Series(str(source), "queue_depth", subject,
                     f"{group} queue" if group else "queue", "messages",
                     depth.index.to_numpy(float), depth.to_numpy(float))


def _sim_queues(monitor: pd.DataFrame) -> Iterator[Series]:
    for metric, (subject, component, unit) in SIM_QUEUES.items():
        for source, rows in _of(monitor, metric).groupby("source", sort=True):
            v = _by_time(rows)
            yield Series(str(source), metric, subject, component, unit,
                         v.index.to_numpy(float), v.to_numpy(float))


def queue_series(monitor: pd.DataFrame) -> list[Series]:
    """Queue depths and backlogs, each as one series."""
    return [*_rabbit_groups(monitor), *_rabbit_prometheus(monitor), *_sim_queues(monitor)]


# -- the harness's requests, and the rest ------------------------------------------------


def api_requests(monitor: pd.DataFrame) -> pd.DataFrame:
    """One row per request the harness made: t_s (sent), operation, status (0: no
    reply), latency_s; sorted by t_s."""
    rows = _of(monitor, "api_latency_s")
    if "source" in rows.columns:
        rows = rows[rows["source"] == "api"]
    status = pd.to_numeric(_label(rows, "status"), errors="coerce").fillna(0).astype(int)
    out = pd.DataFrame({"t_s": rows["t_s"].astype(float) if len(rows) else [],
                        "operation": _label(rows, "operation").fillna("unknown").astype(str),
                        "status": status, "latency_s": rows["value"].astype(float)
                        if len(rows) else []})
    return out.sort_values("t_s", kind="stable").reset_index(drop=True)


def api_series(monitor: pd.DataFrame) -> list[Series]:
    """Latency per operation, one point per request."""
    requests = api_requests(monitor)
    return [Series("api", "api_latency_s", str(op), "api latency", "s",
                   rows["t_s"].to_numpy(float), rows["latency_s"].to_numpy(float))
            for op, rows in requests.groupby("operation", sort=True)]


def _used(metric: str) -> bool:
    return (metric in BOOKKEEPING or metric in SIM_QUEUES or metric == SIM_BUSY
            or metric in ("service_cpu_pct", "host_cpu_pct", "group_ready", "group_unacked",
                          "api_latency_s")
            or _RABBIT_QUEUE.fullmatch(metric) is not None)


def other_series(monitor: pd.DataFrame) -> list[Series]:
    """Every other reading: gauges as they are, `*_total` counters as rates per second.
    Per-queue RabbitMQ rows are left out: their groups' sums are queue series."""
    if monitor.empty or "metric" not in monitor.columns:
        return []
    rest = monitor[~monitor["metric"].astype(str).map(_used)]
    rest = rest[~rest["metric"].isin(("queue_ready", "queue_unacked"))]
    labels = sorted(c for c in rest.columns
                    if c.startswith("label.") and c not in _PER_READING_LABELS)
    clock = _of(monitor, SIM_TIME)
    out = []
    for (source, metric), rows in rest.groupby(["source", "metric"], sort=True):
        present = [c for c in labels if rows[c].notna().any()]
        groups = rows.groupby(present, dropna=False, sort=True) if present else [((), rows)]
        for key, part in groups:
            values = key if isinstance(key, tuple) else (key,)
            subject = ", ".join(f"{c[6:]}={v}" for c, v in zip(present, values, strict=True)
                                if not (isinstance(v, float) and np.isnan(v))) or str(metric)
            v = _by_time(part)
            t, y, unit = v.index.to_numpy(float), v.to_numpy(float), ""
            if str(metric).endswith("_total"):
                dt, dy = np.diff(_rate_clock(clock, source, t)), np.diff(y)
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.where((dt > 0) & (dy >= 0), dy / np.where(dt > 0, dt, 1.0), np.nan)
                t, unit = t[1:], "/s"
            elif str(metric).endswith("_bytes"):
                unit = "bytes"
            elif str(metric).endswith("_seconds") or str(metric).endswith("_s"):
                unit = "s"
            component = str(part["label.service"].dropna().iloc[0]) if (
                "label.service" in part.columns and part["label.service"].notna().any()) else ""
            out.append(Series(str(source), str(metric), subject, component, unit, t, y))
    return out


def all_series(monitor: pd.DataFrame) -> list[Series]:
    """Every series of a case: CPU, queues, API latency, then the rest."""
    return [*cpu_series(monitor), *queue_series(monitor), *api_series(monitor),
            *other_series(monitor)]


def peaks(monitor: pd.DataFrame) -> pd.DataFrame:
    """One row per series: source, metric, subject, unit, peak, t_peak_s (case clock,
    its first occurrence), samples; CPU in percent of the cores it names."""
    rows = []
    for s in all_series(monitor):
        peak = s.peak()
        if peak is None:
            continue
        value, t = peak
        unit = s.unit
        if s.cores is not None and s.metric == "cpu_pct_of_cores":
            at = s.cores[int(np.flatnonzero(s.t == t)[0])]
            unit = (f"% of {at:g} core{'' if at == 1 else 's'}" if np.isfinite(at)
                    else "%")
        rows.append({"source": s.source, "metric": s.metric, "subject": s.subject,
                     "unit": unit, "peak": value, "t_peak_s": t,
                     "samples": int(np.isfinite(s.v).sum())})
    return pd.DataFrame(rows, columns=["source", "metric", "subject", "unit", "peak",
                                       "t_peak_s", "samples"])
