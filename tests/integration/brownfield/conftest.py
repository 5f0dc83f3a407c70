"""The winhost session of the brownfield matrix (see brownfield_hosts.py): each case's host is
built from its profile before the server starts; the matrix's playbook runs, once per session,
over all the cases' hosts together."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE.parent / "playbooks"))
sys.path.insert(0, str(HERE))

from brownfield_hosts import CASES, FIRST, BrownfieldTargets, Case, CaseRuns, run_matrix  # noqa: E402

from winhost import profiles  # noqa: E402
from winhost.pytest_plugin import start_session, stop_session  # noqa: E402


@pytest.fixture(scope="session")
def brownfield(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[BrownfieldTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-brownfield")
    for offset, case in enumerate(CASES):
        profiles.create_state_dir(state_dir, 1, case.profile, first=FIRST + offset)
    session = start_session(state_dir, len(CASES), "stock", first=FIRST)
    try:
        yield BrownfieldTargets(session, tmp_path_factory.mktemp("brownfield-runs"))
    finally:
        stop_session(session)


@pytest.fixture(scope="session")
def matrix(brownfield: BrownfieldTargets) -> dict[Case, CaseRuns]:
    return run_matrix(brownfield)
