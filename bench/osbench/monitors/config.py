"""The `monitors:` section of a scenario: typed, validated, light to import.

    monitors:
      interval: 2s                 # every source samples this often (case clock)
      inventory: hosts.yaml        # SSH hosts named below (relative to the scenario)
      processes:                   # CPU and RSS per service, the host's CPU/load/memory
        - {host: local, presets: [openstack]}
        - {host: controller-1, services: {my-api: "my-api-wsgi"}}
      rabbitmq:                    # queue depths and consumers
        - {host: local}                                  # rabbitmqctl list_queues
        - {url: "http://rabbit:15672", user_env: RMQ_USER, password_env: RMQ_PASSWORD}
      prometheus:                  # any exporter, with an allow-list of metric names
        - {name: node, url: "http://127.0.0.1:9100/metrics", metrics: ["node_load1"]}
      api: true                    # the harness's own cloud calls (cloud kinds)
      sim: true                    # the simulated cloud's modelled state (simulated targets)
      guru_meditation:             # one oslo Guru Meditation Report when the backlog rule fires
        {service: neutron-dhcp-agent, when: backlog, host: local,   # stderr: the report's
         log: /var/lib/osbench-minicloud/logs/neutron-dhcp-agent.out}   # (minicloud's)

Credentials are never written here: the management API's user and password,
and a bearer token, are named by environment variable; `auth: cloud` sends the
target cloud's own token. None of them reaches results, logs or reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from osbench.monitors.presets import PROCESS_PRESET_NAMES, PROCESS_PRESETS, QUEUE_PRESET_NAMES
from osbench.scenario.schema import (
    Max,
    Min,
    NonEmpty,
    Pattern,
    PositiveDuration,
    suggest,
)

#: Default and bounds of `interval`. At 1 s a source makes at most one request
#: (or one command) per second of the case's clock; past an hour a case sees
#: too few samples for any rule (`attribution`) to fire.
DEFAULT_INTERVAL_S = 2.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 3600.0
#: Real seconds one sample may take before it counts as failed (a host that
#: never answers, an endpoint that accepts and is silent).
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 120.0
#: Largest scrape body read, and most series kept per scrape, from one endpoint:
#: a hostile or misconfigured exporter cannot fill memory or the journal.
MAX_SCRAPE_BYTES = 8 * 1024 * 1024
MAX_SERIES_PER_SAMPLE = 2000

_HTTP_URL = Pattern(r"https?://[^\s/]+(/\S*)?", "an http:// or https:// URL")
_ENV_NAME = Pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")
_NAME = Pattern(r"[a-z0-9][a-z0-9_.-]{0,62}", "a short name of a-z, 0-9, '_', '.', '-'")


@dataclass(frozen=True)
class OneOf:
    """Constraint: one of `choices`, with a "did you mean" in the message."""

    choices: tuple[str, ...]
    what: str

    def check(self, value: str) -> str | None:
        if value in self.choices:
            return None
        close = suggest(value, self.choices)
        return (f"is not a {self.what}" + (f"; did you mean {close!r}?" if close else "")
                + f" (valid: {', '.join(self.choices)})")


@dataclass(frozen=True)
class Regex:
    """Constraint: a regular expression Python's `re` compiles (its error said if not),
    so a typo is a `validate` error, not a monitor error at the first sample."""

    def check(self, value: str) -> str | None:
        try:
            re.compile(value)
        except re.error as exc:
            return f"is not a regular expression ({exc})"
        return None


Timeout = Annotated[PositiveDuration, Max(MAX_TIMEOUT_S)]
RegularExpression = Annotated[str, NonEmpty(), Regex()]
ProcessPreset = Annotated[str, OneOf(PROCESS_PRESET_NAMES, "process preset")]
Service = Annotated[str, OneOf(tuple(PROCESS_PRESETS), "service")]
QueuePreset = Annotated[str, OneOf(QUEUE_PRESET_NAMES, "queue preset")]
Interval = Annotated[PositiveDuration, Min(MIN_INTERVAL_S), Max(MAX_INTERVAL_S)]


@dataclass(frozen=True)
class ProcessesSource:
    """Services on one host, matched by command line; and the host's CPU, load, memory."""

    #: "local" (this machine, lab namespaces included) or a host of the inventory.
    host: Annotated[str, NonEmpty()] = "local"
    #: Preset services ("openstack" is every one; or name them: "nova-api", ...).
    presets: tuple[ProcessPreset, ...] = ("openstack",)
    #: More services: name -> regular expression searched in the command line.
    services: dict[str, RegularExpression] = field(default_factory=dict)
    timeout: Timeout = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class RabbitmqSource:
    """RabbitMQ's queues: `rabbitmqctl list_queues` on `host`, or the management API."""

    #: Where `rabbitmqctl` runs ("local" or an inventory host); ignored with `url`.
    host: Annotated[str, NonEmpty()] = "local"
    #: The management HTTP API (e.g. http://rabbit:15672); replaces `host`.
    url: Annotated[str, _HTTP_URL] | None = None
    vhost: str = "/"
    #: Environment variables holding the management API's user and password.
    user_env: Annotated[str, _ENV_NAME] | None = None
    password_env: Annotated[str, _ENV_NAME] | None = None
    #: Queue groups ("openstack": Neutron's DHCP agents, Nova's conductor,
    #: scheduler and compute queues).
    presets: tuple[QueuePreset, ...] = ("openstack",)
    #: More groups: group name -> regular expression matched against queue names.
    queues: dict[str, RegularExpression] = field(default_factory=dict)
    timeout: Timeout = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class PrometheusSource:
    """An endpoint in Prometheus text format, scraped with an allow-list."""

    name: Annotated[str, _NAME]
    url: Annotated[str, _HTTP_URL]
    #: Metric families to keep: names, or globs with "*" (e.g. "node_load*").
    metrics: Annotated[tuple[Annotated[str, NonEmpty()], ...], NonEmpty()]
    #: "cloud": send the target cloud's token (X-Auth-Token); "none": nothing.
    auth: Literal["none", "cloud"] = "none"
    #: Environment variable holding a bearer token for the endpoint.
    bearer_token_env: Annotated[str, _ENV_NAME] | None = None
    timeout: Timeout = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class GuruMeditation:
    """Trigger one oslo Guru Meditation Report per case when a rule fires for `service`
    (SIGUSR2 to its main process; `monitors/guru.py`)."""

    service: Service
    #: "backlog": when a queue of the service rises for BACKLOG_RISING_SAMPLES
    #: samples in a row (the attribution rule); "start": at the case's first
    #: sample of any source, to check the plumbing (the process, the signal, the log).
    when: Literal["backlog", "start"] = "backlog"
    #: Where the service runs ("local" or an inventory host).
    host: Annotated[str, NonEmpty()] = "local"
    #: The file the service's stderr goes to: oslo.reports prints the report on
    #: stderr, not in oslo.log's log_file. None: the systemd journal of `unit`.
    log: Annotated[str, NonEmpty()] | None = None
    #: The systemd unit whose journal holds the report (default: the service name).
    unit: Annotated[str, NonEmpty()] | None = None
    #: Command-line pattern of the service's processes (default: its preset's).
    pattern: RegularExpression | None = None


