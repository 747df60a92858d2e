"""The boot kind's safety checks and options, on the simulated cloud."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from osbench import results
from osbench.cli.program import main
from osbench.errors import UserError
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml


def scenario(count: int = 10, extra: str = "", poll: str = "5s"):  # type: ignore[no-untyped-def]
    return parse_scenario(load_text(boot_yaml(count, poll=poll, extra=extra, sla="ok >= 0"),
                                    "boot-test.yaml"))


async def test_quota_shortfall_stops_before_any_create(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        sim.sim.quotas["instances"] = 5
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(sim.write_clouds_yaml(tmp_path / "clouds.yaml")))
        options = RunOptions(results_dir=tmp_path / "r", target=TargetSpec(cloud=CLOUD_NAME))
        result = await Runner(scenario(10), options).run()
        counts = sim.sim.request_counts()
    assert result.cases[0].error == (
        "UserError: quota too small: instances: need 10, 5 free of 5 "
        "(raise the project's quota or lower params.count)")
    assert ("compute", "POST", "/servers") not in counts


async def test_count_above_ceiling_needs_allow_large(tmp_path: Path) -> None:
    sc = scenario(11, "  max_instances: 10")
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "r")).run()
    assert result.cases[0].error == ("UserError: count 11 is above max_instances 10 "
                                     "(raise params.max_instances or pass --allow-large)")


async def test_batches_and_ipv6_share(tmp_path: Path) -> None:
    sc = scenario(30, "  batch: {size: 12, interval_s: 10s}\ntarget: {sim_profile: dual-stack}")
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "r",
                                         target=TargetSpec(time_scale=60))).run()
    assert result.status == "completed"
    run = results.load(result.path)
    creates = run.table("creates")
    assert creates["size"].tolist() == [12, 12, 6]
    assert creates["outcome"].tolist() == ["accepted"] * 3
    assert (creates["sent_s"].diff().dropna() >= 10).all()
    instances = run.table("instances")
    assert (instances["outcome"] == "ok").all()
    families = instances["address_family"].value_counts()
    assert families["ipv4"] > 0
    assert families["ipv6"] > 0  # the profile sends 14% over [::1]
    arrivals = run.table("phone_home")
    assert arrivals["user_agent"].str.startswith("Cloud-Init/").all()


async def test_phone_home_url_override_is_what_guests_get(tmp_path: Path) -> None:
    from osbench import api

    options = api.parse_kind_options({"phone_home_url": "http://127.0.0.1:9/"})
    assert options == {"phone_home_url": "http://127.0.0.1:9"}
    with pytest.raises(UserError, match="--phone-home-url 'ftp://x': 'ftp://x' is not an "):
        api.parse_kind_options({"phone_home_url": "ftp://x"})
    sc = scenario(3)
    # Guests POST to a port nobody listens on: nothing arrives, all are silent.
    sc = dataclasses.replace(sc, params=dataclasses.replace(
        sc.params, phone_home_timeout_s=200.0, active_timeout_s=150.0))
    runner = Runner(sc, RunOptions(results_dir=tmp_path / "r", kind_options=options,
                                   target=TargetSpec(time_scale=60)))
    assert runner.scenario.params.phone_home_url == "http://127.0.0.1:9"
    result = await runner.run()
    run = results.load(result.path)
    assert set(run.table("instances")["outcome"]) == {"no_phone_home"}
    assert "phone_home" not in run.tables


def test_dry_run_lists_writes_and_touches_nothing(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[2] / "scenarios" / "boot-scale-up.yaml"
    assert main(["run", str(path), "--cloud", "nowhere", "--dry-run",
                 "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "case 1/3 count=100 on cloud 'nowhere':" in out
    assert ("  - POST /servers x1 (sizes [100]): 100 server(s) named "
            "osbench-<run>-c1-b<N>-<i>, image cirros-0.6.2-x86_64-disk") in out
    assert "  - DELETE those servers afterwards (cleanup: always)" in out
    assert not (tmp_path / "r").exists()


def test_every_shipped_scenario_validates(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "scenarios")
                   .rglob("*.yaml"))
    assert len(files) >= 7
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(files)


async def test_sweep_over_sim_profile_opens_one_cloud_per_profile(tmp_path: Path) -> None:
    sc = scenario(5, "sweep:\n  sim_profile: [healthy, big-pets]")
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "r",
                                         target=TargetSpec(time_scale=60))).run()
    assert result.status == "completed"
    run = results.load(result.path)
    assert [(t["cases_from"], t["profile"]) for t in run.manifest["targets"]] == [
        ("sim_profile=healthy", "healthy"), ("sim_profile=big-pets", "big-pets")]


async def test_real_cloud_needs_image_flavor_and_networks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = parse_scenario(load_text("name: b\nkind: boot\nparams: {count: 1, flavor: c1.small}\n",
                                  "b.yaml"))
    with SimThread(time_scale=60) as sim:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(sim.write_clouds_yaml(tmp_path / "clouds.yaml")))
        options = RunOptions(results_dir=tmp_path / "r", target=TargetSpec(cloud=CLOUD_NAME))
        result = await Runner(sc, options).run()
    assert result.cases[0].error == (
        "UserError: params image, networks must be set for a real cloud (name the image, "
        "flavor and networks the project can use)")
