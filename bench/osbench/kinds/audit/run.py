"""Kind `audit`: one case runs the checks it names, each on its own, and journals
what it read and saw as it goes.

- `versions`: one command per host of the inventory (default: the local lab's),
  every host at once, each bounded; hosts grouped into roles; drift within each
  role against its majority.
- `firewall`: the instances in scope from the cloud target's API, what their
  groups' rules open to the vantage point, then real probes from this machine
  to those instances' addresses only. On the simulated cloud the probes are
  skipped (its instances have no network stack) and a note says so.

A check that cannot run (no inventory, the cloud refuses) is recorded in
`audit_notes` and the other check still runs; the case then ends with that
error. Nothing on a host or the cloud is written: no group, rule or package.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import pandas as pd

from osbench.errors import OsbenchError, UserError
from osbench.hosts.inventory import Inventory
from osbench.kinds import CaseContext, Kind
from osbench.kinds.audit import (
    SPEC,
    drift,
    probe,
    rules,
    scope,
    selfboot,
    vantage,
    versions,
)
from osbench.kinds.audit.params import AuditParams, FirewallParams, VersionsParams
from osbench.scenario import Case
from osbench.scenario.schema import did_you_mean

SIM_SKIP = ("probes skipped: the simulated cloud's instances have no network stack (their "
            "addresses exist only in its model), so nothing could answer; the expected "
            "open and closed ports come from the API alone")


def resolve_roles(inventory: Inventory, roles: Mapping[str, tuple[str, ...]]) -> dict[
        str, list[str]]:
    """Role -> hosts: the scenario's, checked against the inventory, or else each
    inventory role (hosts with none in `all`)."""
    if roles:
        for role, names in roles.items():
            for name in names:
                if name not in inventory.hosts:
                    raise UserError(f"params.versions.roles.{role}: no host {name!r} in "
                                    f"{inventory.file}",
                                    hint=did_you_mean(name, inventory.hosts)
                                    or f"hosts: {', '.join(sorted(inventory.hosts))}")
        return {role: list(names) for role, names in roles.items()}
    out: dict[str, list[str]] = {}
    for name, spec in inventory.hosts.items():
        for role in spec.roles or ("all",):
            out.setdefault(role, []).append(name)
    return out


class AuditKind(Kind):
    """Runs audit cases (the spec is `osbench.kinds.audit.SPEC`)."""

    def plan(self, case: Case) -> list[str]:
        p: AuditParams = case.params
        steps: list[str] = []
        if "versions" in p.checks:
            v = p.versions
            where = (v.inventory or case.target.hosts
                     or "the inventory of --hosts FILE, else the local lab")
            steps.append(
                f"versions (reads only): one command per host of {where}, "
                f"at most {v.timeout_s:g} s each: "
                f"uname -r; dpkg-query -W / rpm -qa {' '.join(v.packages)}"
                + (f"; sha256sum {' '.join(v.config_files)}" if v.config_files else "")
                + (f"; roles {', '.join(f'{r}={list(h)}' for r, h in v.roles.items())}"
                   if v.roles else "; roles from the inventory"))
        if "firewall" in p.checks and p.firewall is not None:
            f = p.firewall
            if f.boot is not None:
                b = f.boot
                steps.append(
                    f"firewall: POST /servers, one probe instance per enabled hypervisor "
                    f"(admin; at most {b.max_instances}), named osbench-<run>-audit-<n>, "
                    f"image {b.image or '(default)'}, flavor {b.flavor or '(default)'}, "
                    f"network {b.network or '(default)'}, groups {list(b.security_groups)}; "
                    "DELETE them afterwards (cleanup: always)")
            steps.append(f"firewall (reads only): GET servers ("
                         f"{scope.describe(f) if f.boot is None else 'its probe instances'}), "
                         "their ports, floating IPs, security groups and rules")
            steps.append(
                f"firewall probes from {f.vantage} to the addresses of those instances "
                f"only: TCP connect to every expected-open port (up to {f.per_range} per "
                f"range), UDP where a rule opens it, and the closed sample "
                f"{list(f.closed_sample)}; at most {f.max_probes} probes, {f.rate_per_s:g}/s, "
                f"{f.concurrency} in flight, {f.connect_timeout_s:g} s each, "
                f"{f.budget_s:g} s in all (skipped on the simulated cloud)"
                if f.probe else "firewall: no probe (probe: false)")
            steps.append("no security group, rule or package is changed")
        return steps

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: AuditParams = case.params
        failed: list[OsbenchError] = []
        for check in p.checks:
            try:
                if check == "versions":
                    await self._versions(p.versions, ctx)
                elif p.firewall is not None:
                    await self._firewall(p.firewall, ctx)
            except OsbenchError as exc:
                ctx.record("audit_notes", {"check": check, "level": "error",
                                           "message": f"{type(exc).__name__}: {exc}"})
                failed.append(exc)
        if failed:
            raise failed[0]

    # -- versions ------------------------------------------------------------
    async def _versions(self, v: VersionsParams, ctx: CaseContext) -> None:
        from osbench.hosts.target import HostsTarget, connect_for_case

        if v.inventory is None and isinstance(ctx.target, HostsTarget):
            # A versions-only audit's target: the hosts of --hosts (or the lab),
            # connected and closed by the run.
            inventory, hosts = ctx.target.inventory, ctx.target.hosts
        else:
            inventory, hosts = connect_for_case(ctx, v.inventory)
        roles = resolve_roles(inventory, v.roles)
        wanted = {h for names in roles.values() for h in names}
        ctx.record("audit_notes", {"check": "versions", "level": "info", "message": (
            f"inventory {inventory.file} (host keys: {inventory.host_key_policy}); roles "
            + "; ".join(f"{r}: {', '.join(names)}" for r, names in roles.items()))})
        chosen = {name: host for name, host in hosts.items() if name in wanted}

        def answered(f: versions.HostFacts) -> None:
            """A host's raw values, journaled as it answers."""
            if f.answered:
                ctx.record_many("versions", [
                    {"host": f.host, "item_type": item_type, "item": item, "value": value}
                    for (item_type, item), value in sorted(drift.values(f).items())])

        facts = await versions.collect_all(chosen, v.packages, v.config_files, v.timeout_s,
                                           answered)
        role_of = {h: [r for r, names in roles.items() if h in names] for h in wanted}
        found = drift.all_drift(roles, facts)
        odd = {d.host for d in found}
        for f in facts:
            ctx.record("version_hosts", {
                "host": f.host, "roles": ",".join(role_of[f.host]), "answered": f.answered,
                "in_step": ("unanswered" if not f.answered else "drifted" if f.host in odd
                            else "ok"),
                "error": f.error or "", "kernel": f.kernel or "", "packages": len(f.packages),
                "managers": ",".join(f.managers), "duration_s": f.duration_s})
            if not f.answered:
                ctx.record("audit_notes", {"check": "versions", "level": "warning",
                                           "message": f"host {f.host} did not answer: "
                                                      f"{f.error}"})
        ctx.record_many("drift", [d.row() for d in found])
        ctx.progress(hosts=len(facts), answered=sum(f.answered for f in facts))

    # -- firewall ------------------------------------------------------------
    async def _firewall(self, f: FirewallParams, ctx: CaseContext) -> None:
        client = getattr(ctx.target, "client", None)
        if client is None:
            raise UserError("the firewall check needs a cloud target")
        if f.boot is not None:
            prefix = await selfboot.boot(client, ctx, f.boot,
                                         getattr(ctx.target, "defaults", {}))
            f = dataclasses.replace(f, name_prefix=prefix, boot=None)
        found = await scope.read(client, f)
        for note in found.notes:
            ctx.record("audit_notes", {"check": "firewall", "level": "warning",
                                       "message": note})
        for inst in found.instances:
            ctx.record("instances", {
                "instance": inst.id, "name": inst.name, "status": inst.status,
                "hypervisor": inst.hypervisor,
                "addresses": ",".join(a.address for a in inst.addresses),
                "groups": ",".join(sorted({found.group_names.get(g, g) for a in inst.addresses
                                           for g in a.groups}))})
        if not found.instances:
            ctx.record("audit_notes", {"check": "firewall", "level": "warning",
                                       "message": f"empty scope: no instance matched "
                                                  f"{scope.describe(f)}; nothing probed"})
            return
        if ctx.target.simulated or not f.probe:
            self._probes(f, found, ctx, {})
            ctx.record("audit_notes", {"check": "firewall", "level": "info", "message":
                                       SIM_SKIP if ctx.target.simulated else
                                       "probes skipped: params.firewall.probe is false "
                                       "(the API side only)"})
            return
        where = await self._vantage(f, ctx)
        ctx.record("audit_notes", {"check": "firewall", "level": "info",
                                   "message": f"probes from {where.name}"})
        routes = ({} if f.vantage_address else await where.routes(
            sorted({a.address for i in found.instances for a in i.addresses})))
        probes = self._probes(f, found, ctx, routes)
        if len(probes) > f.max_probes:
            left = sorted({p.instance for p in probes[f.max_probes:]})
            ctx.record("audit_notes", {"check": "firewall", "level": "warning", "message":
                                       f"{len(probes)} probes planned, max_probes is "
                                       f"{f.max_probes}: not all ports of {len(left)} "
                                       f"instance(s) probed (first: {left[0]})"})
            probes = probes[:f.max_probes]
        hypervisor = {i.id: i.hypervisor for i in found.instances}
        names = {i.id: i.name for i in found.instances}

        def record(outcome: probe.Outcome) -> None:
            pr = outcome.probe
            ctx.record("probes", {
                "instance": pr.instance, "name": names[pr.instance],
                "hypervisor": hypervisor[pr.instance], "address": pr.address,
                "protocol": pr.protocol, "port": pr.port, "expected": pr.expected,
                "seen": outcome.seen, "finding": outcome.finding,
                "latency_ms": outcome.latency_ms, "detail": outcome.detail})

        bounds = probe.Bounds(f.rate_per_s, f.concurrency, f.connect_timeout_s, f.budget_s)
        outcomes = await where.run(probes, bounds, record)
        self._vantage_notes(outcomes, ctx)

    async def _vantage(self, f: FirewallParams, ctx: CaseContext) -> vantage.Vantage:
        hosts = None
        if f.vantage.startswith("host:"):
            from osbench.hosts.target import connect_for_case

            _, hosts = connect_for_case(ctx, f.inventory)
        return vantage.open_vantage(f.vantage, hosts, f.python)

    def _probes(self, f: FirewallParams, found: scope.Scope, ctx: CaseContext,
                routes: Mapping[str, str | None]) -> list[probe.Probe]:
        """Every probe of the instances in scope, the expected ports journaled;
        `routes`: the vantage's source address towards each (None: no route)."""
        out: list[probe.Probe] = []
        for inst in found.instances:
            if inst.status != "ACTIVE":
                ctx.record("audit_notes", {"check": "firewall", "level": "info",
                                           "message": f"{inst.name} ({inst.id}) is "
                                                      f"{inst.status}: not probed"})
                continue
            if not inst.addresses:
                ctx.record("audit_notes", {"check": "firewall", "level": "info",
                                           "message": f"{inst.name} ({inst.id}) has no "
                                                      "address on a port: not probed"})
            for addr in inst.addresses:
                source = f.vantage_address
                if source is None and routes:
                    source = routes.get(addr.address)
                    if source is None:
                        ctx.record("audit_notes", {
                            "check": "firewall", "level": "warning",
                            "message": f"the vantage ({f.vantage}) has no route to "
                                       f"{addr.address} ({inst.name}): not probed"})
                        continue
                group_rules = [r for g in addr.groups for r in found.rules.get(g, [])]
                exp = (rules.expected(group_rules, addr.address, source) if addr.port_security
                       else rules.ALL_OPEN)
                ports = rules.probe_ports(exp, f.closed_sample, f.per_range)
                ctx.record_many("expected", [
                    {"instance": inst.id, "address": addr.address, "kind": addr.kind,
                     "protocol": protocol, "port": port, "expected": want,
                     "rules": ",".join(exp.rules), "vantage": source or "any"}
                    for protocol, port, want in ports])
                out += [probe.Probe(inst.id, addr.address, protocol, port, want)
                        for protocol, port, want in ports]
        return out

    def _vantage_notes(self, outcomes: list[probe.Outcome], ctx: CaseContext) -> None:
        """Instances that answered nothing at all: the vantage may not reach them."""
        per: dict[str, list[probe.Outcome]] = {}
        for o in outcomes:
            per.setdefault(o.probe.address, []).append(o)
        silent = [a for a, rows in per.items() if not any(o.seen in probe.REACHED
                                                          for o in rows)]
        if silent and len(silent) == len(per):
            ctx.record("audit_notes", {"check": "firewall", "level": "warning", "message":
                                       f"no probe reached any of the {len(per)} address(es): "
                                       "the vantage may not reach the instances at all (a "
                                       "firewall on the path, no route back); unreachable "
                                       "open ports may be the vantage's, not the instances'"})
        elif silent:
            ctx.record("audit_notes", {"check": "firewall", "level": "info", "message":
                                       f"{len(silent)} address(es) answered no probe: "
                                       + ", ".join(sorted(silent)[:10])})

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        return metrics(tables)


