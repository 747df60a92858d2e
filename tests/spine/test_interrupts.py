"""A start-up signal whose KeyboardInterrupt was swallowed (raised inside importlib's
module-lock weakref callback, CPython prints "Exception ignored" and goes on: seen
once in ~40 start-up signals beside busy loops, and the run then went to its end
with exit 0) still interrupts: the CLI before it runs the command, the runner once
its own handlers are in place."""

from __future__ import annotations

import contextlib
import signal
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osbench import interrupts, results
from osbench.cli import program
from osbench.runner import Runner, RunOptions
from tests.spine.test_runner import scenario


def _swallowed(sig: signal.Signals) -> None:
    """What a weakref callback does with the handler's KeyboardInterrupt."""
    with contextlib.suppress(KeyboardInterrupt):
        interrupts.remember_and_raise(sig, None)


@pytest.fixture(autouse=True)
def _no_pending() -> Iterator[None]:
    interrupts.clear()
    yield
    interrupts.clear()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_the_cli_does_not_run_a_command_after_a_swallowed_signal(
        sig: signal.Signals, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = program.build_parser

    def importing(argv: Any = None) -> Any:
        parser = real(argv)
        _swallowed(sig)  # while the command's module was imported
        return parser

    monkeypatch.setattr(program, "build_parser", importing)
    assert program.main(["validate", "scenarios/boot-scale-up.yaml"]) == 130
    out, err = capsys.readouterr()
    assert out == ""  # validate did not run
    assert err.strip() == f"osbench: interrupted ({sig.name})"


class _Referent:
    pass


def _in_a_weakref_callback(action: Any) -> None:
    """Run `action` where importlib's module-lock callback runs: in a weakref
    callback, whose exception CPython hands to sys.unraisablehook."""
    referent = _Referent()
    ref = weakref.ref(referent, lambda _: action())
    del referent
    assert ref() is None


@pytest.mark.parametrize("noted", [True, False], ids=["noted", "not-noted"])
def test_only_a_noted_signal_is_kept_off_the_terminal(
        noted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw "Exception ignored in: <function _get_module_lock.<locals>.cb>" and its
    KeyboardInterrupt traceback before the one line. Any other unraisable exception,
    and a KeyboardInterrupt osbench's handler did not raise, still reach the hook."""
    seen: list[sys.UnraisableHookArgs] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    interrupts.quiet_unraisable()

    def interrupt() -> None:
        if noted:
            interrupts.remember_and_raise(signal.SIGTERM, None)
        raise KeyboardInterrupt

    _in_a_weakref_callback(interrupt)
    _in_a_weakref_callback(lambda: 1 / 0)
    assert [type(u.exc_value) for u in seen] == (
        [ZeroDivisionError] if noted else [KeyboardInterrupt, ZeroDivisionError])
    assert interrupts.pending() == ("SIGTERM" if noted else None)


def test_without_a_signal_the_command_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert program.main(["validate", "scenarios/boot-scale-up.yaml"]) == 0
    assert "ok" in capsys.readouterr().out


async def test_the_runner_stops_on_a_swallowed_signal(tmp_path: Path) -> None:
    sc = scenario("name: t\nkind: tick\nparams: {ticks: 3}\n")
    _swallowed(signal.SIGTERM)
    result = await Runner(sc, RunOptions(results_dir=tmp_path, handle_signals=True)).run()
    assert result.status == "interrupted"
    run = results.load(result.path)
    assert run.manifest["stop_reason"] == "SIGTERM"
    assert "ticks" not in run.tables


async def test_a_library_run_without_signal_handling_ignores_it(tmp_path: Path) -> None:
    """Only a run that handles signals acts on them (a library caller has its own)."""
    sc = scenario("name: t\nkind: tick\nparams: {ticks: 3}\n")
    _swallowed(signal.SIGTERM)
    result = await Runner(sc, RunOptions(results_dir=tmp_path)).run()
    assert result.status == "completed"
