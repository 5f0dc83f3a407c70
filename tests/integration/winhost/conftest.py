"""Fixtures of the execution-engine tests (test_exec_*): a modelled host on a fresh C: drive
and the engine that runs its commands. Suites that need a host of another kind define their own
`host` and `engine`, which take precedence in their modules."""

from pathlib import Path

import pytest
from exec_helpers import FakeHost

from winhost import api
from winhost.execution import create_engine


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path / "C")


@pytest.fixture
def engine() -> api.ExecutionEngine:
    return create_engine()