def metrics(tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """The audit's metrics from its tables (also for reports of old runs). What a
    check did not measure is NaN (an SLA on it fails with "no data"): drift when no
    host answered, probe counts when nothing was probed (the simulated cloud, an
    empty scope)."""
    out: dict[str, float] = dict.fromkeys(SPEC.metrics, math.nan)
    hosts = tables.get("version_hosts", pd.DataFrame())
    if not hosts.empty:
        answered = hosts["answered"].astype(bool)
        out["hosts_unanswered"] = float((~answered).sum())
        if answered.any():
            rows = tables.get("drift", pd.DataFrame())
            found = [drift.Drift(**{k: r[k] for k in drift.Drift.__dataclass_fields__})
                     for r in rows.to_dict("records")] if not rows.empty else []
            out.update({k: float(v) for k, v in drift.summary(found).items()})
    notes = tables.get("audit_notes", pd.DataFrame())
    inst = tables.get("instances", pd.DataFrame())
    if not inst.empty or (not notes.empty and (notes["check"] == "firewall").any()):
        out["instances_in_scope"] = float(len(inst))
    probes = tables.get("probes", pd.DataFrame())
    if not probes.empty:
        exposed = probes[probes["finding"] == "exposed"]
        unreachable = probes[probes["finding"] == "unreachable_open"]
        out["exposed_ports"] = float(len(exposed))
        out["exposed_instances"] = float(exposed["instance"].nunique())
        out["unreachable_open_ports"] = float(len(unreachable))
        affected = pd.concat([exposed, unreachable])
        out["hypervisors_affected"] = float(affected["hypervisor"].nunique())
        out["probes_sent"] = float((probes["seen"] != "not_run").sum())
        out["probes_inconclusive"] = float((probes["finding"] == "inconclusive").sum())
    return out
