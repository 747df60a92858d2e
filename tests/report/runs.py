"""Runs written through the real journal, with known contents, for report tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from osbench.journal import Journal

SIM_TARGET = {"type": "simulated-cloud", "simulated": True, "profile": "small-pets",
              "time_scale": 60.0}
LAB_TARGET = {"type": "hosts", "simulated": False, "lab": True}


def _manifest(name: str, kind: str, cases: list[str], target: dict[str, Any],
              clock: str) -> dict[str, Any]:
    return {"scenario": {"name": name, "kind": kind, "params": {"count": 10}},
            "cases": [{"case_id": c} for c in cases], "targets": [target], "clock": clock,
            "seed": 7, "osbench": {"version": "0.1.0", "commit": "0123456789abcdef",
                                   "dirty": True},
            "python": {"version": "3.11.7"}, "libraries": {"pandas": "2.2.0"},
            "host": {"hostname": "h", "platform": "Linux", "cpu_count": 2}}


def boot_run(results_dir: Path, run_id: str, *, finish: bool = True) -> Path:
    """Case "count=10": 6 ok (one over IPv6), 2 ERROR (same fault but for the instance
    UUID), 1 silent with a DHCP timeout in its console, 1 never created; the create
    request got a 504 after 61 s. Case "count=0" is empty (no rows at all)."""
    journal = Journal.create(results_dir, run_id,
                             _manifest("boot-test", "boot", ["count=10", "count=0"],
                                       SIM_TARGET, "modelled"))
    journal.record("creates", {"case": "count=10", "batch": 1, "size": 10, "sent_s": 1.0,
                               "outcome": "unknown", "status": 504, "reply_s": 62.0,
                               "error": "HTTP 504"})
    outcomes = ["ok"] * 6 + ["error", "error", "no_phone_home", "not_created"]
    for i, outcome in enumerate(outcomes):
        iid = f"00000000-0000-4000-8000-{i:012d}"
        active = 50.0 + i if outcome in ("ok", "no_phone_home") else None
        phone = 80.0 + 2 * i if outcome == "ok" else None
        fault = (f"Build of instance {iid} aborted: Failed to allocate the network(s), "
                 "not rescheduling.") if outcome == "error" else None
        if active is not None:
            journal.record("timeline", {"case": "count=10", "instance_id": iid,
                                        "event": "active", "t_s": active})
        if phone is not None:
            journal.record("timeline", {"case": "count=10", "instance_id": iid,
                                        "event": "phone_home", "t_s": phone})
            journal.record("phone_home", {"case": "count=10", "instance_id": iid,
                                          "address_family": "ipv6" if i == 0 else "ipv4",
                                          "duplicate": False})
        journal.record("instances", {
            "case": "count=10", "instance_id": iid, "outcome": outcome,
            "time_to_active_s": active, "time_to_phone_home_s": phone, "fault": fault,
            "console_class": "dhcp_timeout" if outcome == "no_phone_home" else None,
            "address_family": None})
    journal.record("cases", {"case": "count=10", "status": "completed",
                             "metric.requested": 10.0})
    journal.record("sla", {"case": "count=10", "criterion": "phone_home_ok_pct >= 99",
                           "measured": 60.0, "passed": False})
    if finish:
        journal.record("cases", {"case": "count=0", "status": "completed",
                                 "metric.requested": 0.0})
        journal.finish("completed")
    else:
        journal.close()
        with (results_dir / run_id / "events.jsonl").open("a") as f:
            f.write('{"table": "timeline", "case": "count=0", "t_')  # cut by a kill
    return results_dir / run_id


def outcomes_run(results_dir: Path, run_id: str, scenario: str,
                 cases: Mapping[str, Mapping[str, int]], *,
                 create_status: int = 202) -> Path:
    """A boot run of `scenario` (a seed-replay name, say) whose cases end with the given
    outcome counts, e.g. {"default": {"ok": 77, "error": 23}}: ERROR with Nova's
    network-allocation fault, silent ones with a DHCP give-up in their console. Each
    case's one create request is answered `create_status` (504: outcome unknown)."""
    journal = Journal.create(results_dir, run_id,
                             _manifest(scenario, "boot", list(cases), SIM_TARGET, "modelled"))
    for case, counts in cases.items():
        requested = sum(counts.values())
        journal.record("creates", {
            "case": case, "batch": 1, "size": requested, "sent_s": 1.0,
            "outcome": "unknown" if create_status == 504 else "accepted",
            "status": create_status, "reply_s": 62.0 if create_status == 504 else 2.0,
            "error": f"HTTP {create_status}" if create_status >= 400 else None})
        outcomes: Sequence[str] = [o for o, n in counts.items() for _ in range(n)]
        for i, outcome in enumerate(outcomes):
            iid = f"00000000-0000-4000-8000-{i:012d}"
            active = 50.0 + i / 10 if outcome in ("ok", "no_phone_home") else None
            phone = 80.0 + i / 10 if outcome == "ok" else None
            for event, t_s in (("active", active), ("phone_home", phone)):
                if t_s is not None:
                    journal.record("timeline", {"case": case, "instance_id": iid,
                                                "event": event, "t_s": t_s})
            journal.record("instances", {
                "case": case, "instance_id": iid, "outcome": outcome,
                "time_to_active_s": active, "time_to_phone_home_s": phone,
                "fault": (f"Build of instance {iid} aborted: Failed to allocate the "
                          "network(s), not rescheduling.") if outcome == "error" else None,
                "console_class": "dhcp_timeout" if outcome == "no_phone_home" else None,
                "address_family": None})
        journal.record("cases", {"case": case, "status": "completed",
                                 "metric.requested": float(requested)})
    journal.finish("completed")
    return results_dir / run_id


