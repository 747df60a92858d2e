"""The boot kind's symptoms: what went wrong in one case, from its own tables, and
when on the case clock, for the monitors' attribution (`osbench.monitors.attribution`).

Areas (the attribution relates each to the components that can explain it):
- build: ERROR by MessagingTimeout (an RPC reply that came too late) or another
  build fault; instances never ACTIVE within the case (build_timeout);
- dhcp: ACTIVE but silent, the console showing the DHCP client giving up;
  ERROR with Nova's network-allocation fault (vif plugging timed out);
- api: a create request answered 5xx (a proxy's 504), not answered, or
  refused; instances never created;
- slow: an SLA criterion on a time column (`p95(time_to_active_s) <= 300`) missed;
- guest: silent for another reason (a console class other than dhcp_timeout).

Times: the boot tables' `t_s` and `time_to_*_s` count from the instance's
batch's create request; adding that batch's `creates.sent_s` (case clock) puts
them on the monitors' clock. A DHCP give-up's time is estimated from the
console: cloud-init's init stage prints the guest's uptime ("Up 301.00
seconds") just after the DHCP client gave up, and the guest booted about when
the tracker saw it ACTIVE (up to one poll interval earlier).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from osbench.kinds.boot.params import VIF_FAILURE
from osbench.monitors.attribution import Symptom, num

#: Nova's fault when an RPC call's reply did not come within oslo.messaging's timeout.
RPC_TIMEOUT = re.compile(r"MessagingTimeout|Timed out waiting for a reply", re.IGNORECASE)
#: cloud-init's init stage, with the guest's uptime.
CLOUD_INIT_UPTIME = re.compile(r"running 'init'.*?\bUp ([0-9]+(?:\.[0-9]+)?) seconds")
#: An SLA label on a time column: `p95(time_to_active_s)`.
TIME_CRITERION = re.compile(r"\w+\((time_to_\w+_s)\)")
#: Longest fault message quoted in a symptom.
FAULT_CHARS = 80

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    return tables.get(name, pd.DataFrame())


def _window(times: Sequence[float] | np.ndarray) -> tuple[float | None, float | None, str]:
    """(start, end, " between t=A and B s") of finite `times`."""
    x = np.asarray([t for t in times if t is not None], dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return None, None, ""
    lo, hi = float(x.min()), float(x.max())
    text = f" at t={num(lo)} s" if num(lo) == num(hi) else (
        f" between t={num(lo)} and {num(hi)} s")
    return lo, hi, text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class _Clock:
    """Case-clock times of one case's instances and events."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        creates = _table(tables, "creates")
        self.sent: dict[Any, float] = {}
        if {"batch", "sent_s"} <= set(creates.columns):
            for batch, sent in zip(creates["batch"], creates["sent_s"], strict=True):
                self.sent.setdefault(batch, float(sent))
        self.first = min(self.sent.values(), default=0.0)
        timeline = _table(tables, "timeline")
        self.events: dict[tuple[str, str], float] = {}
        if {"instance_id", "event", "t_s"} <= set(timeline.columns):
            batches = timeline["batch"] if "batch" in timeline.columns else [None] * len(
                timeline)
            for iid, event, t, batch in zip(timeline["instance_id"], timeline["event"],
                                            timeline["t_s"], batches, strict=True):
                key = (str(iid), str(event))
                at = self.origin(batch) + float(t)
                self.events[key] = min(self.events.get(key, at), at)

    def origin(self, batch: Any) -> float:
        return self.sent.get(batch, self.first)

    def of(self, row: Mapping[Any, Any], event: str, column: str) -> float | None:
        """When `row`'s instance reached `event`: the timeline, else its `column`."""
        at = self.events.get((str(row.get("instance_id")), event))
        if at is not None:
            return at
        value = row.get(column)
        if value is None or pd.isna(value):
            return None
        return self.origin(row.get("batch")) + float(value)


def _give_ups(rows: pd.DataFrame, consoles: pd.DataFrame, clock: _Clock) -> list[float]:
    """Estimated DHCP give-up times (ACTIVE + cloud-init's uptime); [] when a console
    does not say."""
    outputs: dict[str, str] = {}
    if {"instance_id", "output"} <= set(consoles.columns):
        for iid, text in zip(consoles["instance_id"], consoles["output"], strict=True):
            if isinstance(text, str):
                outputs[str(iid)] = text
    out = []
    for row in rows.to_dict("records"):
        found = CLOUD_INIT_UPTIME.findall(outputs.get(str(row.get("instance_id")), ""))
        active = clock.of(row, "active", "time_to_active_s")
        if not found or active is None:
            return []
        out.append(active + float(found[-1]))
    return out


