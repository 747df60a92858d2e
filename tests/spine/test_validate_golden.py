"""Golden tests: each scenario mistake gives one exact, located, helpful line."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench.cli.program import main

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
        "cleanup_delay_s, cleanup_marker, fail_after, fail_from, interval_s, ticks, value)",
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
        "2: kind: unknown kind 'tik' (did you mean 'tick'? valid: audit, boot, netsweep, "
        "rootwrap, tick)",
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
        "6: slas: unknown key 'slas' (did you mean 'sla'? valid: description, kind, monitors, "
        "name, params, repeat, search, sla, sweep, target)",
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
        "announce, cleanup_delay_s, cleanup_marker, fail_after, fail_from, hosts, interval_s, "
        "sim_profile, ticks, value)",
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


def alias_bomb(levels: int) -> str:
    """Billion laughs: each level an anchored list of 9 aliases of the level before."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"[: levels - 1], strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# Hostile files (issue 13): each fails fast, bounded, on one line naming the key.
HOSTILE_CASES = {
    "alias bomb": (  # 9**7 = 4.8 million copies: 14 s and 1.4 GB before the bound
        GOOD + alias_bomb(7),
        "9: e[1][5][2][1][0]: YAML aliases here expand to more than 20000 values, the limit "
        "for scenario files (write the values out, or use fewer aliases)",
    ),
    "self-referencing anchor": (
        GOOD.replace("params:", "params: &p").replace("  ticks: 3", "  ticks: 3\n  more: *p"),
        "3: params.more: a YAML alias refers to a value that contains it (an anchored value "
        "cannot include itself)",
    ),
    "self-referencing list": (
        GOOD.replace("sla:\n  - ticks_done >= 3\n  - p95(value) <= 10\n", "sla: &s [*s]\n"),
        "6: sla[0]: a YAML alias refers to a value that contains it (an anchored value "
        "cannot include itself)",
    ),
    "deep flow nesting": (
        GOOD.replace("sla:\n  - ticks_done >= 3\n", "sla:\n  - " + "[" * 5000 + "]" * 5000
                     + "\n"),
        "7: sla" + "[0]" * 31 + ": nested more than 32 levels deep, the limit for scenario "
        "files",
    ),
    "deep block nesting": (
        GOOD + "".join("  " * i + f"k{i}:\n" for i in range(100)),
        "42: k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21."
        "k22.k23.k24.k25.k26.k27.k28.k29.k30.k31: nested more than 32 levels deep, the limit "
        "for scenario files",
    ),
    "deep nesting of long keys": (
        GOOD + "".join("  " * i + "k" * 100 + f"{i}:\n" for i in range(40)),
        "42: '" + "k" * 79 + "... (101 characters).'" + "k" * 58 + "... (3231 characters): "
        "nested more than 32 levels deep, the limit for scenario files",
    ),
    "huge integer": (
        GOOD.replace("ticks: 3", "ticks: " + "9" * 5000),
        "4: params.ticks: the integer '99999999999999999999999999999999999999999999999999999"
        "99999999999999999999999999... (5000 characters) is too large (scenario integers are "
        "at most 9223372036854775807)",
    ),
    "integer above the field limit": (
        GOOD.replace("ticks: 3", "ticks: 10000000000"),
        "4: params.ticks: 10000000000 is too large (integers in a scenario are at most "
        "1000000000)",
    ),
    "python tag": (
        GOOD.replace("ticks: 3", "ticks: !!python/name:os.system"),
        "4: params.ticks: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed "
        "in scenario files (use plain strings, numbers, booleans, null, lists and mappings)",
    ),
    "python tag on a mapping": (
        GOOD.replace("params:", "params: !!python/object/apply:os.system"),
        "3: params: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed "
        "in scenario files (use plain strings, numbers, booleans, null, lists and mappings)",
    ),
    "infinite duration": (
        GOOD.replace("10ms", ".inf"),
        "5: params.interval_s: inf is not a finite duration (write seconds as a number, or "
        '"30s", "5m", "1h")',
    ),
    "duration past 30 days": (
        GOOD.replace("10ms", "1000h"),
        "5: params.interval_s: '1000h' is longer than 30 days, the limit for durations",
    ),
    "not-a-number": (
        GOOD.replace("ticks: 3", "ticks: 3\n  value: .nan"),
        "5: params.value: nan is not a finite number",
    ),
    "infinite sla threshold": (
        GOOD.replace("ticks_done >= 3", "ticks_done >= 1e999"),
        "7: sla[0]: threshold '1e999' in 'ticks_done >= 1e999' is not a finite number",
    ),
    "huge repeat": (
        GOOD + "repeat: 1000000000\n",
        "9: repeat: 1000000000 cases (repeat 1000000000); at most 10000 per scenario (sweep "
        "fewer values or repeat less, or split it into several scenario files)",
    ),
    "huge sweep": (  # 3000 x 3000 = 9 million cases
        GOOD.replace("  ticks: 3\n", "") + "sweep:\n  ticks: [" + ", ".join(
            str(i) for i in range(1, 3001)) + "]\n  value: [" + ", ".join(
            f"{i}.0" for i in range(3000)) + "]\n",
        "8: sweep: 9000000 cases (sweep 3000 x 3000 values, repeat 1); at most 10000 per "
        "scenario (sweep fewer values or repeat less, or split it into several scenario "
        "files)",
    ),
    "long value truncated": (
        GOOD.replace("ticks: 3", "ticks: " + "x" * 200_000),
        "4: params.ticks: expected an integer, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (200000 characters)",
    ),
    "escape sequences in a key": (
        GOOD.replace("  ticks: 3", '  ticks: 3\n  "\\e]0;pwned\\a\\e[2J": 1'),
        "5: params.'\\x1b]0;pwned\\x07\\x1b[2J': unknown key '\\x1b]0;pwned\\x07\\x1b[2J' "
        "(valid: announce, cleanup_delay_s, cleanup_marker, fail_after, fail_from, interval_s, "
        "ticks, value)",
    ),
    "raw control character": (
        GOOD.replace("name: ticks", "name: ti\x1b[2Jcks"),
        "1: character '\\x1b' is not allowed in YAML (write it as an escape inside double "
        "quotes)",
    ),
    "file too large": (
        GOOD + "description: |\n" + "  lorem ipsum dolor sit amet\n" * 10_000,
        " the file is larger than 262144 bytes, the limit for scenario files (move large "
        "data (user_data) out of the scenario or shorten it)",
    ),
    "forced tag": (
        GOOD.replace("ticks: 3", "ticks: !!int ''"),
        "4: params.ticks: cannot read '' as !!int (quote it to make it a string)",
    ),
    "escape past U+10FFFF": (
        GOOD.replace("ticks: 3", 'ticks: "\\U1e999000"'),
        "4: YAML syntax error: chr() arg not in range(0x110000) (check the escapes in quoted "
        "strings on that line)",
    ),
    "escape past a C int": (  # found by the fuzz: OverflowError, a traceback
        GOOD.replace("ticks: 3", 'ticks: "\\U99999999"'),
        "4: YAML syntax error: Python int too large to convert to C int (check the escapes in "
        "quoted strings on that line)",
    ),
    "non-string key": (
        GOOD.replace("  ticks: 3", "  ticks: 3\n  [a, b]: 1"),
        "5: params: keys must be strings, got a list",
    ),
}

BOOT_HOSTILE_CASES = {
    "count of 10**90": (
        BOOT.replace("count: 100", "count: 1" + "0" * 90),
        "4: params.count: the integer '100000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000... (91 characters) is too large (scenario integers are at "
        "most 9223372036854775807)",
    ),
    "count above the hard cap": (
        BOOT.replace("count: 100", "count: 200000"),
        "4: params.count: 200000 must be <= 100000 (osbench's limit per case; for more, run "
        "several scenarios, each with its own name_prefix)",
    ),
    "infinite timeout": (
        BOOT + "  active_timeout_s: .inf\n",
        "7: params.active_timeout_s: inf is not a finite duration (write seconds as a number, "
        'or "30s", "5m", "1h")',
    ),
}

HOSTILE_CASES.update({f"boot: {k}": v for k, v in BOOT_HOSTILE_CASES.items()})
CASES.update({f"hostile: {k}": v for k, v in HOSTILE_CASES.items()})

#: Longest error line a scenario may produce: file, key path (160), message and
#: hint (400 each). The longest golden line is about 420.
MAX_ERROR_LINE = 1200


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
    assert len(out.err) <= MAX_ERROR_LINE
    assert out.err[:-1].isprintable()  # one line, nothing a terminal would act on
