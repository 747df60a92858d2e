"""Golden tests: each scenario mistake gives one exact, located, helpful line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main

GOOD = """\
name: ticks
kind: tick
params:
  ticks: 3
  interval_s: 10ms
sla:
  - ticks_done >= 3
  - p95(value) <= 10
"""

# (scenario text, the error line after "osbench: error: FILE:")
CASES = {
    "unknown nested key": (
        GOOD.replace("  ticks: 3", "  tiks: 3"),
        "4: params.tiks: unknown key 'tiks' (did you mean 'ticks'? valid: announce, "
        "cleanup_delay_s, cleanup_marker, fail_after, interval_s, ticks, value)",
    ),
    "wrong type": (
        GOOD.replace("ticks: 3", "ticks: three"),
        "4: params.ticks: expected an integer, got 'three'",
    ),
    "bad duration": (
        GOOD.replace("10ms", "10 minutes"),
        "5: params.interval_s: '10 minutes' is not a duration "
        '(write seconds as a number, or "250ms", "30s", "5m", "1h", "1h30m")',
    ),
    "empty sweep list": (
        GOOD.replace("  ticks: 3\n", "") + "sweep:\n  ticks: []\n",
        "9: sweep.ticks: the sweep list is empty (give at least one value)",
    ),
    "unknown kind": (
        GOOD.replace("kind: tick", "kind: tik"),
        "2: kind: unknown kind 'tik' (did you mean 'tick'? valid: boot, netsweep, rootwrap, tick)",
    ),
    "bad sla expression": (
        GOOD.replace("ticks_done >= 3", "ticks_done >> 3"),
        "7: sla[0]: cannot parse SLA criterion 'ticks_done >> 3' (write `METRIC OP NUMBER` "
        "or `AGG(COLUMN) OP NUMBER`, e.g. `phone_home_ok_pct >= 99.5` or "
        "`p95(time_to_phone_home_s) <= 600`)",
    ),
    "unknown sla metric": (
        GOOD.replace("ticks_done >= 3", "tick_done >= 3"),
        "7: sla[0]: unknown metric 'tick_done' in 'tick_done >= 3' "
        "(did you mean 'ticks_done'? valid: ticks_done)",
    ),
    "yaml syntax error": (
        GOOD.replace("  ticks: 3", "  ticks: [3"),
        "5: YAML syntax error: expected ',' or ']', but got ':' "
        "(check indentation, colons and quotes on that line)",
    ),
    "missing required key": (
        GOOD.replace("  ticks: 3\n", ""),
        "3: params: missing required key 'ticks' (add `ticks:` (an integer) under "
        "`params:` (kind 'tick'))",
    ),
    "negative count": (
        GOOD.replace("ticks: 3", "ticks: -1"),
        "4: params.ticks: -1 must be >= 1",
    ),
    "non-mapping top level": (
        "- name: ticks\n- kind: tick\n",
        "1: the top level must be a mapping of scenario keys, got [{'name': 'ticks'}, "
        "{'kind': 'tick'}] (list) (start with `name:` and `kind:`)",
    ),
    "unknown top-level key": (
        GOOD.replace("sla:", "slas:"),
        "6: slas: unknown key 'slas' (did you mean 'sla'? valid: description, kind, name, "
        "params, repeat, sla, sweep, target)",
    ),
    "zip lengths differ": (
        GOOD.replace("  ticks: 3\n", "")
        + "sweep:\n  zip:\n    ticks: [1, 2]\n    value: [1.0]\n",
        "9: sweep.zip: zip lists differ in length: {'ticks': 2, 'value': 1} "
        "(lock-step lists must all have the same number of values)",
    ),
    "duplicate key": (
        GOOD.replace("  ticks: 3\n", "  ticks: 3\n  ticks: 4\n"),
        "5: params.ticks: duplicate key 'ticks' (each key may appear once per mapping; "
        "remove one of them)",
    ),
    "cross-field check": (
        GOOD.replace("  ticks: 3\n", "  ticks: 3\n  fail_after: 5\n"),
        "3: params: fail_after (5) is beyond ticks (3)",
    ),
    "wrong type in sweep value": (
        GOOD.replace("  ticks: 3\n", "") + "sweep:\n  ticks: [1, two]\n",
        "9: sweep.ticks[1]: expected an integer, got 'two'",
    ),
    "sweep of unknown key": (
        GOOD + "sweep:\n  tick: [1]\n",
        "10: sweep.tick: cannot sweep unknown key 'tick' (did you mean 'ticks'? valid: "
        "announce, cleanup_delay_s, cleanup_marker, fail_after, hosts, interval_s, sim_profile, "
        "ticks, value)",
    ),
}


def test_good_file_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (tick, 1 case)\n"


def test_one_bad_file_among_good_ones_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("kind: tick", "kind: 7"))
    assert main(["validate", str(good), str(bad)]) == 2
    out = capsys.readouterr()
    assert f"{good}: ok" in out.out
    assert f"{bad}:2: kind: expected a kind name, got 7" in out.err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"osbench: error: {tmp_path / 'nope.yaml'}: no such file\n"


BOOT = """\
name: boot
kind: boot
params:
  count: 100
  cleanup: always
  batch: {size: 10, interval_s: 5s}
"""

BOOT_CASES = {
    "literal typo": (
        BOOT.replace("cleanup: always", "cleanup: allways"),
        "5: params.cleanup: 'allways' is not allowed (did you mean 'always'? valid: always, "
        "never, on_success)",
    ),
    "nested dataclass key": (
        BOOT.replace("size: 10", "sise: 10"),
        "6: params.batch.sise: unknown key 'sise' (did you mean 'size'? valid: interval_s, "
        "size)",
    ),
    "cross-field in nested params": (
        BOOT.replace("size: 10", "size: 200"),
        "3: params: batch.size (200) is larger than count (100)",
    ),
    "bad name prefix": (
        BOOT + "  name_prefix: Osb_1\n",
        "7: params.name_prefix: 'Osb_1' must be lowercase letters, digits and dashes, "
        "starting with a letter (at most 31)",
    ),
}


CASES.update({f"boot: {k}": v for k, v in BOOT_CASES.items()})


@pytest.mark.parametrize("mistake", sorted(CASES))
def test_mistake_gives_exact_located_error(
    mistake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = CASES[mistake]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert out.err == f"osbench: error: {path}:{expected}\n"
    assert "Traceback" not in out.err
