"""The judge stage: from one case's tables to the bottlenecks that explain its symptoms.

Pure: a case's `monitor` rows and its kind's symptoms in, findings out, so an
old run can be judged again by a newer osbench. Nothing here reads a file or
a clock; `attribute_run` only gathers a loaded run's tables case by case.

Symptoms come from the kind (`KindSpec.symptoms`, e.g. boot's "14 instances
timed out DHCP between t=310 and 340 s"), each with an `area`. A case without
a symptom names no bottleneck, whatever its monitors show; a case with
symptoms and no rule firing says "no bottleneck seen".

The rules, over the series of `osbench.monitors.series` (t on the case clock):
- saturation: CPU at >= SATURATION_PCT of the service's cores for
  >= SATURATION_SAMPLES consecutive samples;
- backlog: a queue depth higher than the sample before for
  >= BACKLOG_RISING_SAMPLES consecutive samples; evidence: its peak, when,
  and how fast it drained after it;
- api: an operation's p95 latency after its first API_BASELINE_S seconds at
  >= API_FACTOR times its p50 in them (each part at least API_MIN_REQUESTS
  requests);
- gateway: a request answered 502 or 504 by the proxy, with the simulated
  cloud's oldest create in flight against the proxy's timeout when scraped.

Ranking: findings whose component AREA_COMPONENTS lists under a symptom's
area first; then those that began before that symptom's window ended; then
the component's place in that list (nearest the symptom first); then
magnitude (how far past its threshold, as a ratio).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from osbench.monitors import series as ms

if TYPE_CHECKING:
    from osbench.results import Run

#: Saturation: CPU at or above this percent of the service's cores ...
SATURATION_PCT = 90.0
#: ... for at least this many consecutive samples (at the default 2 s
#: interval, 6 s: longer than one slow request, shorter than any build wave).
SATURATION_SAMPLES = 3
#: Backlog: a depth higher than the sample before, this many samples in a row.
BACKLOG_RISING_SAMPLES = 3
#: API: p95 after the baseline at this many times the baseline's p50 ...
API_FACTOR = 5.0
#: ... the baseline being each operation's first minute of requests ...
API_BASELINE_S = 60.0
#: ... with at least this many requests in the baseline and after it (a p95
#: of one or two requests is one request).
API_MIN_REQUESTS = 3
#: Gateway: the statuses a reverse proxy answers when the service behind it
#: failed (502) or was slower than its timeout (504).
GATEWAY_STATUSES = frozenset({502, 504})

#: Per symptom area, the components that can explain it, nearest the symptom
#: first. dhcp: a DHCP give-up or a vif-plugging timeout is a port whose DHCP
#: entry came too late: the agent's queue of port updates is where it waited;
#: ports in BUILD and the root helper's calls say why; the agent's CPU (one
#: process, one core) and neutron-server come after. build: a MessagingTimeout
#: is a conductor or scheduler that did not answer in time because its workers
#: were busy: their CPU, then the queues waiting for them, then the host.
#: api: the proxy's answer, nova-api, then the API's latency.
#: Areas not listed ("slow", "guest") prefer no component.
AREA_COMPONENTS: dict[str, tuple[str, ...]] = {
    "dhcp": ("neutron-dhcp-agent queue", "ports BUILD", "root helper", "neutron-dhcp-agent",
             "neutron-server"),
    "build": ("nova-conductor", "nova-scheduler", "nova-conductor queue",
              "nova-scheduler queue", "host"),
    "api": ("gateway", "nova-api", "api latency"),
}
#: Every area a kind's symptom may have.
AREAS = ("build", "dhcp", "api", "slow", "guest")

NO_SYMPTOM = "no symptom: no bottleneck named"
NO_BOTTLENECK = "no bottleneck seen"

_SIM_OLDEST = "osbench_sim_create_oldest_in_flight_seconds"
_SIM_TIMEOUT = "osbench_sim_proxy_timeout_seconds"


@dataclass(frozen=True)
class Symptom:
    """Something a case's own tables show went wrong, with when (case clock)."""

    area: str
    #: A short key, e.g. "dhcp_timeout", "rpc_timeout", "create_error".
    what: str
    count: int
    start_s: float | None
    end_s: float | None
    #: One sentence with its figures.
    text: str


@dataclass(frozen=True)
class Finding:
    """A rule that fired, on what, when it began, by how much, and the evidence."""

    rule: str
    subject: str
    component: str
    source: str
    start_s: float
    #: How far past the rule's threshold, as a ratio (1.0: at it).
    magnitude: float
    evidence: str
    #: The symptom whose area lists this component (None: it explains none).
    symptom: Symptom | None = None


@dataclass(frozen=True)
class Attribution:
    """One case's symptoms and its ranked findings."""

    symptoms: tuple[Symptom, ...]
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> str:
        if not self.symptoms:
            return NO_SYMPTOM
        if not self.findings:
            return NO_BOTTLENECK
        top = self.findings[0]
        return f"{top.rule}: {top.subject}"


