"""pytest fixtures for the test KDC; import them into a conftest.py:

from kdc.pytest_plugin import kdc_server, kerberos_env  # noqa: F401
"""

from __future__ import annotations

import typing as t

import pytest

from kdc import KDC


@pytest.fixture(scope="session")
def kdc_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[KDC]:
    """A running KDC for realm WINOPS.TEST with the domain users and win1..win3 keytabs."""
    with KDC(tmp_path_factory.mktemp("kdc")) as server:
        yield server


@pytest.fixture
def kerberos_env(kdc_server: KDC, monkeypatch: pytest.MonkeyPatch) -> KDC:
    """Point this test's Kerberos libraries and tools at the test KDC's files only."""
    return point_at(kdc_server, monkeypatch)


def point_at(server: KDC, monkeypatch: pytest.MonkeyPatch) -> KDC:
    """Point this test's Kerberos libraries and tools at ``server``'s files only."""
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KRB5CCNAME", raising=False)
    monkeypatch.delenv("KRB5_KTNAME", raising=False)
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    return server