@dataclass(frozen=True)
class MonitorsConfig:
    """A scenario's `monitors:` section."""

    interval: Interval = DEFAULT_INTERVAL_S
    #: SSH inventory for hosts named by sources (relative to the scenario file);
    #: "lab" is the local lab's. A hosts kind's own inventory is used otherwise.
    inventory: str | None = None
    processes: tuple[ProcessesSource, ...] = ()
    rabbitmq: tuple[RabbitmqSource, ...] = ()
    prometheus: tuple[PrometheusSource, ...] = ()
    #: The harness's own cloud calls, by operation (cloud kinds only).
    api: bool = True
    #: The simulated cloud's modelled control plane (simulated targets only).
    sim: bool = True
    guru_meditation: GuruMeditation | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.prometheus]
        for name in {n for n in names if names.count(n) > 1 or n == "sim"}:
            raise ValueError(f"prometheus source name {name!r} is used twice (\"sim\" is "
                             "the simulated cloud's)")

    def hosts(self) -> set[str]:
        """Host names the sources use, besides "local"."""
        named: Iterable[str] = (
            [s.host for s in self.processes]
            + [s.host for s in self.rabbitmq if s.url is None]
            + ([self.guru_meditation.host] if self.guru_meditation else []))
        return {h for h in named if h != "local"}
