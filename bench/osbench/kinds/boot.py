"""Kind `boot`: scale-up instance boots, counted by phone-home, not by ACTIVE.

One case: check quotas; start a registration server; send one multi-create
(or several batches) with cloud-init `phone_home` user-data; track every
instance with one filtered server listing and one port listing per poll
cycle; classify each instance's outcome; delete what the case created.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import pandas as pd

from osbench import kinds
from osbench.boot.tracker import OUTCOMES, Tracker
from osbench.cleanup import CASE_METADATA_KEY, RUN_METADATA_KEY, delete_run_servers, run_tag
from osbench.cloud import CloudTarget
from osbench.errors import CleanupIncomplete, UserError
from osbench.kinds import CaseContext, Kind
from osbench.phonehome import Arrival, RegistrationServer, default_advertise_address
from osbench.scenario import Case
from osbench.scenario.schema import Max, Min, Pattern, PositiveDuration, PositiveInt

DEFAULT_USER_DATA = """\
#cloud-config
phone_home:
  url: {phone_home_url}
  post: [instance_id, hostname, fqdn]
  tries: 10
"""

#: Nova's fault when a port did not become ACTIVE within vif_plugging_timeout.
VIF_FAILURE = "Failed to allocate the network(s)"

#: Names of never-seen servers kept in the cleanup row (the count is always kept).
UNACCOUNTED_NAMES_KEPT = 20

#: Hard cap on one case's count, whatever max_instances says: 10x the
#: 10,000-instance benchmark. Past it a count is a typo or an attack.
MAX_COUNT = 100_000

#: Port for the registration server on a real cloud (the field experiment's);
#: on the simulated cloud any free port.
REAL_CLOUD_PHONE_HOME_PORT = 8000


@dataclass(frozen=True)
class Batch:
    """Create in requests of `size`, `interval_s` apart, instead of one request."""

    size: PositiveInt
    interval_s: PositiveDuration = 1.0


@dataclass(frozen=True)
class BootParams:
    count: Annotated[int, Min(1), Max(MAX_COUNT, "osbench's limit per case; for more, run "
                                                  "several scenarios, each with its own "
                                                  "name_prefix")]
    batch: Batch | None = None
    #: Image, flavor and networks by name or id; the simulated cloud has defaults.
    image: str | None = None
    flavor: str | None = None
    networks: tuple[str, ...] = ()
    key_name: str | None = None
    security_groups: tuple[str, ...] = ()
    #: cloud-config template; `{phone_home_url}` is replaced by the run's URL.
    user_data: str = DEFAULT_USER_DATA
    name_prefix: Annotated[str, Pattern(r"[a-z][a-z0-9-]{0,30}",
                                        "lowercase letters, digits and dashes, "
                                        "starting with a letter (at most 31)")] = "osbench"
    #: From each create request: by then ACTIVE (else build_timeout) ...
    active_timeout_s: PositiveDuration = 900.0
    #: ... and by then phoned home (else no_phone_home). The DHCP client of a
    #: guest gives up after 300 s, so less than that hides finding 2.
    phone_home_timeout_s: PositiveDuration = 1200.0
    poll_interval_s: PositiveDuration = 5.0
    cleanup: Literal["always", "on_success", "never"] = "always"
    #: After a create whose reply never came or was a proxy 504 / timeout, how long
    #: (from the last request sent) its servers may still appear; cleanup waits
    #: that long for them. A real nova-api has been seen to take minutes for 1000.
    create_outcome_wait_s: PositiveDuration = 600.0
    #: Counts above this need `--allow-large` (a typo of 10000 for 1000 is costly).
    max_instances: PositiveInt = 1000
    #: URL base guests use, e.g. `http://203.0.113.5:8000`; default: the
    #: address of the interface that routes to the cloud's API.
    phone_home_url: str | None = None
    phone_home_bind: str = "::"
    phone_home_port: Annotated[int, Min(0), Max(65535)] | None = None
    delete_concurrency: PositiveInt = 20
    console_length: PositiveInt = 200

    def __post_init__(self) -> None:
        if "{phone_home_url}" not in self.user_data:
            raise ValueError("user_data must contain {phone_home_url}, where the guests "
                             "phone home")
        if self.batch is not None and self.batch.size > self.count:
            raise ValueError(f"batch.size ({self.batch.size}) is larger than count "
                             f"({self.count})")


class BootKind(Kind):
    name = "boot"
    description = "scale-up instance boots counted by cloud-init phone-home"
    params_type = BootParams
    target = "cloud"
    sample_table = "instances"
    sample_columns: ClassVar[Mapping[str, str]] = {
        "time_to_build_s": "create request to first seen in BUILD",
        "time_to_active_s": "create request to first seen ACTIVE (poll resolution)",
        "time_to_port_active_s": "create request to its port first seen ACTIVE",
        "time_to_phone_home_s": "create request to the phone-home arriving",
    }
    metrics: ClassVar[Mapping[str, str]] = {
        "requested": "instances asked for",
        **{o: f"instances with outcome {o}" for o in OUTCOMES},
        "not_started": "requested instances that did not phone home",
        "dhcp_timeout": "silent instances whose console shows the DHCP client giving up",
        "vif_failures": "ERROR instances whose fault is Nova's network allocation failure",
        "phone_home_ok_pct": "share of requested instances that phoned home, %",
        "active_pct": "share of requested instances the API reported ACTIVE, %",
        "create_errors": "create requests that failed or timed out (e.g. HTTP 504)",
    }

    def plan(self, case: Case) -> list[str]:
        p: BootParams = case.params
        sizes = _batch_sizes(p)
        return [
            f"POST /servers x{len(sizes)} (sizes {sizes}): {p.count} server(s) named "
            f"{p.name_prefix}-<run>-c{case.index + 1}-b<N>-<i>, image {p.image or 'default'}, "
            f"flavor {p.flavor or 'default'}, networks {list(p.networks) or 'default'}",
            f"listen for phone-home on [{p.phone_home_bind}]:"
            f"{p.phone_home_port if p.phone_home_port is not None else 'auto'}",
            f"DELETE those servers afterwards (cleanup: {p.cleanup})",
        ]

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: BootParams = case.params
        target = ctx.target
        if not isinstance(target, CloudTarget):
            raise TypeError(f"boot needs a cloud target, got {type(target).__name__}")
        if p.count > p.max_instances and not ctx.allow_large:
            raise UserError(f"count {p.count} is above max_instances {p.max_instances}",
                            hint="raise params.max_instances or pass --allow-large")
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
            clock=ctx.clock, on_arrival=lambda a: ctx.record("phone_home", _arrival_row(a)),
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
                                  batch_sizes=_batch_sizes(p), params=p, server=server,
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
        out["vif_failures"] = float(instances["fault"].fillna("").str.contains(
            VIF_FAILURE, regex=False).sum() if n else 0)
        out["phone_home_ok_pct"] = 100.0 * out["ok"] / n if n else float("nan")
        active = instances["time_to_active_s"].notna().sum() if n else 0
        out["active_pct"] = 100.0 * float(active) / n if n else float("nan")
        out["create_errors"] = float((creates["outcome"] != "accepted").sum()
                                     if len(creates) else 0)
        return out


def _batch_sizes(p: BootParams) -> list[int]:
    if p.batch is None:
        return [p.count]
    full, rest = divmod(p.count, p.batch.size)
    return [p.batch.size] * full + ([rest] if rest else [])


def _arrival_row(a: Arrival) -> dict[str, Any]:
    return {
        "instance_id": a.instance_id, "hostname": a.hostname, "fqdn": a.fqdn,
        "source_address": a.source_address, "address_family": a.address_family,
        "user_agent": a.user_agent, "arrived_at": a.wall_time, "monotonic": a.monotonic,
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


BOOT = kinds.register(BootKind())
