"""Kind `boot`: scale-up instance boots, counted by phone-home, not by ACTIVE.

One case: check quotas; start a registration server; send one multi-create
(or several batches) with cloud-init `phone_home` user-data; track every
instance with one filtered server listing and one port listing per poll
cycle; classify each instance's outcome; delete what the case created.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import ipaddress
import re
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from osbench.cloudclient import CloudTarget
from osbench.errors import CleanupIncomplete, TargetError, UserError
from osbench.kinds import CaseContext, Kind
from osbench.kinds.boot.cleanup import (
    CASE_METADATA_KEY,
    RUN_METADATA_KEY,
    delete_run_servers,
    run_tag,
)
from osbench.kinds.boot.params import OUTCOMES, VIF_FAILURE, BootParams, batch_sizes
from osbench.kinds.boot.phonehome import Arrival, RegistrationServer
from osbench.kinds.boot.tracker import Tracker
from osbench.scenario import Case

#: Names of never-seen servers kept in the cleanup row (the count is always kept).
UNACCOUNTED_NAMES_KEPT = 20

#: Port for the registration server on a real cloud (the field experiment's);
#: on the simulated cloud any free port.
REAL_CLOUD_PHONE_HOME_PORT = 8000


class BootKind(Kind):
    """Runs boot cases (the spec is `osbench.kinds.boot.SPEC`)."""

    def plan(self, case: Case) -> list[str]:
        p: BootParams = case.params
        sizes = batch_sizes(p)
        return [
            f"POST /servers x{len(sizes)} (sizes {sizes}): {p.count} server(s) named "
            f"{p.name_prefix}-<run>-c{case.index + 1}-b<N>-<i>, image {p.image or 'default'}, "
            f"flavor {p.flavor or 'default'}, networks {list(p.networks) or 'default'}",
            f"listen for phone-home on [{p.phone_home_bind}]:"
            f"{p.phone_home_port if p.phone_home_port is not None else 'auto'}",
            f"DELETE those servers afterwards (cleanup: {p.cleanup})",
        ]

    async def preflight(self, case: Case, target: Any, options: Mapping[str, Any]) -> None:
        """A search's largest point must fit: max_instances and the project's quotas."""
        p: BootParams = case.params
        if not isinstance(target, CloudTarget):
            raise TargetError(f"boot needs a cloud target, got {type(target).__name__}")
        _check_size(p, options)
        _, flavor, networks = await _resolve(target, p)
        await _check_quotas(target.client, p.count, flavor, len(networks))

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: BootParams = case.params
        target = ctx.target
        if not isinstance(target, CloudTarget):
            raise TargetError(f"boot needs a cloud target, got {type(target).__name__}")
        _check_size(p, ctx.options)
        client = target.client
        client.on_retry = lambda r: ctx.record("api_retries", dataclasses.asdict(r))
        image, flavor, networks = await _resolve(target, p)
        await _check_quotas(client, p.count, flavor, len(networks))
        prefix = f"{p.name_prefix}-{run_tag(ctx.run_id)}-c{case.index + 1}"
        tracker: Tracker | None = None  # set once the creates start

        async def cleanup() -> None:
            outcomes = tracker.outcome_counts() if tracker is not None else {}
            if p.cleanup == "never" or (p.cleanup == "on_success"
                                        and outcomes.get("ok", 0) != p.count):
                ctx.record("cleanup", {"policy": p.cleanup, "kept": True})
                return
            in_flight, unanswered, may_appear, until = 0, 0, [], None
            if tracker is not None:
                in_flight = sum(s.outcome is None for s in tracker.sends)
                # An interrupt can land while a create is still in the API: wait
                # (bounded) for its reply, then for every server it may add.
                until = tracker.outcome_deadline(p.create_outcome_wait_s)
                unanswered = await tracker.settle_creates(until)
                may_appear = tracker.names_that_may_appear()
                if may_appear:
                    ctx.log.warning("cleanup: waiting up to %.0f s for %d server(s) that "
                                    "creates of unknown outcome may still add",
                                    max(0.0, until - ctx.clock.monotonic()), len(may_appear))
            report = await delete_run_servers(
                client, run_id=ctx.run_id, name_regex=f"^{re.escape(prefix)}-",
                network_ids=networks, may_appear=may_appear, appear_until=until,
                concurrency=p.delete_concurrency, poll_interval_s=p.poll_interval_s)
            ctx.record("cleanup", {
                "policy": p.cleanup, "kept": False, "matched": len(report.matched),
                "deleted": len(report.deleted), "deleted_ports": len(report.deleted_ports),
                "leftover_servers": len(report.leftover_servers),
                "leftover_ports": len(report.leftover_ports),
                "skipped_foreign": len(report.skipped_foreign),
                "creates_in_flight": in_flight, "creates_unanswered": unanswered,
                "unaccounted": len(report.unaccounted),
                "unaccounted_names": report.unaccounted[:UNACCOUNTED_NAMES_KEPT],
            })
            if unanswered or not report.clean:
                raise CleanupIncomplete(
                    f"{prefix}-*: " + ", ".join(
                        f"{n} {what}" for n, what in (
                            (unanswered, "create request(s) still unanswered"),
                            (len(report.unaccounted), "server(s) a create of unknown outcome "
                             "may still add"),
                            (len(report.leftover_servers), "server(s) not deleted"),
                            (len(report.leftover_ports), "port(s) not deleted")) if n))

        # Journaled and registered before the first create: an interrupt during
        # the request still deletes whatever it made, and `osbench cleanup RUN`
        # finds it after a kill -9.
        ctx.record("resources", {"name_regex": f"^{re.escape(prefix)}-",
                                 "network_ids": networks, "image": image,
                                 "flavor": flavor["name"]})
        ctx.add_cleanup(cleanup, f"delete servers {prefix}-*")
        port = p.phone_home_port if p.phone_home_port is not None else (
            0 if target.simulated else REAL_CLOUD_PHONE_HOME_PORT)
        registration = RegistrationServer(
            # Called from the server's thread once per batch of requests, before
            # their replies (issue 19).
            clock=ctx.clock, journal=lambda arrivals: ctx.record_many(
                "phone_home", [_arrival_row(a) for a in arrivals]),
            host=p.phone_home_bind, port=port,
            advertised_url=p.phone_home_url)
        try:
            async with registration:
                advertise = None
                if p.phone_home_url is None:
                    auth_url = target.describe().get("auth_url") or "http://127.0.0.1/"
                    advertise = await asyncio.to_thread(default_advertise_address, str(auth_url))
                url = registration.url_template(advertise)
                server = {
                    "imageRef": image, "flavorRef": flavor["id"],
                    "networks": [{"uuid": n} for n in networks],
                    "user_data": base64.b64encode(
                        p.user_data.format(phone_home_url=url).encode()).decode(),
                    "metadata": {RUN_METADATA_KEY: ctx.run_id,
                                 CASE_METADATA_KEY: case.case_id[:255]},
                }
                if p.key_name:
                    server["key_name"] = p.key_name
                if p.security_groups:
                    server["security_groups"] = [{"name": g} for g in p.security_groups]
                tracker = Tracker(ctx, client, registration, prefix=prefix,
                                  batch_sizes=batch_sizes(p), params=p, server=server,
                                  network_ids=networks)
                await tracker.run()
                await tracker.finish()
        finally:
            # Connections the server refused or cut short (caps, timeouts): a
            # guest among them would look like a silent instance.
            if registration.closed_early:
                ctx.record("registration", {"closed_early": sum(
                    registration.closed_early.values()), **{
                    f"closed_early.{reason}": n
                    for reason, n in registration.closed_early.items()}})

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        instances = tables.get("instances", pd.DataFrame())
        creates = tables.get("creates", pd.DataFrame())
        n = len(instances)
        counts = instances["outcome"].value_counts() if n else pd.Series(dtype=int)
        out = {"requested": float(n)}
        out.update({o: float(counts.get(o, 0)) for o in OUTCOMES})
        out["not_started"] = float(n) - out["ok"]
        out["dhcp_timeout"] = float((instances["console_class"] == "dhcp_timeout").sum()
                                    if n else 0)
        vif = instances["fault"].fillna("").str.contains(VIF_FAILURE, regex=False) if n else None
        out["vif_failures"] = float(vif.sum()) if vif is not None else 0.0
        silent = instances["outcome"] == "no_phone_home" if n else None
        out["silent_dhcp_timeout_pct"] = _share(
            (instances["console_class"] == "dhcp_timeout")[silent] if silent is not None else None)
        out["error_vif_pct"] = _share(
            vif[instances["outcome"] == "error"] if vif is not None else None)
        out["phone_home_ok_pct"] = 100.0 * out["ok"] / n if n else float("nan")
        active = instances["time_to_active_s"].notna().sum() if n else 0
        out["active_pct"] = 100.0 * float(active) / n if n else float("nan")
        out["create_errors"] = float((creates["outcome"] != "accepted").sum()
                                     if len(creates) else 0)
        return out


def _share(flags: pd.Series | None) -> float:
    """The share of True among `flags`, %; NaN when there are none to share."""
    if flags is None or len(flags) == 0:
        return float("nan")
    return 100.0 * float(flags.sum()) / len(flags)


def _arrival_row(a: Arrival) -> dict[str, Any]:
    return {
        "instance_id": a.instance_id, "hostname": a.hostname, "fqdn": a.fqdn,
        "source_address": a.source_address, "address_family": a.address_family,
        # Pre-formatted: the journal's default= for a datetime cost ~9% of a request.
        "user_agent": a.user_agent, "arrived_at": a.wall_time.isoformat(),
        "monotonic": a.monotonic,
        "known": a.known, "duplicate": a.duplicate,
    }


async def _resolve(target: CloudTarget, p: BootParams) -> tuple[str, dict[str, Any],
                                                                  list[str]]:
    client, defaults = target.client, target.defaults
    # param name -> (its value, the simulated cloud's default for it)
    given = {"image": (p.image, "image"), "flavor": (p.flavor, "flavor"),
             "networks": (p.networks, "network")}
    missing = [name for name, (value, default) in given.items()
               if not value and default not in defaults]
    if missing:
        raise UserError(f"params {', '.join(missing)} must be set for a real cloud",
                        hint="name the image, flavor and networks the project can use")
    image = (await client.find_image(p.image))["id"] if p.image else defaults["image"]
    flavor = await client.find_flavor(p.flavor or defaults["flavor"])
    networks = ([(await client.find_network(n))["id"] for n in p.networks]
                if p.networks else [defaults["network"]])
    return str(image), flavor, networks


def _check_size(p: BootParams, options: Mapping[str, Any]) -> None:
    if p.count > p.max_instances and not options.get("allow_large"):
        raise UserError(f"count {p.count} is above max_instances {p.max_instances}",
                        hint="raise params.max_instances or pass --allow-large")


async def _check_quotas(client: Any, count: int, flavor: dict[str, Any],
                        ports_per_instance: int) -> None:
    """Refuse to start when the project's quota cannot hold `count` more instances."""
    limits = await client.compute_limits()
    needs = [
        ("instances", count, "maxTotalInstances", "totalInstancesUsed"),
        ("cores", count * flavor["vcpus"], "maxTotalCores", "totalCoresUsed"),
        ("RAM (MB)", count * flavor["ram"], "maxTotalRAMSize", "totalRAMUsed"),
    ]
    short = []
    for what, need, max_key, used_key in needs:
        limit = limits.get(max_key, -1)
        if limit >= 0 and need > limit - limits.get(used_key, 0):
            short.append(f"{what}: need {need}, {limit - limits.get(used_key, 0)} free of "
                         f"{limit}")
    ports = await client.port_quota(await client.project_id())
    if ports is not None and ports[0] >= 0 and count * ports_per_instance > ports[0] - ports[1]:
        short.append(f"ports: need {count * ports_per_instance}, {ports[0] - ports[1]} free "
                     f"of {ports[0]}")
    if short:
        raise UserError("quota too small: " + "; ".join(short),
                        hint="raise the project's quota or lower params.count")


def default_advertise_address(api_url: str) -> str:
    """The local address of the interface that routes to the cloud's API host.

    That is the address guests most likely reach us on. Found by connecting a
    UDP socket (which sends no packet) and reading its local address;
    "127.0.0.1" for a loopback target such as the simulated cloud. Resolves
    the host name, so it may block on DNS: call it once, or via a thread.
    """
    split = urlsplit(api_url)
    host = split.hostname
    if not host:
        raise UserError(f"cannot find the host in API URL {api_url!r}")
    try:
        port = split.port or (443 if split.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot resolve API host {host!r} to find the phone-home address: {exc}",
            hint="set the URL guests should use with --phone-home-url",
        ) from exc
    errors: list[str] = []
    for family, kind, proto, _canon, address in infos:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
                return "127.0.0.1"
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.connect(address)
                return str(sock.getsockname()[0])
        except OSError as exc:
            errors.append(f"{address[0]}: {exc}")
    raise UserError(
        f"no local interface routes to API host {host!r} ({'; '.join(errors)})",
        hint="set the URL guests should use with --phone-home-url",
    )
