"""Fixtures shared by every Python test: a private influxd."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from influxd import Influxd  # noqa: E402


@pytest.fixture(scope="session")
def influxd() -> Iterator[Influxd]:
    """One influxd for the whole session: tests use their own database names."""
    with Influxd() as server:
        yield server


@pytest.fixture
def own_influxd() -> Iterator[Influxd]:
    """An influxd of the test's own, for tests that stop and restart it."""
    with Influxd() as server:
        yield server
