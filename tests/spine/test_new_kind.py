"""Adding a kind is one new package and no edits elsewhere.

This module is such a package in miniature: `httplatency` times GET requests
against an HTTP server, with its own params, metrics, compare specs, report
section and CLI option, and no line of osbench knows about it. Registered with
`osbench.kinds.register` (as a plugin would), it is validated, run, journaled,
judged against its SLA, reported and compared through the public API only
(`import osbench`), the same calls the CLI and the pytest plugin make.

The server it measures is a real aiohttp server on 127.0.0.1 (port 0), in a
thread with its own event loop, that the test starts: `/ok` always answers 200,
`/flaky` answers 500 to every third request, and it logs what it answered, so
the journal can be checked against the other end of the wire.
"""

from __future__ import annotations

import asyncio
import operator
import socket
import statistics
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pandas as pd
import pytest
from aiohttp import web

import osbench
from osbench import kinds
from osbench.kinds import CaseContext, Kind, KindOption, KindSpec, MetricSpec
from osbench.report import figures
from osbench.report.model import Plot, Section, Table
from osbench.report.style import FigureOptions
from osbench.scenario import Case
from osbench.scenario.schema import Max, Min, Pattern, PositiveDuration

# -- the kind: what would be osbench/kinds/httplatency/ ---------------------------

NAME = "httplatency"
TABLE = "requests"
#: Every request, however it ended, is one row with these columns (and `case`).
COLUMNS = ("i", "latency_ms", "status", "outcome")


@dataclass(frozen=True)
class HttpLatencyParams:
    #: The path requested on the server given by --httplatency-server.
    path: Annotated[str, Pattern(r"/[A-Za-z0-9._~/-]*", "a URL path starting with /")]
    #: Requests made one after another; bounded: a latency probe, not a load test.
    requests: Annotated[int, Min(1), Max(200, "a latency probe, not a load test")]
    timeout_s: PositiveDuration = 5.0


def _loopback_url(value: str) -> str:
    """The server option's check: this kind only ever talks to this machine."""
    split = urlsplit(value)
    if split.scheme != "http" or split.hostname != "127.0.0.1" or split.port is None:
        raise ValueError("must be http://127.0.0.1:PORT (this kind only measures loopback)")
    return value.rstrip("/")


class HttpLatencyKind(Kind):
    def plan(self, case: Case) -> list[str]:
        return []  # GET only: nothing on the target is written

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: HttpLatencyParams = case.params
        server = ctx.options.get("httplatency_server")
        if not server:
            raise osbench.UserError("httplatency needs --httplatency-server URL")
        timeout = aiohttp.ClientTimeout(total=p.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for i in range(p.requests):
                started = ctx.clock.monotonic()
                try:
                    async with session.get(f"{server}{p.path}", params={"i": str(i)}) as reply:
                        await reply.read()
                        status = reply.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                latency_ms = (ctx.clock.monotonic() - started) * 1000.0
                ctx.record(TABLE, {"i": i, "latency_ms": latency_ms, "status": status,
                                   "outcome": "ok" if 200 <= status < 400 else "error"})
                ctx.progress(requests=i + 1)

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        rows = tables.get(TABLE, pd.DataFrame(columns=list(COLUMNS)))
        latency = pd.to_numeric(rows["latency_ms"], errors="coerce").dropna()
        return {
            "requests_done": float(len(rows)),
            "errors": float((rows["outcome"] != "ok").sum()),
            "p50_ms": float(latency.median()) if len(latency) else float("nan"),
        }


def summary(runs: Sequence[osbench.Run]) -> pd.DataFrame:
    """Per run and case: requests, errors and the median latency in whole microseconds."""
    out = []
    for run in runs:
        table = run.table(TABLE)
        for case, rows in (table.groupby("case", sort=False) if not table.empty else ()):
            out.append({"run": run.run_id, "case": case, "requests": len(rows),
                        "errors": int((rows["outcome"] != "ok").sum()),
                        "p50_us": round(float(rows["latency_ms"].median()) * 1000)})
    return pd.DataFrame(out, columns=["run", "case", "requests", "errors", "p50_us"])


def sections(runs: Sequence[osbench.Run], options: FigureOptions) -> list[Section]:
    figure, (ax,) = figures.new_figure(options, 1)
    figure.suptitle("Latency of each request")
    data = []
    for run in runs:
        table = run.table(TABLE)
        for case, rows in (table.groupby("case", sort=False) if not table.empty else ()):
            values = np.sort(rows["latency_ms"].to_numpy(float))
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    label=f"{run.run_id} / {case}")
            data.append(pd.DataFrame({"run": run.run_id, "case": case, "latency_ms": values}))
    if not data:
        figures.no_data(ax)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("share of requests")
    figures.legend_below(figure, [ax])
    frame = pd.concat(data, ignore_index=True) if data else pd.DataFrame(
        columns=["run", "case", "latency_ms"])
    return [Section("HTTP latency", [
        Table("httplatency-summary", "Requests, errors and median latency per case",
              summary(runs)),
        Plot("httplatency-latency", "Latency of each request", figure, frame,
             caption="ECDF of every request's latency, one line per run and case."),
    ])]


