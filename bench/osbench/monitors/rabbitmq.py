"""RabbitMQ's queues: depth (ready, unacked) and consumers, grouped by the service behind them.

Read with `rabbitmqctl list_queues --formatter json` on a host, or from the
management HTTP API (`GET /api/queues/VHOST`) when `url` is given. Both print
the same JSON: a list of {name, messages_ready, messages_unacknowledged,
consumers}. Only queues a group's pattern matches in full become rows (a
cloud has one reply queue per RPC client and one server queue per compute
host), each under the first group that matches; every group also gets its
sums, so a group with no queue reads 0 queues rather than nothing.

rabbitmqctl is not free: on minicloud (RabbitMQ 3.10, Erlang 25) one call is
an Erlang VM start, ~0.4 s wall and ~0.45 s CPU, where the management API
answers in milliseconds. At the default 2 s interval that is ~20% of a core on
the broker's host; the report of a case says which one was used.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from osbench.errors import HostError
from osbench.hosts.base import Host, stderr_tail
from osbench.monitors.config import MAX_SCRAPE_BYTES, MAX_SERIES_PER_SAMPLE, RabbitmqSource
from osbench.monitors.presets import queue_patterns
from osbench.monitors.sampler import MonitorError, Reading, Sampler

if TYPE_CHECKING:
    import aiohttp

#: The columns both ways of reading ask for, in this order.
COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "consumers")
#: Queues given rows of their own per sample (the deepest first); three rows
#: each keeps a sample within MAX_SERIES_PER_SAMPLE. Group sums count them all.
MAX_QUEUES_PER_SAMPLE = MAX_SERIES_PER_SAMPLE // 3 - 10
#: Exit status of a shell or `timeout` that found no such command.
_NOT_FOUND = 127


@dataclass(frozen=True)
class Queue:
    """One queue's row as rabbitmqctl or the API prints it; None where it had no value."""

    name: str
    ready: int | None
    unacked: int | None
    consumers: int | None

    @property
    def depth(self) -> int:
        return (self.ready or 0) + (self.unacked or 0)


def _count(value: object) -> int | None:
    """A count column: a non-negative integer, or None (a queue whose stats
    are not available yet prints "" in rabbitmqctl and omits the key in the API)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def parse_queues(text: str, where: str) -> list[Queue]:
    """The JSON list both rabbitmqctl and the management API print; MonitorError if not."""
    try:
        rows = json.loads(text)
    except ValueError:
        head = " ".join(text.split())[:80]
        raise MonitorError(f"{where}: not JSON: {head!r}" if head else
                           f"{where}: printed nothing") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise MonitorError(f"{where}: not a list of queues: {text[:80]!r}")
    queues = []
    for row in rows:
        name = row.get("name")
        if not isinstance(name, str):
            raise MonitorError(f"{where}: a queue without a name: {json.dumps(row)[:80]}")
        queues.append(Queue(name, _count(row.get("messages_ready")),
                            _count(row.get("messages_unacknowledged")),
                            _count(row.get("consumers"))))
    return queues


def queue_readings(queues: Sequence[Queue], groups: Mapping[str, re.Pattern[str]]
                   ) -> list[Reading]:
    """Rows for the queues a group matches (deepest first, capped), and each group's sums."""
    grouped: list[tuple[str, Queue]] = []
    for queue in queues:
        group = next((g for g, rx in groups.items() if rx.fullmatch(queue.name)), None)
        if group is not None:
            grouped.append((group, queue))
    readings: list[Reading] = []
    for group in groups:
        mine = [q for g, q in grouped if g == group]
        labels = {"group": group}
        readings += [
            Reading("group_queues", float(len(mine)), labels),
            Reading("group_ready", float(sum(q.ready or 0 for q in mine)), labels),
            Reading("group_unacked", float(sum(q.unacked or 0 for q in mine)), labels),
        ]
    grouped.sort(key=lambda gq: (-gq[1].depth, gq[1].name))
    for group, queue in grouped[:MAX_QUEUES_PER_SAMPLE]:
        labels = {"queue": queue.name, "group": group}
        for metric, value in (("queue_ready", queue.ready), ("queue_unacked", queue.unacked),
                              ("queue_consumers", queue.consumers)):
            if value is not None:
                readings.append(Reading(metric, float(value), labels))
    return readings