def num(x: float) -> str:
    """A figure for evidence text: whole numbers as such, else 3 significant digits."""
    if not math.isfinite(x):
        return str(x)
    if float(x).is_integer() or abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where `mask` is true."""
    out, start = [], None
    for i, flag in enumerate(mask):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def _where(s: ms.Series) -> str:
    if s.source.startswith("processes@"):
        return f"{s.subject} on {s.source.partition('@')[2]}"
    return s.name


# -- the rules ---------------------------------------------------------------------------


def saturation(monitor: pd.DataFrame) -> list[Finding]:
    """CPU at >= SATURATION_PCT of the cores for >= SATURATION_SAMPLES samples in a row."""
    out = []
    for s in ms.cpu_series(monitor):
        with np.errstate(invalid="ignore"):
            hot = np.nan_to_num(s.v, nan=-1.0) >= SATURATION_PCT
        stretches = [(a, b) for a, b in _runs(hot) if b - a >= SATURATION_SAMPLES]
        if not stretches:
            continue
        a, b = max(stretches, key=lambda r: (r[1] - r[0], -r[0]))
        first = stretches[0][0]
        peak = max(float(np.nanmax(s.v[x:y])) for x, y in stretches)
        cores = s.cores[a] if s.cores is not None else math.nan
        if s.component == "host":
            of = f"of all {num(cores)} cores" if math.isfinite(cores) else "of all its cores"
            who = f"{s.subject} CPU"
        elif s.source.startswith("processes@"):
            of = (f"of {num(cores)} core{'s' if cores != 1 else ''} (its processes, at most "
                  "the host's cores)")
            who = _where(s)
        else:
            of = f"of its {num(cores)} core{'s' if cores != 1 else ''}"
            who = _where(s)
        text = (f"{who} at >= {num(SATURATION_PCT)}% {of} for {b - a} samples in a row, "
                f"t={num(s.t[a])} to {num(s.t[b - 1])} s (peak {num(peak)}%)")
        if len(stretches) > 1:
            text += (f"; {len(stretches)} such stretches, {sum(y - x for x, y in stretches)} "
                     "samples in all")
        out.append(Finding("saturation", s.subject, s.component, s.source,
                           float(s.t[first]), peak / SATURATION_PCT, text))
    return out


def backlog(monitor: pd.DataFrame) -> list[Finding]:
    """A depth rising for >= BACKLOG_RISING_SAMPLES samples in a row: its peak, when,
    and how fast it drained after."""
    out = []
    for s in ms.queue_series(monitor):
        v, t = s.v, s.t
        if len(v) < 2:
            continue
        rises = v[1:] > v[:-1]
        stretches = [(a, b) for a, b in _runs(rises) if b - a >= BACKLOG_RISING_SAMPLES]
        if not stretches:
            continue
        a, b = stretches[0]  # rises a..b-1: samples a+1..b rose above the one before
        peak_at = int(np.nanargmax(v))
        peak = float(v[peak_at])
        text = (f"{s.name} rose for {b - a} samples in a row from {num(v[a])} at "
                f"t={num(t[a])} s, peaked at {num(peak)} {s.unit} at t={num(t[peak_at])} s")
        after = v[peak_at + 1:]
        if len(after) and np.nanmin(after) < peak:
            low_at = peak_at + 1 + int(np.nanargmin(after))
            rate = (peak - float(v[low_at])) / (t[low_at] - t[peak_at])
            text += (f" and drained at {num(rate)}/s (to {num(v[low_at])} by "
                     f"t={num(t[low_at])} s)")
        else:
            text += f" and had not drained by the last sample (t={num(t[-1])} s)"
        out.append(Finding("backlog", s.subject, s.component, s.source, float(t[a]),
                           peak / max(1.0, float(v[a])), text))
    return out


def api_latency(monitor: pd.DataFrame) -> list[Finding]:
    """An operation's p95 after its first minute at >= API_FACTOR x that minute's p50."""
    out = []
    for op, rows in ms.api_requests(monitor).groupby("operation", sort=True):
        t0 = float(rows["t_s"].min())
        base = rows[rows["t_s"] < t0 + API_BASELINE_S]
        later = rows[rows["t_s"] >= t0 + API_BASELINE_S]
        if len(base) < API_MIN_REQUESTS or len(later) < API_MIN_REQUESTS:
            continue
        p50 = float(np.median(base["latency_s"]))
        p95 = float(np.percentile(later["latency_s"], 95))
        if p50 <= 0 or p95 < API_FACTOR * p50:
            continue
        slow = later[later["latency_s"] >= API_FACTOR * p50]
        start = float(slow["t_s"].min()) if len(slow) else float(later["t_s"].min())
        text = (f"{op}: p95 {num(p95)} s after its first {num(API_BASELINE_S)} s, "
                f"{num(p95 / p50)}x its p50 of {num(p50)} s in them ({len(base)} then "
                f"{len(later)} requests; the first at >= {num(API_FACTOR)}x sent at "
                f"t={num(start)} s)")
        out.append(Finding("api", f"{op} latency", "api latency", "api", start,
                           p95 / p50 / API_FACTOR, text))
    return out


def _in_flight(monitor: pd.DataFrame) -> str:
    """The simulated cloud's oldest create in flight against the proxy's timeout."""
    oldest = monitor[monitor["metric"] == _SIM_OLDEST] if "metric" in monitor else monitor
    timeout = monitor[monitor["metric"] == _SIM_TIMEOUT] if "metric" in monitor else monitor
    if oldest.empty or timeout.empty:
        return ""
    o = oldest.groupby("t_s")["value"].max().sort_index()
    t, v = o.index.to_numpy(float), o.to_numpy(float)
    limit = float(timeout["value"].max())
    peak_at = int(np.argmax(v))
    peak_t, peak = float(t[peak_at]), float(v[peak_at])
    crossed = t[v >= limit]
    if not len(crossed):
        return (f"; nova-api's oldest create in flight peaked at {num(peak)} s, below the "
                f"proxy's {num(limit)} s timeout")
    return (f"; nova-api's oldest create in flight reached the proxy's {num(limit)} s "
            f"timeout at t={num(float(crossed[0]))} s and peaked at {num(peak)} s "
            f"at t={num(peak_t)} s")


def gateway(monitor: pd.DataFrame) -> list[Finding]:
    """Requests the proxy answered 502/504, per operation."""
    requests = ms.api_requests(monitor)
    bad = requests[requests["status"].isin(GATEWAY_STATUSES)]
    out = []
    for op, rows in bad.groupby("operation", sort=True):
        first = rows.iloc[0]
        statuses = "/".join(str(s) for s in sorted(set(rows["status"])))
        n = len(rows)
        text = (f"{n} {op} request{'s' if n != 1 else ''} answered HTTP {statuses} by the "
                f"proxy (the first sent at t={num(first['t_s'])} s, answered after "
                f"{num(first['latency_s'])} s)")
        if op == "create":
            text += _in_flight(monitor)
        out.append(Finding("gateway", f"gateway ({op} HTTP {statuses})", "gateway", "api",
                           float(first["t_s"]), float(n), text))
    return out


RULES: tuple[Callable[[pd.DataFrame], list[Finding]], ...] = (
    saturation, backlog, api_latency, gateway)


def fire(monitor: pd.DataFrame) -> list[Finding]:
    """Every rule over one case's monitor rows (unranked, no symptom attached)."""
    if monitor.empty or "metric" not in monitor.columns:
        return []
    return [finding for rule in RULES for finding in rule(monitor)]