#: Summed Gb/s per (variant, queues): three rounds each, like the lab demo.
NETSWEEP_ROUNDS = {
    ("kernel-3.13", 1): [3.2, 3.3, 3.35], ("kernel-3.13", 2): [3.4, 3.45, 3.38],
    ("kernel-3.13", 4): [3.5, 3.55, 3.48], ("kernel-3.13", 8): [3.6, 3.55, 3.56],
    ("kernel-4.4", 1): [3.2, 3.25, 3.24], ("kernel-4.4", 2): [6.1, 5.9, 6.0],
    ("kernel-4.4", 4): [8.0, 8.1, 7.96], ("kernel-4.4", 8): [8.5, 8.3, 8.46],
}


def netsweep_run(results_dir: Path, run_id: str, *, failed_round: bool = False) -> Path:
    cases = [f"queues={q},variant={v}" for v, q in NETSWEEP_ROUNDS]
    journal = Journal.create(results_dir, run_id,
                             _manifest("netsweep-test", "netsweep", cases, LAB_TARGET, "real"))
    for (variant, queues), sums in NETSWEEP_ROUNDS.items():
        case = f"queues={queues},variant={variant}"
        for i, total in enumerate(sums, start=1):
            journal.record("runs", {"case": case, "variant": variant, "queues": queues,
                                    "run": i, "sum_gbps": total, "retransmits": 3})
        if failed_round and (variant, queues) == ("kernel-4.4", 8):
            journal.record("runs", {"case": case, "variant": variant, "queues": queues,
                                    "run": 4, "sum_gbps": None, "retransmits": None})
        journal.record("cases", {"case": case, "status": "completed"})
    journal.finish("completed")
    return results_dir / run_id


#: Latencies (ms) per mode, the field notes' shape: rootwrap ~15x direct.
ROOTWRAP_SAMPLES = {
    "direct": [48.0, 47.0, 50.0, 49.0, 46.0],
    "rootwrap": [713.0, 700.0, 730.0, 690.0, 720.0],
    "daemon": [60.0, 58.0, 62.0, 61.0, 59.0],
}


def rootwrap_run(results_dir: Path, run_id: str, *, finish: bool = True,
                 samples: Mapping[str, list[float]] = ROOTWRAP_SAMPLES) -> Path:
    """One case; sudo skipped; the kind's `modes` rows (with its bootstrap interval)
    only when the run finished, as a killed run never wrote them."""
    journal = Journal.create(results_dir, run_id,
                             _manifest("rootwrap-test", "rootwrap", ["default"],
                                       {"type": "local", "simulated": False}, "real"))
    journal.record("skipped", {"case": "default", "mode": "sudo",
                               "reason": "sudo is not installed on local"})
    for i in range(5):
        for mode, values in samples.items():
            journal.record("samples", {"case": "default", "mode": mode, "i": i,
                                       "latency_ms": values[i], "rc": 0})
    if not finish:
        journal.close()
        return results_dir / run_id
    for mode, (low, high) in {"direct": (1.0, 1.0), "rootwrap": (14.0, 15.5),
                              "daemon": (1.15, 1.3)}.items():
        journal.record("modes", {"case": "default", "mode": mode, "ratio_ci_low": low,
                                 "ratio_ci_high": high})
    journal.record("cases", {"case": "default", "status": "completed"})
    journal.finish("completed")
    return results_dir / run_id
