"""Prometheus endpoints (node_exporter, rabbitmq_prometheus, openstack-exporter, the
simulated cloud) scraped over HTTP, keeping only the allow-listed metrics.

The text is parsed by prometheus_client's own parser, never by hand. Values
are journaled as scraped: a counter stays a counter, and rates are computed
when the table is read. A scrape is bounded in time (the source's timeout)
and size (`MAX_SCRAPE_BYTES`); a status other than 200, a body that is not
Prometheus text, an empty scrape, or an allow-list that matches nothing is a
MonitorError. Tokens are sent, never journaled or logged.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp

from osbench.monitors.config import MAX_SCRAPE_BYTES, PrometheusSource
from osbench.monitors.sampler import MonitorError, Reading, Sampler

#: Bodies larger than this are parsed in a thread, off the event loop.
_PARSE_INLINE_BYTES = 64 * 1024


def _allow(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


def parse(text: str, allow: re.Pattern[str]) -> tuple[list[Reading], int]:
    """Readings of the allowed samples in `text`, and how many samples it had in all;
    MonitorError when `text` is not Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    readings, total = [], 0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                total += 1
                if allow.fullmatch(sample.name) or allow.fullmatch(family.name):
                    readings.append(Reading(sample.name, float(sample.value),
                                            dict(sample.labels)))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        first = text.lstrip()[:60].splitlines()[0] if text.strip() else ""
        raise MonitorError(f"not Prometheus text ({exc}); it starts {first!r}") from None
    return readings, total


class PrometheusSampler(Sampler):
    """One endpoint; `token` returns a token to send as X-Auth-Token (`auth: cloud`)."""

    def __init__(self, cfg: PrometheusSource,
                 token: Callable[[], Awaitable[str]] | None = None) -> None:
        self.cfg = cfg
        self.source = f"prometheus:{cfg.name}"
        self.timeout_s = cfg.timeout
        self._token = token
        self._allow = _allow(cfg.metrics)
        self._session: aiohttp.ClientSession | None = None
        self._where = urlsplit(cfg.url).netloc

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), trust_env=False)

    async def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/plain;version=0.0.4"}
        if self._token is not None:
            headers["X-Auth-Token"] = await self._token()
        if self.cfg.bearer_token_env:
            token = os.environ.get(self.cfg.bearer_token_env)
            if not token:
                raise MonitorError(f"environment variable {self.cfg.bearer_token_env} "
                                   "(bearer_token_env) is not set")
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def sample(self) -> list[Reading]:
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.get(self.cfg.url, headers=await self._headers(),
                                         allow_redirects=False) as response:
                if response.status != 200:
                    raise MonitorError(f"{self._where}: HTTP {response.status} "
                                       f"{response.reason or ''}".rstrip())
                body = await response.content.read(MAX_SCRAPE_BYTES + 1)
        except aiohttp.ClientError as exc:
            raise MonitorError(f"{self._where}: {type(exc).__name__}: {exc}") from None
        if len(body) > MAX_SCRAPE_BYTES:
            raise MonitorError(f"{self._where}: the scrape is larger than "
                               f"{MAX_SCRAPE_BYTES // (1024 * 1024)} MiB")
        text = body.decode("utf-8", errors="replace")
        if len(body) > _PARSE_INLINE_BYTES:
            readings, total = await asyncio.to_thread(parse, text, self._allow)
        else:
            readings, total = parse(text, self._allow)
        if total == 0:
            raise MonitorError(f"{self._where}: empty scrape (no samples)")
        if not readings:
            raise MonitorError(f"{self._where}: none of {total} samples is in the "
                               f"allow-list {list(self.cfg.metrics)}")
        return readings

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