def _instance_symptoms(tables: Mapping[str, pd.DataFrame], clock: _Clock) -> list[Symptom]:
    instances = _table(tables, "instances")
    if instances.empty or "outcome" not in instances.columns:
        return []
    outcome = instances["outcome"].astype(str)
    fault = (instances["fault"].fillna("").astype(str) if "fault" in instances.columns
             else pd.Series([""] * len(instances), index=instances.index))
    console = (instances["console_class"].fillna("").astype(str)
               if "console_class" in instances.columns
               else pd.Series([""] * len(instances), index=instances.index))
    errors = outcome == "error"
    rpc = errors & fault.str.contains(RPC_TIMEOUT)
    vif = errors & fault.str.contains(VIF_FAILURE, regex=False) & ~rpc
    silent = outcome == "no_phone_home"
    dhcp = silent & (console == "dhcp_timeout")
    out = []

    def times(mask: pd.Series, event: str, column: str) -> list[float]:
        found = (clock.of(r, event, column) for r in instances[mask].to_dict("records"))
        return [t for t in found if t is not None]

    def add(area: str, what: str, mask: pd.Series, text: str, at: Sequence[float]) -> None:
        n = int(mask.sum())
        if n:
            start, end, when = _window(at)
            out.append(Symptom(area, what, n, start, end, text.format(
                n=_plural(n, "instance"), when=when)))

    add("build", "rpc_timeout", rpc, "{n} went to ERROR by MessagingTimeout (an RPC reply "
        "that did not come in time){when}", times(rpc, "error", "time_to_error_s"))
    add("dhcp", "vif_failure", vif, "{n} went to ERROR: Failed to allocate the network(s) "
        "(the port was not ACTIVE within vif_plugging_timeout){when}",
        times(vif, "error", "time_to_error_s"))
    other = errors & ~rpc & ~vif
    if other.any():
        common = fault[other].value_counts().index[0] or "no fault message"
        common = common if len(common) <= FAULT_CHARS else common[:FAULT_CHARS - 1] + "…"
        add("build", "error", other, "{n} went to ERROR (most often: " + common.replace(
            "{", "{{").replace("}", "}}") + "){when}", times(other, "error", "time_to_error_s"))
    give_ups = _give_ups(instances[dhcp], _table(tables, "consoles"), clock)
    if give_ups:
        add("dhcp", "dhcp_timeout", dhcp, "{n} timed out DHCP{when} (ACTIVE without an "
            "address; their consoles show the DHCP client giving up)", give_ups)
    else:
        add("dhcp", "dhcp_timeout", dhcp, "{n} ACTIVE without an address, their consoles "
            "showing the DHCP client giving up (ACTIVE{when})",
            times(dhcp, "active", "time_to_active_s"))
    guest = silent & ~dhcp
    if guest.any():
        classes = ", ".join(sorted(set(console[guest]) - {""})) or "not read"
        add("guest", "silent", guest, "{n} ACTIVE that never phoned home (console: "
            f"{classes})" + "{when}", times(guest, "active", "time_to_active_s"))
    polls = _table(tables, "polls")
    last_poll = [float(polls["t_s"].max())] if "t_s" in polls.columns and len(polls) else []
    never = outcome == "build_timeout"
    add("build", "build_timeout", never, "{n} never became ACTIVE in time{when}",
        [clock.first, *last_poll] if never.any() else [])
    uncreated = outcome == "not_created"
    add("api", "not_created", uncreated, "{n} never created{when}",
        [clock.first, *last_poll] if uncreated.any() else [])
    return out


def _create_errors(creates: pd.DataFrame) -> list[Symptom]:
    if creates.empty or "outcome" not in creates.columns:
        return []

    def column(name: str) -> pd.Series:
        if name in creates.columns:
            return pd.to_numeric(creates[name], errors="coerce")
        return pd.Series([np.nan] * len(creates), index=creates.index, dtype=float)

    status = column("status")
    bad_rows = creates["outcome"].astype(str).isin(("unknown", "failed")) | (status >= 500)
    n = int(bad_rows.sum())
    if not n:
        return []
    words = []
    for s in status[bad_rows]:
        word = "no reply" if pd.isna(s) else f"HTTP {int(s)}"
        if word not in words:
            words.append(word)
    sent, replied = column("sent_s")[bad_rows], column("reply_s")[bad_rows]
    size = int(column("size")[bad_rows].fillna(0).sum())
    start, end, _ = _window([*sent, *replied])
    waited = (replied - sent).dropna()
    after = f" after {num(float(waited.max()))} s" if len(waited) else ""
    text = (f"{_plural(n, 'create request')} for {_plural(size, 'instance')} answered "
            f"{' / '.join(words)}{after} (sent at t={num(float(sent.min()))} s)")
    return [Symptom("api", "create_error", n, start, end, text)]


def _slow(tables: Mapping[str, pd.DataFrame], clock: _Clock) -> list[Symptom]:
    sla = _table(tables, "sla")
    instances = _table(tables, "instances")
    if sla.empty or "label" not in sla.columns or "passed" not in sla.columns:
        return []
    out = []
    for row in sla[sla["passed"].astype(str).str.lower() == "false"].to_dict("records"):
        match = TIME_CRITERION.fullmatch(str(row["label"]))
        if match is None:
            continue
        column = match.group(1)
        values = (pd.to_numeric(instances[column], errors="coerce")
                  if column in instances.columns else pd.Series(dtype=float))
        check = _OPS.get(str(row.get("op")))
        threshold = float(row.get("threshold", np.nan))
        within = check(values, threshold) if check else pd.Series(False, index=values.index)
        beyond = values[values.notna() & ~within.astype(bool)]
        batches = (instances.loc[beyond.index, "batch"] if "batch" in instances.columns
                   else [None] * len(beyond))
        at = [clock.origin(b) + float(v) for b, v in zip(batches, beyond, strict=True)]
        start, end, when = _window(at)
        measured = row.get("measured")
        got = "no data" if measured is None or pd.isna(measured) else f"{num(float(measured))} s"
        text = (f"SLA {row.get('criterion')} missed (measured {got}): "
                f"{_plural(len(beyond), 'instance')} beyond {num(threshold)} s{when}")
        out.append(Symptom("slow", f"slow {column}", max(1, len(beyond)), start, end, text))
    return out


def symptoms(tables: Mapping[str, pd.DataFrame]) -> list[Symptom]:
    """One boot case's symptoms, the most instances first (`tables`: that case's rows)."""
    clock = _Clock(tables)
    found = [*_instance_symptoms(tables, clock), *_create_errors(_table(tables, "creates")),
             *_slow(tables, clock)]
    return sorted(found, key=lambda s: -s.count)