SPEC = KindSpec(
    name=NAME,
    description="latency of GET requests to a loopback HTTP server (test-only kind)",
    params_type=HttpLatencyParams,
    target="local",
    sample_table=TABLE,
    sample_columns={"latency_ms": "one request, ms", "status": "its HTTP status (0: none)"},
    metrics={"requests_done": "requests made", "errors": "requests without a 2xx/3xx answer",
             "p50_ms": "median latency of a request, ms"},
    implementation=HttpLatencyKind,
    compare=(MetricSpec("latency_ms", TABLE, "samples", "latency_ms"),
             MetricSpec("success_rate", TABLE, "rate", "outcome", lower_is_better=False)),
    options=(KindOption("httplatency_server", "base URL of the server to measure",
                        metavar="URL", parse=_loopback_url),),
    report=sections,
)


# -- the server it measures ---------------------------------------------------------

class LoopbackServer:
    """aiohttp on 127.0.0.1, port 0, in its own thread and event loop: `osbench.run`
    blocks this thread in a loop of its own. `answered` logs (path, i, status)."""

    def __init__(self) -> None:
        self.answered: list[tuple[str, int, int]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _reply(self, request: web.Request) -> web.Response:
        i = int(request.query["i"])
        status = 500 if request.path == "/flaky" and i % 3 == 2 else 200
        self.answered.append((request.path, i, status))
        return web.Response(status=status, text=f"{request.path} {i}\n")

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_get("/ok", self._reply)
        app.router.add_get("/flaky", self._reply)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        return int(sock.getsockname()[1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


# -- fixtures ---------------------------------------------------------------------

@pytest.fixture
def httplatency() -> Iterator[KindSpec]:
    """The kind registered for one test, and gone afterwards."""
    assert kinds.get(NAME) is None, "httplatency must not exist without its package"
    kinds.register(SPEC)
    try:
        yield SPEC
    finally:
        kinds._registered.pop(NAME, None)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


REQUESTS = 12
SLA = ["errors <= 0", "p95(latency_ms) < 5000", f"requests_done == {REQUESTS}"]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq}


def scenario_file(tmp_path: Path, params: str = f"{{requests: {REQUESTS}}}") -> Path:
    path = tmp_path / "httplatency.yaml"
    path.write_text(f"name: loopback-latency\nkind: {NAME}\nparams: {params}\n"
                    "sweep:\n  path: [/ok, /flaky]\n"
                    "sla: [" + ", ".join(f"'{c}'" for c in SLA) + "]\n")
    return path


# -- the tests --------------------------------------------------------------------

def test_without_its_package_the_kind_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(osbench.ScenarioError) as caught:
        osbench.load_scenario(scenario_file(tmp_path))
    assert caught.value.key_path == "kind"
    assert f"unknown kind {NAME!r}" in str(caught.value)


def test_validation_speaks_the_new_kinds_params(httplatency: KindSpec, tmp_path: Path) -> None:
    checked = osbench.validate(scenario_file(tmp_path))
    assert checked.scenario.kind == NAME
    assert checked.cases == 2  # the two paths of the sweep

    def error(params: str) -> osbench.ScenarioError:
        with pytest.raises(osbench.ScenarioError) as caught:
            osbench.load_scenario(scenario_file(tmp_path, params))
        return caught.value

    misspelt = error("{reqests: 3}")
    assert misspelt.key_path == "params.reqests"
    assert "'reqests'" in str(misspelt) and "did you mean 'requests'" in str(misspelt)
    too_many = error("{requests: 201}")
    assert too_many.key_path == "params.requests"
    assert "must be <= 200 (a latency probe, not a load test)" in str(too_many)
    zero = error("{requests: 0}")
    assert zero.key_path == "params.requests" and "must be >= 1" in str(zero)
    missing = error("{timeout_s: 1}")
    assert "requests" in str(missing)
    # The SLA is checked against the kind's own metrics and columns.
    bad_sla = tmp_path / "bad-sla.yaml"
    bad_sla.write_text(f"name: x\nkind: {NAME}\nparams: {{path: /ok, requests: 1}}\n"
                       "sla: ['p50 < 3']\n")
    with pytest.raises(osbench.ScenarioError) as caught:
        osbench.load_scenario(bad_sla)
    assert "p50_ms" in str(caught.value)
    # Its option is a command-line option like any kind's, checked by its parser.
    assert osbench.parse_kind_options({"httplatency_server": "http://127.0.0.1:8/"}) == {
        "httplatency_server": "http://127.0.0.1:8"}
    with pytest.raises(osbench.UserError, match="--httplatency-server"):
        osbench.parse_kind_options({"httplatency_server": "http://192.0.2.1:80"})


def test_run_journal_sla_report_and_compare(httplatency: KindSpec, server: LoopbackServer,
                                            tmp_path: Path) -> None:
    scenario = osbench.load_scenario(scenario_file(tmp_path))
    options = osbench.RunOptions(
        results_dir=tmp_path / "results",
        kind_options=osbench.parse_kind_options({"httplatency_server": server.url}))
    runs = []
    for _ in range(2):
        server.answered.clear()
        result = osbench.run(scenario, options)
        run = osbench.load_run(result.path)
        check_journal(run, server.answered)
        check_sla(result, run)
        runs.append(run)
    check_report(runs, tmp_path / "report")
    check_compare(runs)


def check_journal(run: osbench.Run, answered: list[tuple[str, int, int]]) -> None:
    """One row per request, as the server saw it."""
    assert not run.incomplete
    assert run.manifest["scenario"]["kind"] == NAME
    rows = run.table(TABLE)
    assert set(COLUMNS) <= set(rows.columns)
    assert sorted(rows["case"].unique()) == ["path=/flaky", "path=/ok"]
    journaled = sorted((case.removeprefix("path="), int(i), int(status))
                       for case, i, status in zip(rows["case"], rows["i"], rows["status"],
                                                  strict=True))
    assert journaled == sorted(answered)
    assert len(journaled) == 2 * REQUESTS
    assert (rows["latency_ms"] > 0).all()
    assert (rows["outcome"] == np.where(rows["status"] == 200, "ok", "error")).all()


def check_sla(result: osbench.RunResult, run: osbench.Run) -> None:
    """Each verdict's measurement is the journal's, and passes as its operator says."""
    rows = run.table(TABLE)
    verdicts = run.table("sla")
    assert len(verdicts) == 2 * len(SLA)
    for case in result.cases:
        mine = rows[rows["case"] == case.case_id]
        latency = mine["latency_ms"].to_numpy(float)
        expected = {
            "errors": float((mine["status"] != 200).sum()),
            "p95(latency_ms)": float(np.percentile(latency, 95)),
            "requests_done": float(len(mine)),
        }
        assert case.metrics["p50_ms"] == pytest.approx(statistics.median(latency))
        assert [v.criterion.text for v in case.verdicts] == SLA
        for verdict in case.verdicts:
            c = verdict.criterion
            assert verdict.measured == pytest.approx(expected[c.label])
            assert verdict.passed == OPS[c.op](expected[c.label], c.threshold)
        journaled = verdicts[verdicts["case"] == case.case_id]
        assert journaled["passed"].tolist() == [v.passed for v in case.verdicts]
        assert journaled["measured"].tolist() == pytest.approx(
            [v.measured for v in case.verdicts])
    # /flaky's 500s fail `errors <= 0`: the run fails on its SLA, and only that.
    failed = {(c.case_id, v.criterion.text) for c in result.cases for v in c.verdicts
              if not v.passed}
    assert failed == {("path=/flaky", "errors <= 0")}
    assert result.status == "failed"


def check_report(runs: list[osbench.Run], out: Path) -> None:
    report = osbench.build_report(runs)
    written = osbench.write_report(report, out, ["md"])
    (markdown,) = (p for p in written.documents if p.suffix == ".md")
    text = markdown.read_text()
    assert "## HTTP latency" in text
    assert "#### Requests, errors and median latency per case" in text
    assert "| run | case | requests | errors | p50_us |" in text
    for run in runs:
        rows = run.table(TABLE)
        for case, mine in rows.groupby("case"):
            errors = int((mine["status"] != 200).sum())
            p50_us = round(statistics.median(mine["latency_ms"].to_numpy(float)) * 1000)
            assert f"| {run.run_id} | {case} | {len(mine)} | {errors} | {p50_us} |" in text
    assert (out / "figures" / "httplatency-latency.png").stat().st_size > 0
    plotted = pd.read_csv(out / "figures" / "httplatency-latency.csv")
    assert len(plotted) == sum(len(run.table(TABLE)) for run in runs)
    assert "![Latency of each request](figures/httplatency-latency.png)" in text


def check_compare(runs: list[osbench.Run]) -> None:
    """A row per case and metric, the numbers from the journals, a verdict each."""
    base, cand = runs
    table = osbench.compare_runs(base, cand)
    assert sorted(zip(table["case"], table["metric"], strict=True)) == [
        ("path=/flaky", "latency_ms"), ("path=/flaky", "success_rate"),
        ("path=/ok", "latency_ms"), ("path=/ok", "success_rate")]
    for row in table.to_dict("records"):
        b = base.table(TABLE)
        c = cand.table(TABLE)
        b, c = b[b["case"] == row["case"]], c[c["case"] == row["case"]]
        if row["metric"] == "latency_ms":
            assert row["baseline"] == pytest.approx(statistics.median(b["latency_ms"]))
            assert row["candidate"] == pytest.approx(statistics.median(c["latency_ms"]))
            assert row["verdict"] in {"worse", "better", "noise"}
        else:
            assert row["baseline"] == pytest.approx(100.0 * (b["status"] == 200).mean())
            assert row["candidate"] == pytest.approx(100.0 * (c["status"] == 200).mean())
            # The server fails the same requests each time: the rates are equal.
            assert row["verdict"] == "noise"