# -- ranking -----------------------------------------------------------------------------


def rank(findings: Sequence[Finding], symptoms: Sequence[Symptom]) -> tuple[Finding, ...]:
    """Findings related to a symptom's area first; then those that began before that
    symptom's window ended; then nearest the symptom; then the larger magnitude."""
    ends = [s.end_s if s.end_s is not None else math.inf for s in symptoms]
    latest = max(ends, default=math.inf)
    keyed = []
    for f in findings:
        related = next((s for s in symptoms
                        if f.component in AREA_COMPONENTS.get(s.area, ())), None)
        if related is None:
            end, place = latest, len(AREA_COMPONENTS)
        else:
            end = related.end_s if related.end_s is not None else math.inf
            place = AREA_COMPONENTS[related.area].index(f.component)
        keyed.append(((related is None, f.start_s > end, place, -f.magnitude, f.start_s,
                       f.rule, f.subject), replace(f, symptom=related)))
    return tuple(f for _, f in sorted(keyed, key=lambda item: item[0]))


def attribute(monitor: pd.DataFrame, symptoms: Sequence[Symptom]) -> Attribution:
    """One case: its symptoms and the ranked findings (none without a symptom)."""
    symptoms = tuple(symptoms)
    if not symptoms:
        return Attribution((), ())
    return Attribution(symptoms, rank(fire(monitor), symptoms))


SymptomsOf = Callable[[Mapping[str, pd.DataFrame]], Sequence[Symptom]]


def attribute_case(tables: Mapping[str, pd.DataFrame],
                   symptoms_of: SymptomsOf | None) -> Attribution:
    """One case from its tables (each holding that case's rows only)."""
    symptoms = symptoms_of(tables) if symptoms_of is not None else ()
    return attribute(tables.get("monitor", pd.DataFrame()), symptoms)


def case_tables(run: Run, case: str) -> dict[str, pd.DataFrame]:
    """Every table of `run`, cut to `case`'s rows."""
    return {name: frame[frame["case"].astype(str) == case] if "case" in frame.columns
            else frame.iloc[0:0] for name, frame in run.tables.items()}


def attribute_run(run: Run) -> dict[str, Attribution]:
    """Every case of `run` that has monitor rows, by case id, in journal order."""
    from osbench import kinds

    monitor = run.table("monitor")
    if monitor.empty or "case" not in monitor.columns:
        return {}
    spec = kinds.get(str((run.manifest.get("scenario") or {}).get("kind", "")))
    symptoms_of = spec.symptom_function() if spec is not None else None
    cases = list(dict.fromkeys(monitor["case"].astype(str)))
    return {case: attribute_case(case_tables(run, case), symptoms_of) for case in cases}
