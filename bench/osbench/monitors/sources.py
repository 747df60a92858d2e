"""Which samplers a case gets: the `monitors:` section read against the case's target."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osbench.errors import UserError
from osbench.monitors.config import MonitorsConfig, PrometheusSource
from osbench.scenario.schema import did_you_mean

if TYPE_CHECKING:
    from osbench.hosts.base import Host
    from osbench.kinds.base import CaseContext
    from osbench.monitors.sampler import Sampler
    from osbench.monitors.session import MonitorSession

#: The simulated cloud's metrics, scraped like any other endpoint.
SIM_SOURCE = "sim"
SIM_METRICS = ("osbench_sim_*",)


def _host(name: str, hosts: dict[str, Host], key: str) -> Host:
    if name == "local":
        from osbench.hosts.local import LocalHost

        return LocalHost()
    if name not in hosts:
        raise UserError(f"monitors.{key}: host {name!r} is not in the inventory",
                        hint=(did_you_mean(name, hosts) if hosts else
                              "name an inventory with `monitors.inventory: FILE` (or "
                              "\"lab\"), or use host: local"))
    return hosts[name]


async def build(config: MonitorsConfig, ctx: CaseContext, hosts: dict[str, Host],
                session: MonitorSession) -> list[Sampler]:
    """Every sampler of `config` for `ctx.target`; the API observer is attached to
    the cloud client and detached when `session` closes."""
    samplers: list[Sampler] = []
    if config.processes:
        from osbench.monitors.processes import ProcessSampler

        for i, p in enumerate(config.processes):
            samplers.append(ProcessSampler(p, _host(p.host, hosts, f"processes[{i}].host"),
                                           p.host))
    if config.rabbitmq:
        from osbench.monitors.rabbitmq import RabbitmqSampler

        for i, r in enumerate(config.rabbitmq):
            host = None if r.url else _host(r.host, hosts, f"rabbitmq[{i}].host")
            samplers.append(RabbitmqSampler(r, host))
    client = getattr(ctx.target, "client", None)
    scrapes = list(config.prometheus)
    sim = getattr(ctx.target, "sim", None)
    if config.sim and sim is not None:
        scrapes.append(PrometheusSource(name=SIM_SOURCE, url=sim.metrics_url,
                                        metrics=SIM_METRICS, auth="cloud"))
    if scrapes:
        from osbench.monitors.prometheus import PrometheusSampler

        for s in scrapes:
            samplers.append(PrometheusSampler(s, token=_token_source(s, client)))
    if config.guru_meditation is not None:
        from osbench.monitors.guru import GuruWatcher

        guru = config.guru_meditation
        session.watchers.append(GuruWatcher(guru, ctx, _host(guru.host, hosts,
                                                             "guru_meditation.host")))
    if config.api and client is not None:
        from osbench.monitors.api_calls import ApiObserver

        observer = ApiObserver(session)
        client.observers.append(observer)
        session.on_close.append(lambda: client.observers.remove(observer))
    return samplers


def _token_source(source: PrometheusSource, client: Any) -> Any:
    """For `auth: cloud`: a function that returns the cloud's current token (in a
    thread: keystoneauth may re-authenticate). Never journaled."""
    if source.auth != "cloud":
        return None
    if client is None:
        raise UserError(f"monitors.prometheus {source.name!r}: auth: cloud needs a cloud "
                        "target", hint="use auth: none or bearer_token_env")
    return client.token
