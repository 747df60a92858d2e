"""A namespace lab for one test module, built and always torn down."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from osbench import lab
from osbench.lab import LabConfig

#: Lab tests need root (network namespaces, sshd); CI runs as root.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (netns, sshd)")


@contextmanager
def running_lab(config: LabConfig) -> Iterator[LabConfig]:
    """`config`'s lab, up for the block (leftovers of an earlier run removed first)."""
    asyncio.run(lab.down(config))
    asyncio.run(lab.up(config))
    try:
        yield config
    finally:
        asyncio.run(lab.down(config))
