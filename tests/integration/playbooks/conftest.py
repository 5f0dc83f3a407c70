"""The winhost session of the playbook tests (see playbook_hosts.py for its hosts): started once,
with the core's start_session, like the roles' and end-to-end suites' own sessions."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))

from playbook_hosts import FIRST, OFFSETS, PlaybookTargets  # noqa: E402

from winhost.pytest_plugin import start_session, stop_session  # noqa: E402


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[PlaybookTargets]:
    session = start_session(
        tmp_path_factory.mktemp("winhost-playbooks"), len(OFFSETS), "default", first=FIRST
    )
    try:
        yield PlaybookTargets(session, tmp_path_factory.mktemp("playbook-runs"))
    finally:
        stop_session(session)