class RabbitmqSampler(Sampler):
    """`rabbitmq@HOST` (rabbitmqctl on `host`) or `rabbitmq@HOST:PORT` (the management API)."""

    def __init__(self, cfg: RabbitmqSource, host: Host | None) -> None:
        self.cfg = cfg
        self.host = host
        self.timeout_s = cfg.timeout
        self.patterns = queue_patterns(cfg.presets, cfg.queues)
        self._groups: dict[str, re.Pattern[str]] | None = None
        self._http: aiohttp.ClientSession | None = None
        if cfg.url is not None:
            parts = urlsplit(cfg.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            self.where = f"{parts.hostname}:{port}"
            # what messages name: never the URL's user or password, if it had any
            self.api = (f"{parts.scheme}://{self.where}{parts.path.rstrip('/')}"
                        f"/api/queues/{quote(cfg.vhost, safe='')}?columns={','.join(COLUMNS)}")
        elif host is None:
            raise ValueError("RabbitmqSampler needs a host or a url")
        else:
            self.where = host.name
        self.source = f"rabbitmq@{self.where}"

    async def open(self) -> None:
        self.groups()
        if self.cfg.url is not None:
            self._credentials()

    def groups(self) -> dict[str, re.Pattern[str]]:
        """The queue groups' patterns, compiled; MonitorError for one that is not a pattern."""
        if self._groups is None:
            groups = {}
            for name, pattern in self.patterns.items():
                try:
                    groups[name] = re.compile(pattern)
                except re.error as exc:
                    raise MonitorError(f"{self.where}: queue group {name!r}: the pattern "
                                       f"{pattern!r} is not a regular expression ({exc})"
                                       ) from None
            self._groups = groups
        return self._groups

    async def sample(self) -> list[Reading]:
        text = await (self._from_api() if self.cfg.url is not None else self._from_rabbitmqctl())
        return queue_readings(parse_queues(text, self.where), self.groups())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- rabbitmqctl ------------------------------------------------------------

    async def _from_rabbitmqctl(self) -> str:
        assert self.host is not None
        argv = ["rabbitmqctl", "-q", "list_queues", "-p", self.cfg.vhost,
                "--formatter", "json", *COLUMNS]
        try:
            result = await self.host.run(argv, timeout_s=self.timeout_s, check=False)
        except HostError as exc:
            if "command not found" in str(exc):
                raise MonitorError(f"{self.where}: rabbitmqctl not found on {self.where}"
                                   ) from None
            raise MonitorError(" ".join(str(exc).split())) from None
        if result.exit_status == _NOT_FOUND:
            raise MonitorError(f"{self.where}: rabbitmqctl not found on {self.where}")
        if result.exit_status != 0:
            tail = stderr_tail(result.stderr) or stderr_tail(result.stdout)
            raise MonitorError(f"{self.where}: rabbitmqctl list_queues exited with status "
                               f"{result.exit_status}" + (f": {tail}" if tail else ""))
        if len(result.stdout) > MAX_SCRAPE_BYTES:
            raise MonitorError(f"{self.where}: rabbitmqctl printed {len(result.stdout)} "
                               f"characters, over {MAX_SCRAPE_BYTES}")
        return result.stdout

    # -- the management API -----------------------------------------------------

    def _credentials(self) -> tuple[str, str] | None:
        """(user, password) from the environment variables the source names, or None."""
        names = (self.cfg.user_env, self.cfg.password_env)
        if names == (None, None):
            return None
        values = []
        for key, name in zip(("user_env", "password_env"), names, strict=True):
            if name is None:
                raise MonitorError(f"{self.where}: {key} is not set (the management API "
                                   "needs both user_env and password_env)")
            value = os.environ.get(name)
            if value is None:
                raise MonitorError(f"{self.where}: the environment variable {name} ({key}) "
                                   "is not set")
            values.append(value)
        return values[0], values[1]

    async def _from_api(self) -> str:
        import aiohttp

        credentials = self._credentials()
        # by hand: aiohttp.BasicAuth is deprecated from 3.12, its successor is not in 3.9
        headers = ({"Authorization": "Basic " + base64.b64encode(
            ":".join(credentials).encode()).decode()} if credentials else {})
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        url = self.api.partition("?")[0]
        try:
            async with self._http.get(self.api, headers=headers) as resp:
                if resp.status != 200:
                    raise MonitorError(f"{self.where}: HTTP {resp.status} {resp.reason or ''} "
                                       f"from {url}".replace("  ", " "))
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_SCRAPE_BYTES:
                        raise MonitorError(f"{self.where}: {url} sent more than "
                                           f"{MAX_SCRAPE_BYTES} bytes")
        except TimeoutError:
            raise MonitorError(f"{self.where}: {url} did not answer within "
                               f"{self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise MonitorError(f"{self.where}: {url}: {type(exc).__name__}: "
                               f"{' '.join(str(exc).split())}") from None
        return body.decode(errors="replace")
