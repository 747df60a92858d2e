"""Fixtures for osbench's own tests."""

from __future__ import annotations

import pytest

from tests.support.tickkind import register


@pytest.fixture(autouse=True, scope="session")
def _tick_kind() -> None:
    """The test-only `tick` kind, for testing the runner without a cloud."""
    register()
